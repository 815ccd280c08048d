"""One repository of `unleak bulk`: what a worker (a local process or a Dask worker) runs.

The task runs `unleak apply` (or, for `--check`, `unleak diff`) in-process on a fresh working tree
of the repository's HEAD, with the repository's own settings, then commits the fixes on a new
branch (and pushes it), or returns them as a patch, or only reports. The user's working tree,
index and current branch are never touched: the work happens in a separate `git worktree` in a
temporary folder (a URL is first cloned there). Whatever goes wrong is the repository's status
(`skipped` or `failed`, with the reason): a task never raises.
"""

from __future__ import annotations

import enum
import re
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from unleak import registry
from unleak.engine.runner import Mode, RunResult, run
from unleak.errors import UserError
from unleak.output import report
from unleak.settings import Overrides, SettingsResolver
from unleak.workflows import git
from unleak.workflows.git import GitError


class Action(str, enum.Enum):
    BRANCH = "branch"  # commit the fixes on a new branch (--branch NAME)
    PATCH = "patch"  # return the fixes as a patch (--patch-dir DIR)
    CHECK = "check"  # only report (--check)


class Status(str, enum.Enum):
    CHANGED = "changed"  # fixes made (with --check: fixes that apply would make)
    CLEAN = "clean"  # nothing to fix
    SKIPPED = "skipped"  # left alone on purpose, see the reason
    FAILED = "failed"  # could not be processed, see the reason


@dataclass(frozen=True)
class Task:
    """What a worker needs for one repository (picklable: it travels to Dask workers)."""

    repository: str  # an absolute local path, or a git URL
    name: str  # unique in the run: the patch's file name, the summary's row
    action: Action
    overrides: Overrides
    branch: str | None = None
    message: str | None = None
    push: bool = False


@dataclass
class RepositoryResult:
    repository: str
    name: str
    status: Status
    files_changed: list[str] = field(default_factory=list)
    fixes: dict[str, int] = field(default_factory=dict)  # rule code -> fixes
    findings_left: int = 0
    errors: list[str] = field(default_factory=list)  # files that could not be processed
    seconds: float = 0.0
    reason: str | None = None  # why skipped or failed
    commit: str | None = None  # --branch: the commit made on the branch
    patch: bytes | None = None  # --patch-dir: the fixes, for `git apply` (written by the client)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["patch"]
        data["status"] = self.status.value
        return data


# The engine keeps per-process state while it runs (the project indexes its workers read): a
# worker with several threads (a Dask worker with --nthreads > 1) runs one repository's engine at
# a time, while the git work of the others goes on.
_ENGINE = threading.Lock()


class _Skip(Exception):
    """The repository is left alone, for the reason given."""


def failed(task: Task, reason: str) -> RepositoryResult:
    return RepositoryResult(task.repository, task.name, Status.FAILED, reason=reason)


def run_repository(task: Task) -> RepositoryResult:
    """The whole of one repository's work; problems become its status, never an exception."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="unleak-bulk-") as scratch:
        try:
            result = _run_in(task, Path(scratch))
        except _Skip as skip:
            result = RepositoryResult(task.repository, task.name, Status.SKIPPED, reason=str(skip))
        except (GitError, UserError) as error:
            result = failed(task, str(error))
        except Exception as error:  # an internal error takes only this repository down
            result = failed(task, f"internal error: {type(error).__name__}: {error}")
    result.seconds = round(time.monotonic() - started, 2)
    return result


def _run_in(task: Task, scratch: Path) -> RepositoryResult:
    repository = _repository(task, scratch)
    if task.action is Action.BRANCH:
        _refuse_to_branch(task, repository)
    worktree = scratch / "worktree"
    git.add_detached_worktree(repository, worktree)
    try:
        outcome = _run_engine(task, worktree)
        result = _summarised(task, outcome, worktree)
        if result.status is Status.CHANGED:
            _deliver(task, result, repository, worktree)
        return result
    finally:
        git.remove_worktree(repository, worktree)


def is_remote(repository: str) -> bool:
    """Whether the repository is cloned to work on: a URL, or a bare repository's folder."""
    return git.is_url(repository) or git.is_bare_repository(Path(repository))


def _repository(task: Task, scratch: Path) -> Path:
    """The repository to work from: the local checkout, or a fresh clone of the URL."""
    if is_remote(task.repository):
        clone = scratch / "clone"
        git.clone(task.repository, clone)
        return clone
    return git.top_level(Path(task.repository))


def _refuse_to_branch(task: Task, repository: Path) -> None:
    assert task.branch is not None
    if not is_remote(task.repository) and git.has_uncommitted_changes(repository):
        raise _Skip("uncommitted changes in the working tree")
    if git.branch_exists(repository, task.branch):
        raise _Skip(f"branch {task.branch} exists already")


def _run_engine(task: Task, worktree: Path) -> RunResult:
    """`unleak apply` in the worktree (`diff`, which writes nothing, for --check), in this process."""
    mode = Mode.DIFF if task.action is Action.CHECK else Mode.APPLY
    resolver = SettingsResolver(task.overrides, root=worktree)
    with _ENGINE:
        return run(mode, [worktree], resolver, 1, use_cache=False)


def _summarised(task: Task, outcome: RunResult, worktree: Path) -> RepositoryResult:
    files = sorted(_in_repository(result.display, worktree) for result in outcome.changed)
    return RepositoryResult(
        task.repository,
        task.name,
        Status.CHANGED if files else Status.CLEAN,
        files_changed=files,
        fixes=dict(sorted(report.fix_counts(outcome.results).items())),
        findings_left=len(report.findings_of(outcome.results)),
        errors=[f"{_in_repository(result.display, worktree)}: {result.error}" for result in outcome.errors],
    )


def _in_repository(display: str, worktree: Path) -> str:
    """A file's path as seen from the repository's root (the engine shows it from the current folder)."""
    try:
        return Path(display).absolute().relative_to(worktree.absolute()).as_posix()
    except ValueError:
        return display


def _deliver(task: Task, result: RepositoryResult, repository: Path, worktree: Path) -> None:
    if task.action is Action.PATCH:
        result.patch = git.diff_against_head(worktree)
    elif task.action is Action.BRANCH:
        assert task.branch is not None
        result.commit = git.commit_on_new_branch(worktree, task.branch, commit_message(task, result), result.files_changed)
        if task.push:
            git.push(repository, task.branch)


def commit_message(task: Task, result: RepositoryResult) -> str:
    """`unleak: N fixes` (or --message), then the count per rule, then the files."""
    total = sum(result.fixes.values())
    subject = task.message or f"unleak: {total} fix{'' if total == 1 else 'es'}"
    per_rule = [f"{code} {registry.entry_by_code(code).name}: {count}" for code, count in result.fixes.items()]
    return "\n".join([subject, "", *per_rule, "", "Files:", *(f"  {path}" for path in result.files_changed), ""])


def repository_names(repositories: list[str]) -> list[str]:
    """A short name per repository (its folder, or the URL's last part), made unique with -2, -3..."""
    names: list[str] = []
    for repository in repositories:
        base = _short_name(repository)
        name, number = base, 1
        while name in names:
            number += 1
            name = f"{base}-{number}"
        names.append(name)
    return names


def _short_name(repository: str) -> str:
    last = re.split(r"[/:\\]", repository.rstrip("/\\"))[-1]
    last = last[: -len(".git")] if last.endswith(".git") and len(last) > len(".git") else last
    return re.sub(r"[^\w.-]", "_", last) or "repository"
