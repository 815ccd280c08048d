"""Gitignore-style globs (`exclude`, `per-file-ignores`), matched relative to a settings root."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pathspec


@cache
def _spec(patterns: tuple[str, ...]) -> pathspec.GitIgnoreSpec:
    return pathspec.GitIgnoreSpec.from_lines(patterns)


def matches(patterns: tuple[str, ...], path: Path, root: Path, *, is_dir: bool = False) -> bool:
    """True if `path` (relative to `root`) matches any of the gitignore-style `patterns`."""
    if not patterns:
        return False
    relative = relative_posix(path, root)
    return _spec(patterns).match_file(relative + "/" if is_dir else relative)


def relative_posix(path: Path, root: Path) -> str:
    absolute = path.absolute()
    try:
        return absolute.relative_to(root).as_posix()
    except ValueError:
        return absolute.as_posix().lstrip("/")
