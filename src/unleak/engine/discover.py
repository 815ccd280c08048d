"""Stage 1: which files to look at, and which project each belongs to.

`*.py` and `*.pyi` below the given paths, skipping what `.gitignore` ignores, hidden folders,
virtualenvs (any folder holding `pyvenv.cfg`), ruff's default excludes (`SKIPPED_FOLDERS`),
`__pycache__` and the `exclude` globs. A file named on the command
line is always processed, whatever the ignore rules say; a named file that is not Python is an
error for that file.

Paths are text here (absolute, `/`-separated), not `pathlib.Path`s: a walk touches thousands of
folders and files, and what each folder holds (a `.gitignore`, a `.git`, a `pyproject.toml`, a
`pyvenv.cfg`) is read from its listing instead of being asked of the file system again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from unleak import globs
from unleak.errors import UserError
from unleak.settings import Settings, SettingsResolver

if TYPE_CHECKING:
    import pathspec

PYTHON_SUFFIXES = (".py", ".pyi")
# ruff's default excludes (the hidden ones are skipped as hidden folders anyway), and __pycache__.
SKIPPED_FOLDERS = frozenset(
    {
        ".venv", "venv", "site-packages", ".tox", ".nox", ".eggs", "build", "dist", "node_modules",
        "__pypackages__", "_build", "buck-out", ".git", ".hg", ".mypy_cache", ".pytest_cache",
        ".ruff_cache", ".ipynb_checkpoints", "__pycache__",
    }
)
PROJECT_MARKERS = ("pyproject.toml", "setup.cfg", ".git")
_VIRTUALENV_MARKER = "pyvenv.cfg"
_GITIGNORE = ".gitignore"
_SETTINGS_FILE = "pyproject.toml"


@dataclass
class Discovery:
    files: list[str] = field(default_factory=list)  # absolute paths, in a stable order
    errors: list[UserError] = field(default_factory=list)


def discover(paths: list[Path], resolver: SettingsResolver) -> Discovery:
    """Every Python file to process under `paths`, in a stable order, and the paths that failed."""
    found = Discovery()
    ignores = GitIgnores()
    for path in paths:
        if path.is_dir():
            top = absolute_text(path)
            found.files.extend(_Walk(resolver, ignores).files(top, ignores.applying_in(top)))
        elif path.is_file():
            _add_named_file(path, found)
        else:
            found.errors.append(UserError(str(path), "no such file or directory"))
    found.files = list(dict.fromkeys(found.files))
    return found


def absolute_text(path: Path) -> str:
    """`path` made absolute (not resolved: `..` and links stay), as text with `/` separators."""
    return path.absolute().as_posix()


def folder_of(path: str) -> str:
    """The folder of the file at `path` (absolute, as text): `os.path.dirname`, ten times cheaper."""
    return path.rpartition("/")[0] or "/"


@cache
def project_root(folder: str) -> str | None:
    """The nearest folder at or above `folder` (absolute, as text) with a project marker."""
    if any(os.path.exists(f"{folder.rstrip('/')}/{marker}") for marker in PROJECT_MARKERS):
        return folder
    parent = folder_of(folder)
    return None if parent == folder else project_root(parent)  # the folders above: cached too


def root_of(path: str) -> str:
    """The project of a file (absolute, as text): its marked root, or its own folder when nothing above is marked."""
    folder = folder_of(path)
    return project_root(folder) or folder


def is_below(path: str, folder: str) -> bool:
    """Whether the absolute `path` is below the absolute `folder`, compared as text."""
    return path.startswith(folder.rstrip("/") + "/")


def _add_named_file(path: Path, found: Discovery) -> None:
    if path.suffix in PYTHON_SUFFIXES or _has_python_shebang(path):
        found.files.append(absolute_text(path))
    else:
        found.errors.append(UserError(str(path), "not a Python file (expected .py, .pyi or a python shebang)"))


def _has_python_shebang(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            first_line = handle.readline(200)
    except OSError:
        return False
    return first_line.startswith(b"#!") and b"python" in first_line


# The `.gitignore` files that apply to a folder's entries, from the repository root down, each
# with its folder; None outside a git repository (where `.gitignore` files mean nothing).
Applying = Optional[tuple[tuple[str, "pathspec.GitIgnoreSpec"], ...]]


@dataclass
class _Listing:
    """One folder's entries: Python files, subfolders, and every name (for the marker files)."""

    files: list[str]
    folders: list[str]
    names: frozenset[str]

    @classmethod
    def read(cls, folder: str) -> _Listing:
        files: list[str] = []
        folders: list[str] = []
        names: list[str] = []
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    names.append(entry.name)
                    if _is_walkable_folder(entry):
                        folders.append(entry.name)
                    elif not entry.is_dir() and entry.name.endswith(PYTHON_SUFFIXES):
                        files.append(entry.name)
        except OSError:
            pass  # unreadable: nothing in it, as `os.walk` has it
        return cls(sorted(files), sorted(folders), frozenset(names))


