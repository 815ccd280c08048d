"""Stage 2b: the project index, built once per project before the per-file work.

A project is the nearest folder above a file that holds `pyproject.toml`, `setup.cfg` or `.git`
(a file named on the command line still gets its whole project indexed). Its Python files go
through a byte trigger, then CPython's `ast`, never LibCST: only files that may declare a model,
a session factory, a context-manager factory or a delete listener are parsed, plus the
`__init__.py` files that re-export names. `unleak.knowledge.project` answers the questions.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from unleak.engine.discover import discover
from unleak.knowledge.declarations import ModuleFacts, module_facts
from unleak.knowledge.project import ProjectIndex
from unleak.settings import SettingsResolver

PROJECT_MARKERS = ("pyproject.toml", "setup.cfg", ".git")
# What a file must contain to possibly declare something the index records.
INDEX_TRIGGER = re.compile(
    rb"__tablename__|Column\(|mapped_column\(|Mapped\[|Field\(|table\s*=\s*True"  # models
    rb"|sessionmaker|scoped_session|(?i:session)\w*\s*\("  # session factories, functions handing out sessions
    rb"|contextmanager|listens_for|\.listen\(|_delete\b"  # context managers, delete listeners
)
_RE_EXPORTS = re.compile(rb"\bimport\b")
_SOURCE_FOLDERS = ("src", "lib")


@cache
def project_root(folder: Path) -> Path | None:
    """The nearest folder at or above `folder` with a project marker."""
    for candidate in (folder, *folder.parents):
        if any((candidate / marker).exists() for marker in PROJECT_MARKERS):
            return candidate
    return None


def root_of(path: Path) -> Path:
    """The project of a file: its marked root, or its own folder when nothing above is marked."""
    folder = path.absolute().parent
    return project_root(folder) or folder


def build_index(root: Path, resolver: SettingsResolver) -> ProjectIndex:
    index = ProjectIndex(root=root.as_posix())
    for path in discover([root], resolver).files:
        relative = path.absolute().relative_to(root).as_posix()
        facts = _facts_of(path, relative)
        if facts is not None:
            index.modules[relative] = facts
    index.anchored, index.suffixes = _module_names(root, index.modules)
    return index


def _facts_of(path: Path, relative: str) -> ModuleFacts | None:
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    wanted = INDEX_TRIGGER if path.name != "__init__.py" else _RE_EXPORTS
    if not wanted.search(raw):
        return None
    try:
        tree = ast.parse(raw)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # the per-file stage reports it
    return module_facts(tree, relative)


def _module_names(root: Path, modules: Iterable[str]) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """Dotted names for each file (given relative to `root`): below a source root (the project
    root, `src/`, the folder above a package), and every dotted tail of its path, for code run
    from a subfolder."""
    anchored: dict[str, list[str]] = defaultdict(list)
    suffixes: dict[str, list[str]] = defaultdict(list)
    for module in modules:
        path = root / module
        parts = _dotted_parts(Path(module))
        for source_root in _source_roots(root, path):
            name = ".".join(_dotted_parts(path.relative_to(source_root)))
            if name and module not in anchored[name]:
                anchored[name].append(module)
        for start in range(len(parts)):
            suffixes[".".join(parts[start:])].append(module)
    return _frozen(anchored), _frozen(suffixes)


def _source_roots(root: Path, path: Path) -> list[Path]:
    roots = [root] + [root / folder for folder in _SOURCE_FOLDERS if (root / folder) in path.parents]
    package = path.parent
    while package != root and (package / "__init__.py").exists():
        package = package.parent
    if package not in roots:
        roots.append(package)
    return roots


def _dotted_parts(relative: Path) -> list[str]:
    parts = list(relative.with_suffix("").parts)
    return parts[:-1] if parts and parts[-1] == "__init__" else parts


def _frozen(names: dict[str, list[str]]) -> dict[str, tuple[str, ...]]:
    return {name: tuple(paths) for name, paths in names.items()}
