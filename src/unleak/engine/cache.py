"""Stage 5b: results of earlier runs, so that an unchanged file is not parsed again.

An entry is one file's result (findings, fixes, fixed bytes, error) under one key: the hash of
the file's bytes, of unleak's own code, of whether the run fixes (or proposes fixes as edits),
of the rules that run on the file and of the settings they read. A result may also depend on
other modules, through the project index: the entry keeps every question the file's rules asked
the index, with the answer, and is used only when the index still answers the same.

Entries live in `.unleak_cache/` at the project root (the nearest folder with `pyproject.toml`,
`setup.cfg` or `.git`; a file outside any project is not cached), which holds its own
`.gitignore`, as ruff's cache does. Each entry is written to a temporary file and renamed into
place, so runs can share the cache; an entry that cannot be read is a miss, never an error.

Two shortcuts keep a run where nothing changed cheap. Which rules' byte triggers occur in a
file is kept too, one memo per project (`triggers`), by the hash of the file's bytes and of the
triggers: a re-run does not search every file again (the memo holds only what this version of
unleak learned, so it does not grow with every upgrade). And an entry that relied on the project
index remembers the state of the project it was computed in (the hash of every indexed file's
path and bytes): while the run reads the same project, its answers hold without asking again.
"""

from __future__ import annotations

import ast
import hashlib
import os
import pickle
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import unleak
from unleak import registry, transforms
from unleak.engine import source
from unleak.engine.discover import absolute_text, folder_of, project_root
from unleak.engine.findings import FileResult, Finding
from unleak.engine.jobs import Job
from unleak.engine.prefilter import triggered_rules
from unleak.errors import UserError
from unleak.registry import Selectable
from unleak.settings import Settings

if TYPE_CHECKING:
    from unleak.knowledge.project import ProjectIndex

CACHE_FOLDER = ".unleak_cache"
_ENTRIES = "entries"
_TRIGGERS = "triggers"
_GITIGNORE = "# Written by unleak: this folder is its cache (`unleak clean` removes it).\n*\n"


@dataclass(frozen=True)
class _Entry:
    """What is stored: the result without the parts that depend on where the file is."""

    fixed: bytes | None
    findings: list[Finding]
    fixes: Counter[str]
    error: str | None
    parsed: bool
    answers: dict[tuple[str, str], str]  # the project index's answers the result relied on
    asked_in: tuple[str, bytes] | None  # the file's relative path and the project's state then


class Projects(Protocol):
    """The projects whose index the run's rules may ask (the runner's)."""

    def files(self, root: str) -> frozenset[str] | None:
        """The project's Python files, relative to `root` (None: its index is not asked)."""

    def indexes(self) -> dict[str, ProjectIndex]:
        """Their indexes, by root."""


