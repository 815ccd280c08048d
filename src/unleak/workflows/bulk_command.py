"""`unleak bulk`: the same fixes across many repositories, then one summary.

The client checks the flags, names the repositories, runs one task per repository (see
`unleak.workflows.scheduling`), writes the patches that come back, prints the summary table
(and `--report` as JSON) and picks the exit code: 2 when a repository failed, 1 with `--check`
when some repository has findings, else 0.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from unleak.errors import UserError
from unleak.settings import Overrides
from unleak.workflows import git
from unleak.workflows.bulk import (
    Action,
    RepositoryResult,
    Status,
    Task,
    is_remote,
    repository_names,
)
from unleak.workflows.scheduling import OnDone, run_tasks

EXIT_OK, EXIT_FOUND, EXIT_FAILED = 0, 1, 2


@dataclass(frozen=True)
class Plan:
    """The flags of one `unleak bulk` run."""

    repositories: list[str]
    overrides: Overrides
    branch: str | None = None
    message: str | None = None
    push: bool = False
    patch_dir: Path | None = None
    check: bool = False
    jobs: int = 1
    scheduler: str | None = None
    report: Path | None = None

    @property
    def action(self) -> Action:
        if self.branch is not None:
            return Action.BRANCH
        return Action.PATCH if self.patch_dir is not None else Action.CHECK


def read_repository_list(path: Path) -> list[str]:
    """`--from-file`: one repository a line; blank lines and `#` comments are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise UserError(str(path), f"cannot read: {error.strerror}") from None
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def run_bulk(plan: Plan) -> int:
    tasks = tasks_of(plan)
    with _progress(len(tasks)) as advance:
        results = run_tasks(tasks, plan.jobs, plan.scheduler, advance)
    if plan.patch_dir is not None:
        _write_patches(results, plan.patch_dir)
    _print_summary(results, plan)
    if plan.report is not None:
        plan.report.write_text(json.dumps(report_of(results, plan), indent=2) + "\n", encoding="utf-8")
    return exit_code(results, plan.action)


def tasks_of(plan: Plan) -> list[Task]:
    """One task per repository, after checking the flags (a UserError stops the run before any work)."""
    _check_flags(plan)
    sources = [source if git.is_url(source) else str(Path(source).absolute()) for source in plan.repositories]
    return [
        Task(source, name, plan.action, plan.overrides, plan.branch, plan.message, plan.push)
        for source, name in zip(sources, repository_names(sources))
    ]


def _check_flags(plan: Plan) -> None:
    if not plan.repositories:
        raise UserError("bulk", "no repository given (REPO... or --from-file)")
    chosen = [plan.branch is not None, plan.patch_dir is not None, plan.check]
    if sum(chosen) != 1:
        raise UserError("bulk", "choose one of --branch NAME, --patch-dir DIR and --check")
    if plan.branch is None and (plan.push or plan.message is not None):
        raise UserError("bulk", "--push and --message go with --branch")
    if plan.branch is not None and not git.valid_branch_name(plan.branch):
        raise UserError("--branch", f"{plan.branch!r} is not a valid branch name")
    lost = [source for source in plan.repositories if is_remote(source)]
    if plan.branch is not None and not plan.push and lost:
        raise UserError(lost[0], "a URL (or a bare repository) is cloned into a temporary folder: its branch needs --push")


def exit_code(results: list[RepositoryResult], action: Action) -> int:
    if any(result.status is Status.FAILED for result in results):
        return EXIT_FAILED
    found = any(result.fixes or result.findings_left for result in results)
    return EXIT_FOUND if action is Action.CHECK and found else EXIT_OK


def report_of(results: list[RepositoryResult], plan: Plan) -> dict[str, Any]:
    """What `--report` writes: the summary table's rows, and the count of repositories per status."""
    totals = Counter(result.status.value for result in results)
    return {
        "action": plan.action.value,
        "repositories": [result.as_json() for result in results],
        "totals": {status.value: totals[status.value] for status in Status},
    }


def _write_patches(results: list[RepositoryResult], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for result in results:
        if result.patch:
            (folder / f"{result.name}.patch").write_bytes(result.patch)


@contextmanager
def _progress(total: int) -> Iterator[OnDone]:
    """A progress bar over the repositories on a terminal (stderr); nothing otherwise."""
    if not sys.stderr.isatty() or os.environ.get("CI"):
        yield lambda result: None
        return
    columns = (TextColumn("unleak bulk"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.description}"))
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        bar = progress.add_task("", total=total)
        yield lambda result: progress.update(bar, advance=1, description=f"{result.name}: {result.status.value}")


def _print_summary(results: list[RepositoryResult], plan: Plan) -> None:
    terminal = sys.stdout.isatty()
    console = Console(file=sys.stdout, width=None if terminal else 200, no_color=not terminal, highlight=False)
    console.print(_table(results))
    for result in results:
        if result.reason:
            console.print(f"{result.name}: {result.status.value}: {result.reason}", markup=False, soft_wrap=True)
        for error in result.errors:
            console.print(f"{result.name}: error: {error}", markup=False, soft_wrap=True)
    totals = report_of(results, plan)["totals"]
    counts = ", ".join(f"{count} {status}" for status, count in totals.items())
    where = f"; patches in {plan.patch_dir}" if plan.patch_dir is not None else ""
    print(f"unleak bulk: {len(results)} repositories: {counts}{where}", file=sys.stderr)


def _table(results: list[RepositoryResult]) -> Table:
    table = Table("repo", "status", "files changed", "fixes", "findings left", "errors", "seconds")
    for result in results:
        fixes = ", ".join(f"{code} {count}" for code, count in result.fixes.items()) or "-"
        table.add_row(
            result.name, result.status.value, str(len(result.files_changed)), fixes,
            str(result.findings_left), str(len(result.errors)), f"{result.seconds:.1f}",
        )
    return table
