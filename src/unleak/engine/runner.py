"""The whole run, top to bottom: discover -> read -> prefilter -> process -> write.

The CLI calls `run` (files and folders) or `run_stdin` (one source on standard input) and turns
the returned `RunResult` into output and an exit code.
"""

from __future__ import annotations

import enum
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from unleak import registry
from unleak.engine.cache import ResultCache
from unleak.engine.discover import absolute_text, discover, folder_of, is_below, project_root, root_of
from unleak.engine.findings import FileResult
from unleak.engine.indexing import build_index, project_files
from unleak.engine.jobs import Job
from unleak.engine.prefilter import triggered_rules
from unleak.engine.source import read_bytes
from unleak.engine.write import write_atomically
from unleak.errors import UserError
from unleak.registry import Selectable
from unleak.settings import Settings, SettingsResolver

if TYPE_CHECKING:
    from unleak.engine.execute import Progress
    from unleak.knowledge.project import ProjectIndex

# A progress line only when the run is long enough to wait for.
_PROGRESS_FROM = 50


class Mode(str, enum.Enum):
    CHECK = "check"
    CHECK_WITH_EDITS = "check-with-edits"  # check, each finding with its fix as edits (JSON, SARIF)
    DIFF = "diff"
    APPLY = "apply"

    @property
    def fixing(self) -> bool:
        return self in (Mode.DIFF, Mode.APPLY)


@dataclass
class RunResult:
    results: list[FileResult] = field(default_factory=list)  # parsed or failed files, by path
    scanned: int = 0  # Python files found
    skipped: int = 0  # of those, ruled out by the prefilter before the LibCST parse

    @property
    def errors(self) -> list[FileResult]:
        return [result for result in self.results if result.error]

    @property
    def changed(self) -> list[FileResult]:
        return [result for result in self.results if result.fixed is not None and not result.error]


def run(mode: Mode, paths: list[Path], resolver: SettingsResolver, workers: int, *, use_cache: bool = True) -> RunResult:
    outcome = RunResult()
    discovery = discover(paths, resolver)
    outcome.results.extend(_failed(error) for error in discovery.errors)
    outcome.scanned = len(discovery.files)
    cache = ResultCache() if use_cache else None
    making = _JobMaker(mode, resolver, cache, outcome)
    jobs = [job for job in map(making.job, discovery.files) if job is not None]
    projects = _Projects(_asked_roots(jobs), resolver, _Walked([absolute_text(path) for path in paths if path.is_dir()], discovery.files))
    if cache is not None:
        cache.projects = projects
    for result in _results(jobs, workers, projects, cache):
        if result.parsed or result.error:
            outcome.results.append(result)
        else:
            outcome.skipped += 1
    if cache is not None:
        cache.save()
    if mode is Mode.APPLY:
        write_all(outcome.changed)
    outcome.results.sort(key=lambda result: result.display)
    return outcome


def _results(jobs: list[Job], workers: int, projects: _Projects, cache: ResultCache | None) -> list[FileResult]:
    """Every job's result, in the jobs' order: from the cache where it has one, else computed (and kept)."""
    cached = [cache.look_up(job) if cache is not None else None for job in jobs]
    missing = [job for job, result in zip(jobs, cached) if result is None]
    if not missing:
        return [result for result in cached if result is not None]
    computed = iter(execute(missing, workers, projects.indexes(), _progress_reporter(len(missing))))
    results = [result if result is not None else next(computed) for result in cached]
    if cache is not None:
        for job, from_cache, result in zip(jobs, cached, results):
            if from_cache is None:
                cache.store(job, result)
    return results


def run_stdin(mode: Mode, raw: bytes, stdin_filename: str | None, resolver: SettingsResolver) -> FileResult:
    """Process one source given on standard input; nothing is written to disk."""
    display = stdin_filename or "-"
    named = Path(stdin_filename) if stdin_filename else Path.cwd() / "-"
    settings = resolver.for_path(named)
    rules = registry.rules_for(settings, named)
    codes = tuple(rule.code for rule in triggered_rules(raw, rules, settings))
    project = root_of(absolute_text(named)) if stdin_filename else None  # the source stands for that file
    selected = tuple(rule.code for rule in rules)
    job = Job(display, None, raw, codes, settings, mode.fixing, project, mode is Mode.CHECK_WITH_EDITS, selected)
    [result] = execute([job], 1, _Projects(_asked_roots([job]), resolver, _Walked([], [])).indexes())
    return result


def execute(
    jobs: list[Job], workers: int, indexes: dict[str, ProjectIndex], progress: Progress | None = None
) -> list[FileResult]:
    """`engine.execute.execute`, imported by the first run that parses: the process pool's modules
    cost more than a cached run of a whole project."""
    from unleak.engine import execute as executing

    return executing.execute(jobs, workers, indexes, progress)


def display_path(path: Path) -> str:
    """The path relative to the current folder when it is below it, else absolute."""
    return _Displayed(os.getcwd())(absolute_text(path))


@dataclass(frozen=True)
class _Displayed:
    """How a file is named in the output: relative to `cwd` when it is below it, else absolute."""

    cwd: str

    def __call__(self, path: str) -> str:
        """`path` (absolute, as text) as it is shown."""
        if path == self.cwd:
            return "."
        return path[len(self.cwd.rstrip("/")) + 1 :] if is_below(path, self.cwd) else path