@dataclass
class _TriggerMemo:
    """One project's memo of the byte prefilter: the triggered rules' codes, by
    `_trigger_signature` followed by the hash of the file's bytes. The file holds the memo of
    one version of unleak (`_code_fingerprint`)."""

    location: str
    known: dict[bytes, tuple[str, ...]]
    learned: dict[bytes, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def read(cls, location: str) -> _TriggerMemo:
        try:
            with open(location, "rb") as stream:
                version, known = pickle.load(stream)
        except Exception:  # missing, truncated, in another format: nothing known
            return cls(location, {})
        return cls(location, known if version == _code_fingerprint() and isinstance(known, dict) else {})

    def save(self) -> None:
        """Add what this run learned to what the file holds now (another run may have written it)."""
        if not self.learned:
            return
        merged = {**_TriggerMemo.read(self.location).known, **self.learned}
        try:
            memo = (_code_fingerprint(), merged)
            _write_atomically(self.location, pickle.dumps(memo, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            pass  # a cache that cannot be written only costs time
        self.learned.clear()


@dataclass
class ResultCache:
    """The run's view of the caches of the projects it touches. Paths are absolute, as text."""

    projects: Projects | None = None  # set once the run has its jobs
    hits: int = 0
    _stored: set[str] = field(default_factory=set)
    _memos: dict[str, _TriggerMemo] = field(default_factory=dict)
    _digests: dict[str, dict[str, bytes]] = field(default_factory=dict)  # per project: each file's bytes' hash
    _states: dict[str, bytes | None] = field(default_factory=dict)  # per project: see `_state`

    def triggered(self, path: str, raw: bytes, rules: tuple[Selectable, ...], settings: Settings) -> tuple[str, ...]:
        """The codes of `rules` whose byte triggers occur in `raw`, the bytes of the file at the
        absolute `path` (`prefilter.triggered_rules`)."""
        root = project_root(folder_of(path))
        digest = hashlib.sha256(raw).digest()
        if root is not None:
            self._digests.setdefault(root, {})[_relative(path, root)] = digest
        return self._remembered_triggers(root, digest, raw, rules, settings)

    def _remembered_triggers(
        self, root: str | None, digest: bytes, raw: bytes, rules: tuple[Selectable, ...], settings: Settings
    ) -> tuple[str, ...]:
        if root is None:  # outside any project: nothing is cached
            return tuple(rule.code for rule in triggered_rules(raw, rules, settings))
        memo = self._memos.get(root)
        if memo is None:
            memo = self._memos[root] = _TriggerMemo.read(os.path.join(root, CACHE_FOLDER, _TRIGGERS))
        key = _trigger_signature(rules, settings) + digest
        codes = memo.known.get(key)
        if codes is None:
            codes = memo.learned[key] = tuple(rule.code for rule in triggered_rules(raw, rules, settings))
        return codes

    def save(self) -> None:
        """Write what the run learned about triggers (the entries are written as results come)."""
        for memo in self._memos.values():
            memo.save()

    def look_up(self, job: Job) -> FileResult | None:
        location = _location(job)
        if location is None:
            return None
        entry = _read(location)
        if entry is None or not self._answers_hold(job, entry):
            return None
        self.hits += 1
        return FileResult(
            display=job.display,
            path=job.path,
            original=job.raw,
            fixed=entry.fixed,
            findings=[finding if finding.path == job.display else replace(finding, path=job.display) for finding in entry.findings],
            fixes=Counter(entry.fixes),
            error=entry.error,
            parsed=entry.parsed,
            project_answers=dict(entry.answers),
        )

    def store(self, job: Job, result: FileResult) -> None:
        """Keep `result`; for a fixing run, also the result of its fixed source, which the fixed
        point promises: no change, the same findings (`apply` then `apply` again reads nothing)."""
        self._write(job, result)
        if job.fixing and result.fixed is not None and result.error is None:
            settled_job = replace(job, raw=result.fixed)
            if self._triggered(settled_job) == job.rule_codes:  # else a rule the run did not run would see it
                self._write(settled_job, replace(result, original=result.fixed, fixed=None, fixes=Counter()))

    def _write(self, job: Job, result: FileResult) -> None:
        location = _location(job)
        if location is None or location in self._stored or os.path.exists(location):
            return
        asked_in = self._asked_in(job) if result.project_answers else None
        entry = _Entry(result.fixed, result.findings, result.fixes, result.error, result.parsed, result.project_answers, asked_in)
        try:
            _write_atomically(location, pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            return  # a cache that cannot be written only costs time
        self._stored.add(location)

    def _triggered(self, job: Job) -> tuple[str, ...]:
        """The rules `job.raw` triggers (a fixed source: remembered, so that the next run, which
        reads it from the file, finds the answer)."""
        assert job.path is not None
        path = absolute_text(job.path)
        selected = registry.rules_for(job.settings, path)
        root = project_root(folder_of(path))
        return self._remembered_triggers(root, hashlib.sha256(job.raw).digest(), job.raw, selected, job.settings)

    def _answers_hold(self, job: Job, entry: _Entry) -> bool:
        if not entry.answers or (entry.asked_in is not None and entry.asked_in == self._asked_in(job)):
            return True
        index = self.projects.indexes().get(job.project_root or "") if self.projects is not None else None
        if index is None or job.path is None or job.project_root is None:
            return False
        try:
            tree = ast.parse(source.decode(job.raw, job.display).text)
        except (UserError, SyntaxError, ValueError, RecursionError, MemoryError):
            return False
        from unleak.knowledge.declarations import module_facts  # only where the index is asked again

        return index.view(module_facts(tree, _relative(absolute_text(job.path), job.project_root))).still_answers(entry.answers)

    def _asked_in(self, job: Job) -> tuple[str, bytes] | None:
        """The file's path in its project and the project's state (None: unknown)."""
        if job.path is None or job.project_root is None:
            return None
        if job.project_root not in self._states:
            self._states[job.project_root] = self._state(job.project_root)
        state = self._states[job.project_root]
        return (_relative(absolute_text(job.path), job.project_root), state) if state is not None else None

    def _state(self, root: str) -> bytes | None:
        """The hash of the path and bytes of every file the project's index holds (None: the run
        did not read them all). Called once the run has read its files."""
        files = self.projects.files(root) if self.projects is not None else None
        digests = self._digests.get(root, {})
        if files is None or not files <= digests.keys():
            return None
        state = hashlib.sha256()
        for path in sorted(files):
            state.update(b"%s\0%s" % (path.encode(), digests[path]))  # a digest is 32 bytes: unambiguous
        return state.digest()


def _relative(path: str, root: str) -> str:
    """The absolute `path`, below the absolute `root`, relative to it."""
    return path[len(root.rstrip("/")) + 1 :]


@cache
def _trigger_signature(rules: tuple[Selectable, ...], settings: Settings) -> bytes:
    """What the byte prefilter's answer depends on besides the file: unleak's code, the rules' triggers
    (a hash: 32 bytes)."""
    triggers = repr(tuple((rule.code, rule.trigger_for(settings)) for rule in rules))
    return hashlib.sha256((_code_fingerprint() + triggers).encode()).digest()


def remove(paths: list[Path]) -> list[Path]:
    """`unleak clean`: remove the caches of the projects of `paths`, and any below them."""
    found: set[Path] = set()
    for path in paths:
        folder = path.absolute() if path.is_dir() else path.absolute().parent
        root = project_root(absolute_text(folder))
        candidates = [Path(root, CACHE_FOLDER)] if root is not None else []
        candidates += folder.rglob(CACHE_FOLDER) if path.is_dir() else []
        found |= {candidate for candidate in candidates if candidate.is_dir()}
    for folder in sorted(found):
        shutil.rmtree(folder, ignore_errors=True)
    return sorted(found)


def _location(job: Job) -> str | None:
    if job.path is None:
        return None
    root = project_root(folder_of(absolute_text(job.path)))
    if root is None:
        return None
    return os.path.join(root, CACHE_FOLDER, _ENTRIES, _key(job))


def _key(job: Job) -> str:
    digest = hashlib.sha256(_code_fingerprint().encode())
    settings = (job.fixing, job.proposing, job.rule_codes, job.settings.unsafe, job.settings.resources)
    digest.update(repr(settings).encode())
    digest.update(job.raw)
    return digest.hexdigest()


@cache
def _code_fingerprint() -> str:
    """unleak's version and the hash of its own code: a result is only as good as the rules that made it."""
    digest = hashlib.sha256(unleak.__version__.encode())
    for package in (Path(unleak.__file__).parent, *map(Path, transforms.__path__)):
        for module in sorted(package.rglob("*.py")):
            digest.update(module.read_bytes())
    return digest.hexdigest()


def _read(location: str) -> _Entry | None:
    try:
        with open(location, "rb") as stream:
            entry = pickle.load(stream)
    except Exception:  # missing, truncated, written by another version: a miss
        return None
    return entry if isinstance(entry, _Entry) else None


def _write_atomically(location: str, data: bytes) -> None:
    folder = os.path.dirname(location)
    if not os.path.isdir(folder):
        os.makedirs(folder, exist_ok=True)
        cache_folder = folder if os.path.basename(folder) == CACHE_FOLDER else os.path.dirname(folder)  # entries/ is in it
        gitignore = os.path.join(cache_folder, ".gitignore")
        if not os.path.exists(gitignore):
            Path(gitignore).write_text(_GITIGNORE)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".entry-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, location)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
