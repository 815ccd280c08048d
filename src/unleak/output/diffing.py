"""Stage 7a: unified diffs that `git apply` and `patch -p1` turn into exactly what apply writes.

The diff is made of the files' own bytes (their encoding, their newlines), split on `\\n` only,
as git does, with git's `a/` and `b/` prefixes and its marker for a last line without newline.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator

_NO_NEWLINE = b"\\ No newline at end of file\n"
_COLOURS = {b"---": b"\x1b[1m", b"+++": b"\x1b[1m", b"@@": b"\x1b[36m", b"-": b"\x1b[31m", b"+": b"\x1b[32m"}
_RESET = b"\x1b[0m"


def unified_diff(display: str, old: bytes, new: bytes) -> bytes:
    """A git-style unified diff of one file, as bytes."""
    name = display.encode("utf-8", "surrogateescape")
    lines = difflib.diff_bytes(
        difflib.unified_diff, _lines(old), _lines(new), fromfile=b"a/" + name, tofile=b"b/" + name, n=3
    )
    return b"".join(_mark_missing_newlines(lines))


def _lines(data: bytes) -> list[bytes]:
    return re.findall(rb"[^\n]*\n|[^\n]+$", data)


def _mark_missing_newlines(lines: Iterator[bytes]) -> Iterator[bytes]:
    for line in lines:
        if line.endswith(b"\n"):
            yield line
        else:
            yield line + b"\n" + _NO_NEWLINE


def colourize(patch: bytes) -> bytes:
    """ANSI colours for a terminal: headers bold, hunks cyan, removals red, additions green."""
    coloured = []
    for line in patch.splitlines(keepends=True):
        prefix = next((p for p in _COLOURS if line.startswith(p)), None)
        if prefix is None or line.startswith(b"\\"):
            coloured.append(line)
        else:
            body = line.rstrip(b"\n")
            coloured.append(_COLOURS[prefix] + body + _RESET + line[len(body) :])
    return b"".join(coloured)
