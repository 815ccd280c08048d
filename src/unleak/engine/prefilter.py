"""Stage 3: skip the LibCST parse when no selected rule can fire on the file.

LibCST's parse and metadata are what cost. Two cheaper gates come first: a byte-level regex
search (each rule's `trigger` patterns must all occur), then, for the files that pass, CPython's
own `ast` parser and each rule's `could_fire` check.
"""

from __future__ import annotations

import ast
import re
from functools import cache

from unleak.rule import Rule
from unleak.settings import Settings


@cache
def _compiled(pattern: bytes) -> re.Pattern[bytes]:
    return re.compile(pattern)


def triggered_rules(raw: bytes, rules: tuple[type[Rule], ...], settings: Settings) -> tuple[type[Rule], ...]:
    """The rules whose every trigger pattern occurs in `raw`."""
    return tuple(
        rule for rule in rules if all(_compiled(pattern).search(raw) for pattern in rule.trigger_for(settings))
    )


def structurally_possible(text: str, rules: tuple[type[Rule], ...], settings: Settings) -> tuple[type[Rule], ...]:
    """The rules whose `could_fire` accepts the module's stdlib AST (all of them if it won't parse)."""
    if not rules:
        return rules
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return rules  # newer syntax than this Python, or broken: LibCST will tell
    return tuple(rule for rule in rules if rule.could_fire_under(tree, settings))
