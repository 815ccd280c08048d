"""Stage 1: which files to look at.

`*.py` and `*.pyi` below the given paths, skipping what `.gitignore` ignores, hidden folders,
virtualenvs (any folder holding `pyvenv.cfg`), ruff's default excludes (`SKIPPED_FOLDERS`),
`__pycache__` and the `exclude` globs. A file named on the command
line is always processed, whatever the ignore rules say; a named file that is not Python is an
error for that file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from unleak import globs
from unleak.errors import UserError
from unleak.settings import Settings, SettingsResolver

PYTHON_SUFFIXES = (".py", ".pyi")
# ruff's default excludes (the hidden ones are skipped as hidden folders anyway), and __pycache__.
SKIPPED_FOLDERS = frozenset(
    {
        ".venv", "venv", "site-packages", ".tox", ".nox", ".eggs", "build", "dist", "node_modules",
        "__pypackages__", "_build", "buck-out", ".git", ".hg", ".mypy_cache", ".pytest_cache",
        ".ruff_cache", ".ipynb_checkpoints", "__pycache__",
    }
)


@dataclass
class Discovery:
    files: list[Path] = field(default_factory=list)
    errors: list[UserError] = field(default_factory=list)


def discover(paths: list[Path], resolver: SettingsResolver) -> Discovery:
    """Every Python file to process under `paths`, in a stable order, and the paths that failed."""
    found = Discovery()
    ignores = GitIgnores()
    for path in paths:
        if path.is_dir():
            found.files.extend(_walk(path, resolver, ignores))
        elif path.is_file():
            _add_named_file(path, found)
        else:
            found.errors.append(UserError(str(path), "no such file or directory"))
    found.files = sorted(dict.fromkeys(found.files))
    return found


def _add_named_file(path: Path, found: Discovery) -> None:
    if path.suffix in PYTHON_SUFFIXES or _has_python_shebang(path):
        found.files.append(path)
    else:
        found.errors.append(UserError(str(path), "not a Python file (expected .py, .pyi or a python shebang)"))


def _has_python_shebang(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            first_line = handle.readline(200)
    except OSError:
        return False
    return first_line.startswith(b"#!") and b"python" in first_line


def _walk(top: Path, resolver: SettingsResolver, ignores: GitIgnores) -> list[Path]:
    files: list[Path] = []
    for folder, subfolders, filenames in os.walk(top.absolute()):
        here = Path(folder)
        settings = resolver.for_folder(here)
        subfolders[:] = sorted(name for name in subfolders if _keep_folder(here / name, settings, ignores))
        files.extend(
            here / name
            for name in sorted(filenames)
            if name.endswith(PYTHON_SUFFIXES) and _keep_file(here / name, settings, ignores)
        )
    return files


def _keep_folder(path: Path, settings: Settings, ignores: GitIgnores) -> bool:
    if path.name.startswith(".") or path.name in SKIPPED_FOLDERS or (path / "pyvenv.cfg").exists():
        return False
    return not globs.matches(settings.exclude, path, settings.root, is_dir=True) and not ignores.ignored(path, is_dir=True)


def _keep_file(path: Path, settings: Settings, ignores: GitIgnores) -> bool:
    return not globs.matches(settings.exclude, path, settings.root) and not ignores.ignored(path)


class GitIgnores:
    """`.gitignore` files from the repository root (the folder holding `.git`) down to each path."""

    def __init__(self) -> None:
        self._specs: dict[Path, pathspec.GitIgnoreSpec | None] = {}
        self._chains: dict[Path, tuple[Path, ...]] = {}

    def ignored(self, path: Path, *, is_dir: bool = False) -> bool:
        absolute = path.absolute()
        verdict = False
        for folder in self._folders_above(absolute.parent):
            spec = self._spec(folder)
            if spec is None:
                continue
            relative = absolute.relative_to(folder).as_posix() + ("/" if is_dir else "")
            result = spec.check_file(relative)
            if result.include is not None:
                verdict = result.include
        return verdict

    def _folders_above(self, folder: Path) -> tuple[Path, ...]:
        """The folders from the repository root down to `folder`; none outside a git repository."""
        if folder not in self._chains:
            if (folder / ".git").exists():
                chain: tuple[Path, ...] = (folder,)
            elif folder.parent == folder:
                chain = ()  # not in a git repository: .gitignore files mean nothing
            else:
                above = self._folders_above(folder.parent)
                chain = (*above, folder) if above else ()
            self._chains[folder] = chain
        return self._chains[folder]

    def _spec(self, folder: Path) -> pathspec.GitIgnoreSpec | None:
        if folder not in self._specs:
            gitignore = folder / ".gitignore"
            try:
                lines = gitignore.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                lines = None
            self._specs[folder] = pathspec.GitIgnoreSpec.from_lines(lines) if lines else None
        return self._specs[folder]
