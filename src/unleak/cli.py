"""The `unleak` command: check, diff, apply, bulk, rules, explain.

Exit codes: 0 nothing to report (or, for apply, all went well); 1 findings (check) or changes
shown (diff); 2 some file could not be processed, or a usage or configuration error.
"""

from __future__ import annotations

import enum
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from unleak import registry
from unleak.engine import cache
from unleak.engine.findings import FileResult
from unleak.engine.runner import Interrupted, Mode, RunResult, display_path, run, run_stdin
from unleak.errors import UserError
from unleak.output import formats, report
from unleak.output.diffing import colourize, unified_diff
from unleak.settings import Overrides, SettingsResolver

EXIT_OK, EXIT_FOUND, EXIT_ERROR = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Find async and resource-management bugs and rewrite them into the safe form.",
)


class Format(str, enum.Enum):
    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    GITHUB = "github"


def _default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


PathsArg = Annotated[Optional[list[Path]], typer.Argument(help="Files or folders (default: .); - reads stdin.")]
SelectOpt = Annotated[Optional[list[str]], typer.Option(help="Rules to run: codes, names or prefixes (UL4).")]
IgnoreOpt = Annotated[Optional[list[str]], typer.Option(help="Rules not to run: codes, names or prefixes.")]
UnsafeOpt = Annotated[Optional[bool], typer.Option("--unsafe/--no-unsafe", help="Also apply unsafe fixes.")]
JobsOpt = Annotated[Optional[int], typer.Option(min=1, help="Worker processes (default: the cores).")]
ConfigOpt = Annotated[Optional[Path], typer.Option(help="Use this pyproject.toml for every file.")]
ExcludeOpt = Annotated[Optional[list[str]], typer.Option(help="Skip paths matching this glob (repeatable).")]
StdinNameOpt = Annotated[Optional[str], typer.Option(help="The file name of the source read from stdin.")]
FormatOpt = Annotated[Format, typer.Option("--format", help="How findings are printed.")]
EditsOpt = Annotated[bool, typer.Option("--edits", help="check --format json: give each fix as edits (sarif always does).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only findings, diffs and errors.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Also print the settings and counts used.")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the results cache.")]
InteractiveOpt = Annotated[
    bool, typer.Option("--interactive", "-i", help="apply: show each fix and ask before writing it (as `git add -p`).")
]


@dataclass(frozen=True)
class Invocation:
    mode: Mode
    paths: list[Path]
    overrides: Overrides
    config: Path | None
    jobs: int
    stdin_filename: str | None
    output_format: Format
    edits: bool
    quiet: bool
    verbose: bool
    use_cache: bool
    interactive: bool = False

    @property
    def with_fixes(self) -> bool:
        """Whether findings carry their fixes as edits: `check` in SARIF, or in JSON with --edits."""
        return self.mode is Mode.CHECK and (self.edits or self.output_format == Format.SARIF)

    @property
    def engine_mode(self) -> Mode:
        # The review starts from each finding's fix as edits, and writes only those accepted.
        return Mode.CHECK_WITH_EDITS if self.with_fixes or self.interactive else self.mode


def _selectors(values: list[str] | None) -> tuple[str, ...] | None:
    """Selectors from repeated and comma-separated flags (`--select UL401,UL402 --select UL1`)."""
    if values is None:
        return None
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def _command(mode: Mode) -> Callable[..., None]:
    """The check / diff / apply command: same options, different output."""

    def command(
        paths: PathsArg = None,
        select: SelectOpt = None,
        ignore: IgnoreOpt = None,
        unsafe: UnsafeOpt = None,
        jobs: JobsOpt = None,
        config: ConfigOpt = None,
        exclude: ExcludeOpt = None,
        stdin_filename: StdinNameOpt = None,
        output_format: FormatOpt = Format.TEXT,
        edits: EditsOpt = False,
        quiet: QuietOpt = False,
        verbose: VerboseOpt = False,
        no_cache: NoCacheOpt = False,
        interactive: InteractiveOpt = False,
    ) -> None:
        overrides = Overrides(_selectors(select), _selectors(ignore), unsafe, tuple(exclude) if exclude else None)
        invocation = Invocation(
            mode, paths or [Path(".")], overrides, config, jobs or _default_jobs(), stdin_filename,
            output_format, edits, quiet, verbose, not no_cache, interactive,
        )
        raise typer.Exit(_invoke(invocation))

    return command


app.command("check", help="Report findings: path:line:col: CODE message [*] ([*] = fixable).")(_command(Mode.CHECK))
app.command("diff", help="Show the fixes as a unified diff; write nothing.")(_command(Mode.DIFF))
app.command("apply", help="Write the fixes, then summarise on stderr.")(_command(Mode.APPLY))


def _invoke(invocation: Invocation) -> int:
    try:
        return _invoke_uninterrupted(invocation)
    except Interrupted as interrupted:
        return _interrupted(interrupted.written)
    except KeyboardInterrupt:
        return _interrupted([])


def _interrupted(written: list[str]) -> int:
    """Ctrl-C: every file is old or new (writes are atomic); say which are new."""
    typer.echo(f"\nunleak: interrupted; {len(written)} files written" + (":" if written else "."), err=True)
    for display in sorted(written):
        typer.echo(f"  {display}", err=True)
    return EXIT_INTERRUPTED


def _invoke_uninterrupted(invocation: Invocation) -> int:
    try:
        _validate_selector_flags(invocation.overrides)
        _validate_edits_flag(invocation)
        _validate_interactive_flag(invocation)
        resolver = SettingsResolver(invocation.overrides, invocation.config)
        if invocation.paths == [Path("-")]:
            return _invoke_stdin(invocation, resolver)
        if Path("-") in invocation.paths:
            raise UserError("-", "stdin cannot be combined with other paths")
        outcome = run(invocation.engine_mode, invocation.paths, resolver, invocation.jobs, use_cache=invocation.use_cache)
    except UserError as error:
        typer.echo(str(error), err=True)
        return EXIT_ERROR
    return _OUTPUTS[invocation.mode](invocation, outcome)


def _validate_selector_flags(overrides: Overrides) -> None:
    for flag, selectors in (("--select", overrides.select), ("--ignore", overrides.ignore)):
        registry.matching_rules(selectors or (), flag, flag.lstrip("-"))


def _validate_edits_flag(invocation: Invocation) -> None:
    if invocation.edits and (invocation.mode is not Mode.CHECK or invocation.output_format != Format.JSON):
        raise UserError("--edits", "only with `check --format json` (`--format sarif` always has the edits)")


def _validate_interactive_flag(invocation: Invocation) -> None:
    if not invocation.interactive:
        return
    if invocation.mode is not Mode.APPLY or invocation.output_format != Format.TEXT:
        raise UserError("--interactive", "only with `apply` (and the text format)")
    if Path("-") in invocation.paths:
        raise UserError("--interactive", "reads the answers on stdin, so it cannot read the source there")


def _invoke_stdin(invocation: Invocation, resolver: SettingsResolver) -> int:
    result = run_stdin(invocation.engine_mode, sys.stdin.buffer.read(), invocation.stdin_filename, resolver)
    outcome = RunResult(results=[result], scanned=1)
    if invocation.mode is not Mode.APPLY:
        return _OUTPUTS[invocation.mode](invocation, outcome)
    # As a filter (editors, pre-commit), always give the source back: fixed, or as it came.
    _write_stdout(result.fixed if result.fixed is not None else result.original)
    _print_left_for_human(invocation, outcome.results)
    return _exit_code(outcome, found=False)


def _output_check(invocation: Invocation, outcome: RunResult) -> int:
    findings = report.findings_of(outcome.results)
    formats.write_findings(outcome.results, sys.stdout, invocation.output_format, with_fixes=invocation.with_fixes)
    _print_errors(outcome.results)
    if not invocation.quiet and invocation.output_format == Format.TEXT:
        fixable = sum(1 for finding in findings if finding.applicable)
        typer.echo(f"unleak: {len(findings)} findings ({fixable} fixable with `unleak apply`).", err=True)
    _print_verbose(invocation, outcome)
    return _exit_code(outcome, found=bool(findings))


def _output_diff(invocation: Invocation, outcome: RunResult) -> int:
    patch = b"".join(unified_diff(result.display, result.original, result.fixed) for result in outcome.changed)
    colour = _stdout_is_terminal() and not os.environ.get("NO_COLOR")
    _write_stdout(colourize(patch) if colour else patch)
    _print_left_for_human(invocation, outcome.results)
    _print_verbose(invocation, outcome)
    return _exit_code(outcome, found=bool(patch))


def _output_apply(invocation: Invocation, outcome: RunResult) -> int:
    if invocation.interactive:
        return _output_review(invocation, outcome)
    numbers = report.summary(outcome.scanned, outcome.skipped, outcome.results)
    if invocation.output_format == Format.JSON:
        findings = [finding.as_json() for finding in report.findings_of(outcome.results)]
        typer.echo(json.dumps({**numbers, "findings": findings}, indent=2), err=True)
        _print_errors(outcome.results)
    else:
        _print_left_for_human(invocation, outcome.results)
        if not invocation.quiet and invocation.output_format != Format.SARIF:  # SARIF: stderr stays one JSON log
            typer.echo(report.summary_text(numbers), err=True)
    return _exit_code(outcome, found=False)


def _output_review(invocation: Invocation, outcome: RunResult) -> int:
    """`apply --interactive`: ask about each fix, write the accepted ones, then summarise."""
    from unleak.output import review as reviewing  # LibCST: only where a fix is reviewed

    colour = _stdout_is_terminal() and not os.environ.get("NO_COLOR")
    done = reviewing.review(outcome.results, reviewing.Terminal(sys.stdout, _read_answer, colour))
    _print_errors(outcome.results)
    for line in done.errors:
        typer.echo(line, err=True)
    if not invocation.quiet:
        ending = " (quit)" if done.quit else ""
        typer.echo(f"unleak: {len(done.written)} files written; fixes: {report.per_rule(done.fixes)}{ending}", err=True)
    return EXIT_ERROR if outcome.errors or done.errors else EXIT_OK


def _read_answer() -> str:
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line


_OUTPUTS: dict[Mode, Callable[[Invocation, RunResult], int]] = {
    Mode.CHECK: _output_check,
    Mode.DIFF: _output_diff,
    Mode.APPLY: _output_apply,
}


def _print_left_for_human(invocation: Invocation, results: list[FileResult]) -> None:
    """Findings without an applied fix go to stderr (diff, apply); errors always do."""
    if not invocation.quiet or invocation.output_format != Format.TEXT:
        formats.write_findings(results, sys.stderr, invocation.output_format)
    _print_errors(results)


def _print_errors(results: list[FileResult]) -> None:
    for line in report.error_lines(results):
        typer.echo(line, err=True)


def _print_verbose(invocation: Invocation, outcome: RunResult) -> None:
    if invocation.verbose:
        parsed = len(outcome.results) - len([r for r in outcome.results if not r.parsed])
        typer.echo(
            f"unleak: {outcome.scanned} files found, {outcome.skipped} skipped by the prefilter, "
            f"{parsed} parsed with up to {invocation.jobs} workers",
            err=True,
        )


def _exit_code(outcome: RunResult, *, found: bool) -> int:
    if outcome.errors:
        return EXIT_ERROR
    return EXIT_FOUND if found else EXIT_OK


def _stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def _write_stdout(data: bytes) -> None:
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


RepositoriesArg = Annotated[Optional[list[str]], typer.Argument(help="Local git checkouts or git URLs.")]


@app.command("bulk")
def bulk(
    repositories: RepositoriesArg = None,
    from_file: Annotated[Optional[Path], typer.Option(help="Read repositories from this file, one a line.")] = None,
    branch: Annotated[Optional[str], typer.Option(help="Commit the fixes on this new branch.")] = None,
    message: Annotated[Optional[str], typer.Option(help="The commit's first line (default: unleak: N fixes).")] = None,
    push: Annotated[bool, typer.Option("--push", help="Push the branch to the repository's origin.")] = False,
    patch_dir: Annotated[Optional[Path], typer.Option(help="Write DIR/<name>.patch per changed repository.")] = None,
    check: Annotated[bool, typer.Option("--check", help="Only report findings.")] = False,
    select: SelectOpt = None,
    ignore: IgnoreOpt = None,
    unsafe: UnsafeOpt = None,
    jobs: Annotated[Optional[int], typer.Option(min=1, help="Repositories at once, locally (default: the cores).")] = None,
    scheduler: Annotated[Optional[str], typer.Option(help="A Dask scheduler (tcp://HOST:PORT): one task per repository.")] = None,
    report_file: Annotated[Optional[Path], typer.Option("--report", help="Write the summary as JSON to this file.")] = None,
) -> None:
    """Apply the fixes across many repositories, each with its own configuration; summarise."""
    from unleak.workflows import bulk_command  # rich and the scheduling load only for this command

    overrides = Overrides(_selectors(select), _selectors(ignore), unsafe)
    try:
        _validate_selector_flags(overrides)
        listed = bulk_command.read_repository_list(from_file) if from_file is not None else []
        plan = bulk_command.Plan(
            [*(repositories or []), *listed], overrides, branch, message, push, patch_dir, check,
            jobs or _default_jobs(), scheduler, report_file,
        )
        raise typer.Exit(bulk_command.run_bulk(plan))
    except UserError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(EXIT_ERROR) from None


class DocFormat(str, enum.Enum):
    TEXT = "text"
    JSON = "json"


DocFormatOpt = Annotated[DocFormat, typer.Option("--format", help="text, or json for editors and CI.")]


@app.command("rules")
def rules_command(output_format: DocFormatOpt = DocFormat.TEXT) -> None:
    """List every rule: code, name, fix safety, summary."""
    from unleak.output import explain as explaining  # the rules' documentation: imports every rule

    if output_format == DocFormat.JSON:
        typer.echo(json.dumps([explaining.rule_json(rule) for rule in registry.all_rules()], indent=2))
    else:
        typer.echo(explaining.rules_table(registry.all_rules()))


@app.command("clean")
def clean_command(paths: PathsArg = None) -> None:
    """Remove the results cache (`.unleak_cache/`) of the projects of PATHS, and any below them."""
    for folder in cache.remove(paths or [Path(".")]):
        typer.echo(f"removed {display_path(folder)}", err=True)


@app.command("explain")
def explain_command(
    rule: Annotated[str, typer.Argument(help="A rule code (UL401) or name (bare-except).")],
    output_format: DocFormatOpt = DocFormat.TEXT,
) -> None:
    """Show a rule's documentation with its examples."""
    from unleak.output import explain as explaining

    found = registry.find_rule(rule)
    if found is None:
        typer.echo(f"{rule}: error: no such rule (see `unleak rules`)", err=True)
        raise typer.Exit(EXIT_ERROR)
    if output_format == DocFormat.JSON:
        typer.echo(json.dumps(explaining.explanation_json(found), indent=2))
    else:
        typer.echo(explaining.explanation(found))


def main() -> None:
    app()
