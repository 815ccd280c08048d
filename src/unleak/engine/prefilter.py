"""Stage 3: skip the LibCST parse when no selected rule can fire on the file.

LibCST's parse and metadata are what cost. Two cheaper gates come first: a byte-level regex
search (each rule's `trigger` patterns must all occur), then, for the files that pass, CPython's
own `ast` parser and each rule's `could_fire` check.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, TypeVar

from unleak.settings import Settings

if TYPE_CHECKING:
    from unleak.knowledge.project import ProjectView
    from unleak.registry import Selectable
    from unleak.rule import Rule

if sys.version_info >= (3, 11):
    from re import _constants as _ops, _parser as _regex_parser
else:  # pragma: no cover - exercised on Python 3.10 only
    import sre_constants as _ops
    import sre_parse as _regex_parser

AnyRule = TypeVar("AnyRule", bound="Selectable")


@cache
def _occurs(pattern: bytes) -> Callable[[bytes], bool]:
    """Whether `pattern` occurs in a file's bytes: `re.search(pattern, raw) is not None`, faster.

    Most files hold none of a rule's patterns, and `re` scans slowly for a pattern that does not
    start with a literal (`getenv|environ`, `(?i:log)...`). So each top-level alternative is
    searched on its own, and only in files holding one of the literals that every match of it
    contains (`_required_literals`: a `bytes in bytes` scan, ten times faster than `re`).
    """
    checks = [_alternative_occurs(alternative) for alternative in _alternatives(pattern)]
    if len(checks) == 1:
        return checks[0]
    return lambda raw: any(check(raw) for check in checks)


def _alternative_occurs(pattern: bytes) -> Callable[[bytes], bool]:
    """`_occurs` for one alternative. A leading `\b` keeps `re` from jumping from one occurrence of
    the literal that follows it to the next: the pattern without it is searched first (each match
    of the pattern is one of its), and the pattern itself only where that one occurs."""
    full = re.compile(pattern)
    search = (lambda raw: full.search(raw) is not None) if not pattern.startswith(rb"\b") else _loose_first(pattern, full)
    literals = _required_literals(pattern)
    if not literals or _starts_with_literal(pattern):  # `re` scans for a leading literal itself
        return search
    return lambda raw: any(literal in raw for literal in literals) and search(raw)


def _loose_first(pattern: bytes, full: re.Pattern[bytes]) -> Callable[[bytes], bool]:
    loose = re.compile(pattern[2:])
    return lambda raw: loose.search(raw) is not None and full.search(raw) is not None


def _alternatives(pattern: bytes) -> list[bytes]:
    """The top-level alternatives of `pattern` (`a|b(c|d)` -> `a`, `b(c|d)`); the pattern whole
    when splitting it could change what matches (global flags, back-references)."""
    if pattern.startswith(b"(?") and re.match(rb"\(\?[aiLmsux]+\)", pattern) or re.search(rb"\\[1-9]|\(\?P=", pattern):
        return [pattern]
    parts, depth, start, index = [], 0, 0, 0
    while index < len(pattern):
        character = pattern[index : index + 1]
        if character == b"\\":
            index += 1  # the escaped character is no operator
        elif character == b"[":
            index = _class_end(pattern, index)
        elif character == b"(":
            depth += 1
        elif character == b")":
            depth -= 1
        elif character == b"|" and depth == 0:
            parts.append(pattern[start:index])
            start = index + 1
        index += 1
    return [*parts, pattern[start:]]


def _class_end(pattern: bytes, start: int) -> int:
    """The index of the `]` that closes the character class opened at `start`."""
    index = start + 1
    if pattern[index : index + 1] == b"^":
        index += 1
    if pattern[index : index + 1] == b"]":
        index += 1  # a `]` first in a class is a literal
    while index < len(pattern) and pattern[index : index + 1] != b"]":
        index += 2 if pattern[index : index + 1] == b"\\" else 1
    return index


def _starts_with_literal(pattern: bytes) -> bool:
    """Whether `pattern` starts with a literal character (after a `\b`, see `_alternative_occurs`)."""
    unbounded = pattern[2:] if pattern.startswith(rb"\b") else pattern
    try:
        first = list(_regex_parser.parse(unbounded))[:1]
    except Exception:  # an internal of `re` that changed
        return False
    return bool(first) and first[0][0] is _ops.LITERAL


def _required_literals(pattern: bytes) -> frozenset[bytes] | None:
    """Literals one of which every match of `pattern` contains (None: none known).

    Read from the parse `re` itself makes of the pattern; whatever this does not understand
    (case-insensitive parts, character classes, optional parts) requires nothing."""
    try:
        parsed = _regex_parser.parse(pattern)
        if parsed.state.flags & re.IGNORECASE:
            return None
        literals = _required_in_sequence(list(parsed))
    except Exception:  # an internal of `re` that changed: search without the shortcut
        return None
    # A literal holding another of the set is found whenever that one is: only the shorter is searched.
    return literals and frozenset(literal for literal in literals if not any(other in literal for other in literals - {literal}))


def _required_in_sequence(items: list[tuple[object, object]]) -> frozenset[bytes] | None:
    """For items matched one after the other: the best of what each requires (the set whose
    shortest literal is longest), a run of literal characters counting as one literal."""
    candidates: list[frozenset[bytes]] = []
    run = bytearray()
    for operator, argument in items:
        if operator is _ops.LITERAL:
            run.append(argument)  # type: ignore[arg-type]
            continue
        if run:
            candidates.append(frozenset({bytes(run)}))
            run = bytearray()
        required = _required_by(operator, argument)
        if required:
            candidates.append(required)
    if run:
        candidates.append(frozenset({bytes(run)}))
    return max(candidates, key=lambda literals: (min(map(len, literals)), -len(literals)), default=None)


def _required_by(operator: object, argument: object) -> frozenset[bytes] | None:
    if operator is _ops.SUBPATTERN:
        _group, add_flags, _del_flags, inner = argument  # type: ignore[misc]
        return None if add_flags & re.IGNORECASE else _required_in_sequence(list(inner))
    if operator is _ops.BRANCH:
        _, branches = argument  # type: ignore[misc]
        found = [_required_in_sequence(list(branch)) for branch in branches]
        return None if any(not literals for literals in found) else frozenset().union(*found)  # type: ignore[arg-type]
    if operator in (_ops.MAX_REPEAT, _ops.MIN_REPEAT):
        least, _most, inner = argument  # type: ignore[misc]
        return _required_in_sequence(list(inner)) if least >= 1 else None
    return None  # a class, an anchor, a look-around, a back-reference: nothing certain


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