def _is_walkable_folder(entry: os.DirEntry[str]) -> bool:
    """A folder to walk into: not a link to one (`os.walk` does not follow them either)."""
    try:
        return entry.is_dir() and not entry.is_symlink()
    except OSError:
        return False


class _Walk:
    """One folder named on the command line, walked top-down in name order."""

    def __init__(self, resolver: SettingsResolver, ignores: GitIgnores) -> None:
        self._resolver = resolver
        self._ignores = ignores
        self._found: list[str] = []

    def files(self, top: str, applying: Applying) -> list[str]:
        self._folder(top, _Listing.read(top), applying)
        return self._found

    def _folder(self, folder: str, listing: _Listing, applying: Applying) -> None:
        settings = self._resolver.for_folder(folder, holds_settings=_SETTINGS_FILE in listing.names)
        for name in listing.files:
            path = f"{folder}/{name}"
            if self._keep(path, settings, applying, is_dir=False):
                self._found.append(path)
        for name in listing.folders:
            path = f"{folder}/{name}"
            if name.startswith(".") or name in SKIPPED_FOLDERS or not self._keep(path, settings, applying, is_dir=True):
                continue
            inside = _Listing.read(path)
            if _VIRTUALENV_MARKER not in inside.names:
                self._folder(path, inside, self._ignores.applying_below(applying, path, inside.names))

    def _keep(self, path: str, settings: Settings, applying: Applying, *, is_dir: bool) -> bool:
        if globs.matches(settings.exclude, path, settings.root, is_dir=is_dir):
            return False
        return not GitIgnores.ignored(applying, path, is_dir=is_dir)


class GitIgnores:
    """`.gitignore` files from the repository root (the folder holding `.git`) down to each folder."""

    def __init__(self) -> None:
        self._specs: dict[str, pathspec.GitIgnoreSpec | None] = {}

    def applying_in(self, folder: str) -> Applying:
        """What applies to the entries of `folder` (absolute, as text), asking the file system."""
        if os.path.exists(os.path.join(folder, ".git")):
            return self._with_own((), folder, has_gitignore=True)
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        above = self.applying_in(parent)
        return None if above is None else self._with_own(above, folder, has_gitignore=True)

    def applying_below(self, applying: Applying, folder: str, names: frozenset[str]) -> Applying:
        """What applies to the entries of `folder`, a subfolder of the one `applying` is for,
        given the names `folder` holds."""
        if ".git" in names:
            applying = ()  # a repository of its own: its root is here
        if applying is None:
            return None
        return self._with_own(applying, folder, has_gitignore=_GITIGNORE in names)

    def _with_own(self, applying: tuple[tuple[str, pathspec.GitIgnoreSpec], ...], folder: str, *, has_gitignore: bool) -> Applying:
        spec = self._spec(folder) if has_gitignore else None
        return (*applying, (folder, spec)) if spec is not None else applying

    @staticmethod
    def ignored(applying: Applying, path: str, *, is_dir: bool = False) -> bool:
        """Whether the last `.gitignore` of `applying` that has a say about `path` ignores it."""
        verdict = False
        for folder, spec in applying or ():
            relative = path[len(folder) + 1 :] + ("/" if is_dir else "")
            result = spec.check_file(relative)
            if result.include is not None:
                verdict = result.include
        return verdict

    def _spec(self, folder: str) -> pathspec.GitIgnoreSpec | None:
        if folder not in self._specs:
            try:
                with open(os.path.join(folder, _GITIGNORE), encoding="utf-8", errors="replace") as handle:
                    lines = handle.read().splitlines()
            except OSError:
                lines = []
            self._specs[folder] = globs.gitignore_spec(tuple(lines)) if lines else None
        return self._specs[folder]
