"""Formatting helpers for fixes that move statements into or out of a block."""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst


def without_leading_blanks(lines: Sequence[cst.EmptyLine]) -> list[cst.EmptyLine]:
    """The lines above a statement that becomes the first of a block: a blank line right after
    the block's header reads as a mistake, so blank lines go; comments stay."""
    kept = list(lines)
    while kept and kept[0].comment is None:
        kept.pop(0)
    return kept
