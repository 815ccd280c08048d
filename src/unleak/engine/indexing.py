"""Stage 2b: the project index, one per project, handed to every worker once.

A project is the nearest folder above a file that holds `pyproject.toml`, `setup.cfg` or `.git`
(a file named on the command line still gets its whole project indexed). The parent process
lists the project's Python files; nothing is read yet. A worker reads a module the first time a
lookup reaches it, through a byte trigger and then CPython's `ast`, never LibCST, and keeps the
facts for the rest of the run. So a run pays only for the modules its findings ask about:
on a large tree where few files reach a rule that asks, the index costs next to nothing.
`unleak.knowledge.project` answers the questions.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from unleak.engine.discover import absolute_text, discover, is_below
from unleak.settings import SettingsResolver

if TYPE_CHECKING:
    from unleak.knowledge.declarations import ModuleFacts
    from unleak.knowledge.project import ProjectIndex

# What a file must contain to possibly declare something the index records.
_MODELS = rb"__tablename__|mapped_column\(|\bColumn\(|table\s*=\s*True|Mapped\[|models\.(?:Model\b|\w*Field\()|Field\("
_SESSIONS = rb"|sessionmaker|scoped_session|(?i:session)\w*\s*\("  # factories, functions handing out sessions
_LISTENERS = rb"listens_for|\.listen\(|(?:pre|post|before|after)_delete"
INDEX_TRIGGER = re.compile(_MODELS + _SESSIONS + rb"|contextmanager|" + _LISTENERS)
LISTENER_TRIGGER = re.compile(_LISTENERS)
_RE_EXPORTS = re.compile(rb"\bimport\b")  # an `__init__.py` matters when it re-exports names
_SOURCE_FOLDERS = ("src/", "lib/")
_PACKAGE_MARKER = "__init__.py"


def build_index(root: Path | str, resolver: SettingsResolver, known: Iterable[str] = ()) -> ProjectIndex:
    """The index of the project at `root` (`project_files` lists it)."""
    from unleak.knowledge.project import ProjectIndex  # the index's code: only for a run that asks it

    top = root if isinstance(root, str) else absolute_text(root)
    return ProjectIndex(ProjectFiles(top, project_files(top, resolver, known)))


def project_files(root: str, resolver: SettingsResolver, known: Iterable[str] = ()) -> frozenset[str]:
    """The Python files of the project at `root` (absolute, as text), relative to it. `known`
    are files the run already discovered (absolute); the project's folder is walked again only
    when the run did not cover it."""
    files = list(known) or discover([Path(root)], resolver).files
    start = len(root.rstrip("/")) + 1
    return frozenset(path[start:] for path in files if is_below(path, root))


@dataclass
class ProjectFiles:
    """A project's Python files, read the first time a lookup reaches them (a `ModuleSource`)."""

    root: str
    paths: frozenset[str]  # posix, relative to the root
    _facts: dict[str, ModuleFacts | None] = field(default_factory=dict, repr=False)
    _names: tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]] | None = field(default=None, repr=False)

    def facts(self, path: str) -> ModuleFacts | None:
        if path not in self.paths:
            return None
        if path not in self._facts:
            self._facts[path] = _read_facts(Path(self.root) / path, path)
        return self._facts[path]

    def module_paths(self, dotted: str) -> tuple[str, ...]:
        if self._names is None:
            self._names = _module_names(self.paths)
        anchored, suffixes = self._names
        return anchored.get(dotted) or suffixes.get(dotted, ())

    def listening_modules(self) -> Iterator[ModuleFacts]:
        for path in sorted(self.paths):
            if path in self._facts or _contains(Path(self.root) / path, LISTENER_TRIGGER):
                facts = self.facts(path)
                if facts is not None and facts.listeners:
                    yield facts


def _read_facts(path: Path, relative: str) -> ModuleFacts | None:
    from unleak.knowledge.declarations import module_facts  # read in the workers, where the index is asked

    try:
        raw = path.read_bytes()
    except OSError:
        return None
    wanted = _RE_EXPORTS if path.name == _PACKAGE_MARKER else INDEX_TRIGGER
    if not wanted.search(raw):
        return None
    try:
        tree = ast.parse(raw)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # the per-file stage reports it
    return module_facts(tree, relative)


def _contains(path: Path, trigger: re.Pattern[bytes]) -> bool:
    try:
        return trigger.search(path.read_bytes()) is not None
    except OSError:
        return False


def _module_names(paths: frozenset[str]) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """Dotted names for each file: below a source root (the project root, `src/`, `lib/`, the
    folder above a package), and every dotted tail of its path, for code run from a subfolder."""
    packages = {str(PurePosixPath(path).parent) for path in paths if PurePosixPath(path).name == _PACKAGE_MARKER}
    anchored: dict[str, list[str]] = defaultdict(list)
    suffixes: dict[str, list[str]] = defaultdict(list)
    for path in sorted(paths):
        parts = _dotted_parts(path)
        for prefix in _source_roots(path, packages):
            name = ".".join(parts[len(prefix) :])
            if name and path not in anchored[name]:
                anchored[name].append(path)
        for start in range(len(parts)):
            suffixes[".".join(parts[start:])].append(path)
    return _frozen(anchored), _frozen(suffixes)


def _source_roots(path: str, packages: set[str]) -> list[tuple[str, ...]]:
    """The folders (as path parts) a file's module name may be counted from."""
    roots: list[tuple[str, ...]] = [()]
    roots += [(folder.rstrip("/"),) for folder in _SOURCE_FOLDERS if path.startswith(folder)]
    package = PurePosixPath(path).parent
    while str(package) in packages and package != package.parent:  # `.` is its own parent
        package = package.parent
    above_packages = tuple(part for part in package.parts if part != ".")
    if above_packages not in roots:
        roots.append(above_packages)
    return roots


def _dotted_parts(path: str) -> list[str]:
    parts = list(PurePosixPath(path).with_suffix("").parts)
    return parts[:-1] if parts and parts[-1] == "__init__" else parts


def _frozen(names: dict[str, list[str]]) -> dict[str, tuple[str, ...]]:
    return {name: tuple(paths) for name, paths in names.items()}
