"""Which of a rule's `@m.visit` / `@m.leave` matchers are worth trying on a node of a given class.

LibCST's `MatcherDecoratableVisitor` tries every decorated matcher on every node, and looks up a
`visit_<Node>_<attribute>` method for every attribute of every node: most of the time a rule
spends visiting. A matcher of one node class (`m.Call(...)`) never matches a node of another
class (LibCST compares the class names first), so `Rule` tries, on a node, only the matchers that
can match its class, in the order LibCST would. A rule class that decorates methods with
`m.call_if_inside` / `m.call_if_not_inside`, or has `visit_<Node>_<attribute>` methods, is visited
the LibCST way (`allows_dispatch`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import libcst as cst
import libcst.matchers as m
from libcst.matchers._visitors import _gather_matchers  # the `call_if_*` matchers of a visitor

# Matchers of one node class are the ones LibCST generates in `libcst.matchers` itself.
_NODE_MATCHERS_MODULE = m.Call.__module__
_ATTRIBUTE_METHOD = re.compile(r"(?:visit|leave)_[A-Z][A-Za-z]*_\w+")

Methods = tuple[Callable[[cst.CSTNode], None], ...]
Tried = tuple[tuple[m.BaseMatcherNode, Methods], ...]


def allows_dispatch(visitor: m.MatcherDecoratableVisitor) -> bool:
    """Whether trying only the matchers of a node's class calls exactly what LibCST would."""
    attribute_methods = any(
        _ATTRIBUTE_METHOD.fullmatch(name) and not getattr(getattr(type(visitor), name), "_is_no_op", False)
        for name in dir(type(visitor))
    )  # LibCST's own are no-op stubs
    return not attribute_methods and not _gather_matchers(visitor)


def class_names(matcher: object) -> frozenset[str] | None:
    """The names of the node classes `matcher` can match; None when it may match any node."""
    if isinstance(matcher, (m.OneOf, m.TypeOf)):
        names = [class_names(option) for option in matcher.options]
        return None if any(found is None for found in names) else frozenset().union(*names)  # type: ignore[arg-type]
    if type(matcher).__module__ == _NODE_MATCHERS_MODULE:
        return frozenset({type(matcher).__name__})
    return None  # AllOf, MatchIfTrue, metadata matchers, `~matcher`, saved nodes


def tried_on(node_class: str, decorated: dict[m.BaseMatcherNode, Sequence[Callable[..., None]]]) -> Tried:
    """The matchers of `decorated` that can match a node of `node_class`, with their methods, in order."""
    return tuple(
        (matcher, tuple(methods))
        for matcher, methods in decorated.items()
        if (names := class_names(matcher)) is None or node_class in names
    )
