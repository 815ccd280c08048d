"""What creates a SQLAlchemy session: the knowledge the session rules (UL202, UL203, UL204) share.

`session_call` needs `QualifiedNameProvider` and `ScopeProvider` in the rule's
METADATA_DEPENDENCIES, and `uses_project = True` on the rule: factories are looked up in the
project index (`unleak.knowledge.project`), in this module or imported from another one.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import libcst as cst
import libcst.matchers as m
from libcst.helpers import get_full_name_for_node
from libcst.metadata import GlobalScope, ScopeProvider

from unleak.knowledge.analysis import calls
from unleak.knowledge.project import SESSION_CLASSES, SESSION_FACTORIES, ProjectView
from unleak.knowledge.quickscan import dotted_name
from unleak.rule import Rule

__all__ = ["SESSION_CLASSES", "SESSION_FACTORIES", "SESSION_LIKE_CALLEE", "TRANSACTION_METHODS", "SessionCall", "session_call", "factory_session", "project_session_maker", "reraises", "with_rollback_first"]

# `SessionLocal()`, `AsyncSessionLocal()`, `get_session()`, `session_factory()`: a session by its name.
SESSION_LIKE_CALLEE = re.compile(r"session(?:_?local|_?factory)?$", re.IGNORECASE)
_LONE_PASS_SUITE = m.SimpleStatementSuite(body=[m.Pass()])
_LONE_PASS_BLOCK = m.IndentedBlock(
    body=[
        m.SimpleStatementLine(
            body=[m.Pass()], leading_lines=[], trailing_whitespace=m.TrailingWhitespace(comment=None)
        )
    ]
)
# Methods only a database session has (an HTTP client session has `get`, `delete` and `close` too).
TRANSACTION_METHODS = frozenset(
    {"add", "add_all", "commit", "flush", "query", "execute", "scalars", "scalar", "merge", "refresh"}
)


@dataclass(frozen=True)
class SessionCall:
    """What a call that creates a session is known to be."""

    resolved: bool  # by qualified name or a module factory; False: by its name only
    asynchronous: bool | None  # None: unknown (named only)


def session_call(rule: Rule, call: cst.Call) -> SessionCall | None:
    """How `call` is known to create a SQLAlchemy session, or None."""
    for qualified, asynchronous in SESSION_CLASSES.items():
        if calls(rule, call, qualified):
            return SessionCall(resolved=True, asynchronous=asynchronous)
    factory = factory_session(rule, call)
    if factory is not None:
        return factory
    callee = call.func.attr if isinstance(call.func, cst.Attribute) else call.func
    if isinstance(callee, cst.Name) and SESSION_LIKE_CALLEE.search(callee.value):
        return SessionCall(resolved=False, asynchronous=None)
    return None


def factory_session(rule: Rule, call: cst.Call) -> SessionCall | None:
    """`SessionLocal()` where the project index knows `SessionLocal` as a `sessionmaker(...)`,
    `async_sessionmaker(...)`, `scoped_session(...)` or a function handing out one of their
    sessions, declared in this module or imported from another one."""
    dotted = get_full_name_for_node(call.func)
    if dotted is None or _bound_in_function(rule, call.func):
        return None
    found = rule.project.session_factory(dotted).found
    return None if found is None else SessionCall(resolved=True, asynchronous=found.asynchronous)


def _bound_in_function(rule: Rule, callee: cst.BaseExpression) -> bool:
    """Whether the callee's first name is bound inside a function (a parameter, a local): the
    index only knows module-level names."""
    root = callee
    while isinstance(root, cst.Attribute):
        root = root.value
    if not isinstance(root, cst.Name):
        return True
    scope = rule.get_metadata(ScopeProvider, root, None)
    return scope is None or any(not isinstance(found.scope, GlobalScope) for found in scope[root.value])


def project_session_maker(project: ProjectView) -> Callable[[ast.Call], bool]:
    """For a rule's cheap `ast` gate: whether a call's callee is a session factory the project
    index knows (`make_db()` imported from `app.database`, whatever its name)."""

    def makes_session(call: ast.Call) -> bool:
        callee = dotted_name(call.func)
        return callee is not None and project.session_factory(callee).found is not None

    return makes_session


def reraises(handler: cst.ExceptHandler) -> bool:
    """A `raise` (bare or not) among the handler's own statements."""
    body = handler.body
    smalls: Sequence[cst.BaseSmallStatement]
    if isinstance(body, cst.SimpleStatementSuite):
        smalls = body.body
    else:
        lines = cst.ensure_type(body, cst.IndentedBlock).body
        smalls = [small for line in lines if isinstance(line, cst.SimpleStatementLine) for small in line.body]
    return any(isinstance(small, cst.Raise) for small in smalls)


def with_rollback_first(handler: cst.ExceptHandler, session: str, awaited: bool) -> cst.ExceptHandler:
    """The handler with `session.rollback()` (awaited for an async session) as its first statement;
    it takes the place of a lone bare `pass`."""
    rollback = cst.Expr(cst.parse_expression(f"{'await ' if awaited else ''}{session}.rollback()"))
    body = handler.body
    if isinstance(body, cst.SimpleStatementSuite):
        rest = [] if m.matches(body, _LONE_PASS_SUITE) else list(body.body)
        return handler.with_changes(body=body.with_changes(body=[rollback, *rest]))
    block = cst.ensure_type(body, cst.IndentedBlock)
    rest = [] if m.matches(block, _LONE_PASS_BLOCK) else list(block.body)
    return handler.with_changes(body=block.with_changes(body=[cst.SimpleStatementLine([rollback]), *rest]))
