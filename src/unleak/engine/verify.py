"""Stage 5: a fix is only kept if the new code parses with LibCST and compiles with CPython.

A file that did not compile before (newer syntax than this interpreter, say) can only be held
to the LibCST parse; everything else must still compile after the fix.
"""

from __future__ import annotations

from functools import cached_property

import libcst as cst


class VerificationError(Exception):
    """The fixed code is not valid Python; the message says why."""


def compile_error(text: str, filename: str) -> str | None:
    """CPython's complaint about `text`, or None if it compiles."""
    try:
        compile(text, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as error:
        line = getattr(error, "lineno", None)
        return f"{getattr(error, 'msg', error)}" + (f" (line {line})" if line else "")
    return None


class Verifier:
    """Checks fixed code against the bar its original set."""

    def __init__(self, original_text: str, filename: str) -> None:
        self._original_text = original_text
        self._filename = filename

    @cached_property
    def _must_compile(self) -> bool:
        return compile_error(self._original_text, self._filename) is None

    def verified_module(self, text: str) -> cst.Module:
        """Re-parse the fixed `text`; raise VerificationError if it does not parse or compile."""
        try:
            module = cst.parse_module(text)
        except cst.ParserSyntaxError as error:
            raise VerificationError(f"the result does not parse: {error.message} (line {error.raw_line})") from None
        if self._must_compile:
            complaint = compile_error(text, self._filename)
            if complaint:
                raise VerificationError(f"the result does not compile: {complaint}")
        return module
