"""Stage 3: skip the LibCST parse when no selected rule can fire on the file.

LibCST's parse and metadata are what cost. Two cheaper gates come first: a byte-level regex
search (each rule's `trigger` patterns must all occur), then, for the files that pass, CPython's
own `ast` parser and each rule's `could_fire` check.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, TypeVar

from unleak.settings import Settings

if TYPE_CHECKING:
    from unleak.knowledge.project import ProjectView
    from unleak.registry import Selectable
    from unleak.rule import Rule

AnyRule = TypeVar("AnyRule", bound="Selectable")


@cache
def _occurs(pattern: bytes) -> Callable[[bytes], bool]:
    """Whether `pattern` occurs in a file's bytes.

    A leading `\b` keeps `re` from jumping from one occurrence of the literal that follows it to
    the next (a tenth of the time on Django): the pattern without it is searched first (each
    match of the pattern is one of its), and the pattern itself only where that one occurs.
    """
    full = re.compile(pattern)
    if not pattern.startswith(rb"\b"):
        return lambda raw: full.search(raw) is not None
    loose = re.compile(pattern[2:])
    return lambda raw: loose.search(raw) is not None and full.search(raw) is not None


def triggered_rules(raw: bytes, rules: tuple[AnyRule, ...], settings: Settings) -> tuple[AnyRule, ...]:
    """The rules (entries or classes) whose every trigger pattern occurs in `raw`."""
    return tuple(rule for rule in rules if all(_occurs(pattern)(raw) for pattern in rule.trigger_for(settings)))


def quick_parse(text: str) -> ast.Module | None:
    """CPython's own parse of the module, or None when it won't parse here."""
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # newer syntax than this Python, or broken: LibCST will tell


def structurally_possible(text: str, rules: tuple[type[Rule], ...], settings: Settings) -> tuple[type[Rule], ...]:
    """The rules whose `could_fire` accepts the module's stdlib AST (all of them if it won't parse)."""
    return possible_in_tree(quick_parse(text), rules, settings) if rules else rules


def possible_in_tree(
    tree: ast.Module | None, rules: tuple[type[Rule], ...], settings: Settings, project: ProjectView | None = None
) -> tuple[type[Rule], ...]:
    """`structurally_possible` on an already parsed tree (None: it did not parse), with the
    project index for the rules that ask it."""
    if tree is None:
        return rules
    from unleak.knowledge.project import ProjectView  # the second gate runs where files are parsed

    seen_from_here = project or ProjectView.empty()
    return tuple(rule for rule in rules if rule.could_fire_in(tree, settings, seen_from_here))
