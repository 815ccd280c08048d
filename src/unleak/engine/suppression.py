"""`# unleak: ignore` and `# unleak: ignore[UL401,bare-except]` comments.

A comment on the first line of the matched statement (or of the reported node itself, such as
an `except:` line) silences every rule there, or only the rules named in brackets.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass

from unleak.rule import Report

_DIRECTIVE = re.compile(r"#\s*unleak:\s*ignore\b(?:\[(?P<rules>[^\]]*)\])?", re.IGNORECASE)
_MARKER = "unleak:"


@dataclass(frozen=True)
class Suppressions:
    """Line number -> the rule codes/names silenced there (None: all of them)."""

    by_line: dict[int, frozenset[str] | None]

    @classmethod
    def of(cls, text: str) -> Suppressions:
        if _MARKER not in text:
            return cls({})
        by_line: dict[int, frozenset[str] | None] = {}
        for line, comment in _comments(text):
            directive = _DIRECTIVE.search(comment)
            if directive:
                named = directive.group("rules")
                by_line[line] = None if named is None else frozenset(r.strip() for r in named.split(",") if r.strip())
        return cls(by_line)

    def silences(self, report: Report) -> bool:
        lines = {report.position.start.line, report.statement_line}
        return any(self._silences_at(line, report) for line in lines)

    def _silences_at(self, line: int, report: Report) -> bool:
        if line not in self.by_line:
            return False
        named = self.by_line[line]
        return named is None or report.rule.code in {n.upper() for n in named} or report.rule.name in named


def _comments(text: str) -> Iterator[tuple[int, str]]:
    """(line, comment) for every comment; falls back to a line scan where tokenize gives up."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        for number, line in enumerate(text.splitlines(), start=1):
            if "#" in line:
                yield number, line[line.index("#") :]
        return
    for token in tokens:
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
