"""What creates a SQLAlchemy session: the knowledge the session rules (UL202, UL203, UL204) share.

`session_call` needs `QualifiedNameProvider` and `ScopeProvider` in the rule's
METADATA_DEPENDENCIES (plus the parent links every rule has).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import Assignment, ParentNodeProvider, ScopeProvider

from unleak.knowledge.analysis import calls
from unleak.rule import Rule

# Session classes by qualified name -> whether they are async.
SESSION_CLASSES = {
    "sqlalchemy.orm.Session": False,
    "sqlalchemy.orm.session.Session": False,
    "sqlmodel.Session": False,
    "sqlalchemy.ext.asyncio.AsyncSession": True,
    "sqlalchemy.ext.asyncio.session.AsyncSession": True,
}
# `SessionLocal = sessionmaker(...)`: `SessionLocal()` makes a session of that kind.
SESSION_FACTORIES = {
    "sqlalchemy.orm.sessionmaker": False,
    "sqlalchemy.orm.session.sessionmaker": False,
    "sqlalchemy.ext.asyncio.async_sessionmaker": True,
    "sqlalchemy.ext.asyncio.session.async_sessionmaker": True,
}
# `SessionLocal()`, `AsyncSessionLocal()`, `get_session()`, `session_factory()`: a session by its name.
SESSION_LIKE_CALLEE = re.compile(r"session(?:_?local|_?factory)?$", re.IGNORECASE)
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
    """`SessionLocal()` where the module assigns `SessionLocal = sessionmaker(...)` once."""
    if not isinstance(call.func, cst.Name):
        return None
    assignments = list(rule.get_metadata(ScopeProvider, call.func)[call.func.value])
    if len(assignments) != 1 or not isinstance(assignments[0], Assignment):
        return None
    target = rule.get_metadata(ParentNodeProvider, assignments[0].node, None)
    assign = rule.get_metadata(ParentNodeProvider, target, None) if isinstance(target, cst.AssignTarget) else None
    if not isinstance(assign, cst.Assign) or len(assign.targets) != 1 or not isinstance(assign.value, cst.Call):
        return None
    for qualified, asynchronous in SESSION_FACTORIES.items():
        if calls(rule, assign.value, qualified):
            return SessionCall(resolved=True, asynchronous=asynchronous)
    return None
