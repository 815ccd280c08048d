"""Gitignore-style globs (`exclude`, `per-file-ignores`), matched relative to a settings root.

pathspec is imported the first time a glob is matched: a run over a project without globs or
`.gitignore` files does not pay for it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pathspec


@cache
def gitignore_spec(patterns: tuple[str, ...]) -> pathspec.GitIgnoreSpec:
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(patterns)


def matches(patterns: tuple[str, ...], path: Path | str, root: Path, *, is_dir: bool = False) -> bool:
    """True if `path` (relative to `root`) matches any of the gitignore-style `patterns`.
    A `str` path is absolute already."""
    if not patterns:
        return False
    relative = relative_posix(path, root)
    return gitignore_spec(patterns).match_file(relative + "/" if is_dir else relative)


def relative_posix(path: Path | str, root: Path) -> str:
    absolute = path if isinstance(path, str) else path.absolute().as_posix()
    top = root.as_posix()
    if absolute == top:
        return "."
    above = top.rstrip("/") + "/"
    return absolute[len(above) :] if absolute.startswith(above) else absolute.lstrip("/")