@dataclass(frozen=True)
class _Folder:
    """What the files of one folder share."""

    settings: Settings
    rules: tuple[Selectable, ...] | None  # None: `per-file-ignores` may take some away, file by file
    project: str  # the project whose index the files' rules may ask (`root_of`)


class _JobMaker:
    """Turns each discovered file into its job: read, and searched for the rules' byte triggers."""

    def __init__(self, mode: Mode, resolver: SettingsResolver, cache: ResultCache | None, outcome: RunResult) -> None:
        self._mode = mode
        self._resolver = resolver
        self._cache = cache
        self._outcome = outcome
        self._shown = _Displayed(os.getcwd())
        self._folders: dict[str, _Folder] = {}

    def job(self, path: str) -> Job | None:
        """The job for one discovered file (absolute, as text), or None when there is nothing to parse it for."""
        folder = self._folder(folder_of(path))
        rules = folder.rules if folder.rules is not None else registry.rules_for(folder.settings, path)
        try:
            raw = read_bytes(path)
        except UserError as error:
            self._outcome.results.append(_failed(UserError(self._shown(path), error.reason)))
            return None
        if self._cache is not None:
            codes = self._cache.triggered(path, raw, rules, folder.settings)
        else:
            codes = tuple(rule.code for rule in triggered_rules(raw, rules, folder.settings))
        if not codes:
            self._outcome.skipped += 1
            return None
        mode, selected = self._mode, tuple(rule.code for rule in rules)
        return Job(self._shown(path), Path(path), raw, codes, folder.settings, mode.fixing, folder.project, mode is Mode.CHECK_WITH_EDITS, selected)

    def _folder(self, folder: str) -> _Folder:
        if folder not in self._folders:
            settings = self._resolver.for_folder(folder)
            rules = None if settings.per_file_ignores else registry.rules_for(settings, folder)
            self._folders[folder] = _Folder(settings, rules, project_root(folder) or folder)
        return self._folders[folder]


@dataclass(frozen=True)
class _Walked:
    """What the run's discovery already walked: its folders, and the files it found there (absolute, as text)."""

    folders: list[str]
    files: list[str]

    def files_of(self, root: str) -> list[str]:
        """The project's files when a walked folder holds the whole project, else [] (walk it)."""
        walked = any(folder == root or is_below(root, folder) for folder in self.folders)
        return [file for file in self.files if is_below(file, root)] if walked else []


def _asked_roots(jobs: list[Job]) -> list[str]:
    """The projects whose index the jobs' rules may ask: none when no such rule may fire."""
    uses_project = {rule.code for rule in registry.catalog() if rule.uses_project}
    return sorted({job.project_root for job in jobs if job.project_root is not None and uses_project.intersection(job.rule_codes)})


class _Projects:
    """The projects whose index the run's rules may ask: their files, listed when first asked
    (the cache's check that nothing changed), and their index, built only for a run that parses
    or re-asks it."""

    def __init__(self, roots: list[str], resolver: SettingsResolver, walked: _Walked) -> None:
        self.roots = roots
        self._resolver = resolver
        self._walked = walked
        self._files: dict[str, frozenset[str]] = {}
        self._indexes: dict[str, ProjectIndex] | None = None

    def files(self, root: str) -> frozenset[str] | None:
        """The project's Python files, relative to `root` (None: its index is not asked)."""
        if root not in self.roots:
            return None
        if root not in self._files:
            self._files[root] = project_files(root, self._resolver, self._walked.files_of(root))
        return self._files[root]

    def indexes(self) -> dict[str, ProjectIndex]:
        if self._indexes is None:
            self._indexes = {root: build_index(Path(root), self._resolver, self._walked.files_of(root)) for root in self.roots}
        return self._indexes


def _failed(error: UserError) -> FileResult:
    return FileResult(display=error.path, path=None, original=b"", error=error.reason, parsed=False)


class Interrupted(Exception):
    """Ctrl-C while files were being written: each file holds its old or its new content (the
    writes are atomic); `written` names those that got the new one."""

    def __init__(self, written: list[str]) -> None:
        super().__init__(f"interrupted after {len(written)} files were written")
        self.written = written


def write_all(results: list[FileResult]) -> None:
    """Write each result's fixed bytes; on Ctrl-C, raise Interrupted naming the files written."""
    try:
        for result in results:
            write_result(result)
    except KeyboardInterrupt:
        raise Interrupted([result.display for result in results if holds_fixed(result)]) from None


def holds_fixed(result: FileResult) -> bool:
    """Whether the file on disk now holds the result's fixed bytes."""
    try:
        return result.path is not None and read_bytes(result.path) == result.fixed
    except UserError:
        return False


def write_result(result: FileResult) -> None:
    """Write the fixed bytes atomically; a failure becomes the result's error."""
    assert result.path is not None and result.fixed is not None
    try:
        write_atomically(result.path, result.fixed, result.original, result.display)
    except UserError as error:
        result.error = error.reason
    except OSError as error:
        result.error = f"cannot write: {error.strerror or error}"


def _progress_reporter(total: int) -> Progress | None:
    if total < _PROGRESS_FROM or not sys.stderr.isatty() or os.environ.get("CI"):
        return None
    from unleak.engine.execute import terminal_progress

    return terminal_progress
