"""Stage 4a: decoded text -> LibCST module; a syntax error is the user's, reported in one line."""

from __future__ import annotations

import libcst as cst

from unleak.errors import UserError


def parse(text: str, display_path: str) -> cst.Module:
    try:
        return cst.parse_module(text)
    except cst.ParserSyntaxError as error:
        message = " ".join(error.message.split())
        raise UserError(display_path, f"syntax error: {message} (line {error.raw_line}, column {error.raw_column + 1})") from None
    except RecursionError:
        raise UserError(display_path, "cannot parse: the code is nested too deeply") from None
