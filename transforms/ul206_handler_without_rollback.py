"""UL206 handler-without-rollback

## What it does
Finds an `except` handler of a `try` that commits or flushes a database session it did not
create (a parameter, `self.session`), when the handler neither rolls the session back nor
re-raises, and adds `<session>.rollback()` (`await` for an async session) as its first
statement. A handler that commits again after the failure (`job.status = "failed";
session.commit()`) gets the rollback before its own work, where it must be.

What is a session here: an expression that is a plain name or `self.<attribute>`, on which the
`try` calls `commit()` or `flush()`, and that is either named like one (`session`, `db`,
`db_session`, `self.session`, `self.db`) or also gets a unit-of-work call in the `try` (`add`,
`add_all`, `delete`, `merge`, `execute`, `query`, `scalars`, `refresh`). Only the `try`'s own
frame counts, not functions nested in it.

## Why is this bad?
When a flush or commit fails, SQLAlchemy keeps the session in a failed transaction until it is
rolled back: every later use of the same session raises `PendingRollbackError`, and the
connection stays "idle in transaction" with its locks held. A service method that logs the
`IntegrityError` and returns `None` therefore breaks every request that shares its session after
it (seed 001 #2); a handler that records the failure with a second `commit()` fails itself.

## Example
```python
from sqlalchemy.exc import SQLAlchemyError

class Repository:
    def save(self, row):
        try:
            self.session.add(row)
            self.session.commit()
        except SQLAlchemyError:
            log.exception("could not save %s", row)
            return None
        return row
```

## Use instead
```python
from sqlalchemy.exc import SQLAlchemyError

class Repository:
    def save(self, row):
        try:
            self.session.add(row)
            self.session.commit()
        except SQLAlchemyError:
            self.session.rollback()
            log.exception("could not save %s", row)
            return None
        return row
```

## Fix safety
Safe when the handler catches only SQLAlchemy's errors (`sqlalchemy.exc.*`, aliases and
attribute spellings resolved): then the session is in a failed transaction that nothing but a
rollback can end, and the rollback discards only what was already lost. Unsafe when the handler
catches everything (`Exception`, a bare `except:`, a name unleak cannot follow): an error raised
before the database failed (a `ValueError` from parsing, say) leaves the pending work valid, and
a caller could still have committed it; the rollback now discards it. A handler that catches
only other errors (`ValueError`, `KeyError`, a library's own error) never sees a failed commit:
not reported. Reported without a fix when the session is another expression (`db.session`,
`get_session()`): name it, or roll back by hand. Left alone: handlers that already call
`<session>.rollback()` or raise on any path, a `try` whose `finally` closes the session (UL203's
domain), a session opened by a `with` inside the `try` (it is closed before any handler runs), a
`try` that ends a `with SessionLocal() as db:` block (leaving it closes the session and rolls it
back), and sessions that the `try` only reads from.
"""

from __future__ import annotations

import ast
import builtins
import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar, cast

import libcst as cst
import libcst.matchers as m
from libcst.metadata import QualifiedNameProvider

from unleak.knowledge import quickscan
from unleak.knowledge.analysis import FunctionLike, ancestors, qualified_names
from unleak.knowledge.sessions import with_rollback_first
from unleak.rule import FixSafety, Invalid, Rule, SliceScope, Valid

_WRITES = frozenset({"commit", "flush"})
_UNIT_OF_WORK = frozenset({"add", "add_all", "delete", "merge", "execute", "query", "scalars", "refresh"})
_NAMED_LIKE_A_SESSION = re.compile(r"(?:^|_)(?:session|db)$", re.IGNORECASE)
_SQLALCHEMY_ERRORS = ("sqlalchemy.exc.", "sqlalchemy.orm.exc.")
_Node = TypeVar("_Node", bound=cst.CSTNode)
_BROAD = frozenset({"builtins.Exception", "builtins.BaseException"})


class _Catches(enum.Enum):
    DATABASE_ERRORS = "database"  # SQLAlchemy's errors (and maybe others of no concern)
    EVERYTHING = "everything"  # `except:`, `Exception`, or what unleak cannot tell
    OTHER_ERRORS = "other"  # only errors a failed commit does not raise (`ValueError`, `MetaPubError`)


@dataclass(frozen=True)
class _Session:
    code: str  # `session`, `self.session`
    awaited: bool  # its commit is awaited: an AsyncSession
    fixable: bool  # a plain name or `self.<attribute>`


class HandlerWithoutRollback(Rule):
    code = "UL206"
    name = "handler-without-rollback"
    safety = FixSafety.SAFE
    summary = "`except` handler leaves the session's failed transaction open: roll it back first"
    trigger = (rb"\.(?:commit|flush)\s*\(", rb"\bexcept\b")
    METADATA_DEPENDENCIES = (QualifiedNameProvider,)
    slice_scope = SliceScope.FUNCTION

    @classmethod
    def could_fire(cls, tree: ast.Module) -> bool:
        tries = [node for node in quickscan.statements_of_type(tree, ast.Try) if isinstance(node, ast.Try)]
        if not tries:
            return False
        builtin_errors = _BUILTIN_ERRORS - _imported_names(tree)
        return any(_writes_then_swallows(node, builtin_errors) for node in tries)

    @m.visit(m.Try())
    def flag_handler_without_rollback(self, node: cst.Try) -> None:
        for session in self._sessions_written(node):
            self._check(node, session)

    def _check(self, node: cst.Try, session: _Session) -> None:
        if _closes_in_finally(node, session.code) or self._ends_its_with_block(node, session.code):
            return
        if _opened_by_a_with_inside(node, session.code):
            return  # leaving that `with` closed the session (and rolled it back) before any handler runs
        caught = {id(handler): self._catches(handler) for handler in node.handlers}
        missing = [
            handler
            for handler in node.handlers
            if caught[id(handler)] is not _Catches.OTHER_ERRORS and not _rolls_back(handler, session.code) and not _raises(handler)
        ]
        if not missing:
            return
        message = f"{self.summary}: `{session.code}.rollback()`"
        if not session.fixable:
            self.report(missing[0], f"{message} (not fixed: roll back by hand)")
            return
        for handler in missing:
            safety = FixSafety.SAFE if caught[id(handler)] is _Catches.DATABASE_ERRORS else FixSafety.UNSAFE
            self.report(handler, message, fix=with_rollback_first(handler, session.code, session.awaited), safety=safety)

    def _sessions_written(self, node: cst.Try) -> Iterator[_Session]:
        """The session expressions the `try` body commits or flushes, in order of first write."""
        calls = [call for call in _own_calls(node.body) if isinstance(call.func, cst.Attribute)]
        receivers = {_code(call.func.value) for call in calls}  # type: ignore[union-attr]
        for receiver in sorted(receivers):
            methods = [call for call in calls if _code(call.func.value) == receiver]  # type: ignore[union-attr]
            names = {cst.ensure_type(call.func, cst.Attribute).attr.value for call in methods}
            if not names & _WRITES or not (_NAMED_LIKE_A_SESSION.search(receiver.rsplit(".", 1)[-1]) or names & _UNIT_OF_WORK):
                continue
            awaited = any(self._is_awaited(call) for call in methods if cst.ensure_type(call.func, cst.Attribute).attr.value in _WRITES)
            yield _Session(receiver, awaited, _is_plain(cst.ensure_type(methods[0].func, cst.Attribute).value))

    def _ends_its_with_block(self, node: cst.Try, session: str) -> bool:
        """`with SessionLocal() as db:` whose last statement is the `try`: leaving the block closes
        the session (and rolls it back) right after the handler."""
        block, statement, *_ = [*ancestors(self, node), None, None]
        if not isinstance(block, cst.IndentedBlock) or not isinstance(statement, cst.With) or block.body[-1] is not node:
            return False
        return any(item.asname is not None and _code(item.asname.name) == session for item in statement.items)

    def _is_awaited(self, call: cst.Call) -> bool:
        parents = ancestors(self, call)
        return bool(parents) and isinstance(parents[0], cst.Await)

    def _catches(self, handler: cst.ExceptHandler) -> _Catches:
        """Whether a failed commit can reach the handler, and whether only SQLAlchemy's errors can."""
        if handler.type is None:
            return _Catches.EVERYTHING
        elements = handler.type.elements if isinstance(handler.type, cst.Tuple) else [cst.Element(handler.type)]
        kinds = [self._kind_of(element.value) for element in elements]
        if _Catches.EVERYTHING in kinds:
            return _Catches.EVERYTHING
        return _Catches.DATABASE_ERRORS if _Catches.DATABASE_ERRORS in kinds else _Catches.OTHER_ERRORS

    def _kind_of(self, caught: cst.BaseExpression) -> _Catches:
        names = qualified_names(self, caught)
        if any(name.startswith(_SQLALCHEMY_ERRORS) for name in names):
            return _Catches.DATABASE_ERRORS
        if names & _BROAD or not names:  # `Exception`, or a name unleak cannot follow
            return _Catches.EVERYTHING
        return _Catches.OTHER_ERRORS

    VALID = (
        Valid(
            """
            def save(session, row):
                try:
                    session.add(row)
                    session.commit()
                except IntegrityError:
                    session.rollback()
                    return None
            """
        ),
        Valid(
            """
            def save(session, row):
                try:
                    session.add(row)
                    session.commit()
                except IntegrityError:
                    log.exception("could not save")
                    raise
            """
        ),
        Valid(
            """
            def push(repo, message):
                try:
                    repo.commit(message)
                except GitError:
                    return False
            """
        ),
        Valid(
            """
            def record(event):
                db = SessionLocal()
                try:
                    db.add(Event(name=event))
                    db.commit()
                except Exception:
                    log.exception("failed")
                finally:
                    db.close()
            """
        ),
        Valid(
            """
            def count(session):
                try:
                    return session.query(User).count()
                except OperationalError:
                    return 0
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            from sqlalchemy.exc import SQLAlchemyError

            class Repository:
                def save(self, row):
                    try:
                        self.session.add(row)
                        self.session.commit()
                    except SQLAlchemyError:
                        log.exception("could not save %s", row)
                        return None
                    return row
            """,
            """
            from sqlalchemy.exc import SQLAlchemyError

            class Repository:
                def save(self, row):
                    try:
                        self.session.add(row)
                        self.session.commit()
                    except SQLAlchemyError:
                        self.session.rollback()
                        log.exception("could not save %s", row)
                        return None
                    return row
            """,
        ),
        Invalid(
            """
            from sqlalchemy import exc

            async def finish(session, job):
                try:
                    job.status = "done"
                    await session.commit()
                except exc.OperationalError:
                    job.status = "failed"
                    await session.commit()
            """,
            """
            from sqlalchemy import exc

            async def finish(session, job):
                try:
                    job.status = "done"
                    await session.commit()
                except exc.OperationalError:
                    await session.rollback()
                    job.status = "failed"
                    await session.commit()
            """,
        ),
        Invalid(
            """
            def save(db, row):
                try:
                    db.add(row)
                    db.commit()
                except Exception:
                    pass
            """,
            """
            def save(db, row):
                try:
                    db.add(row)
                    db.commit()
                except Exception:
                    db.rollback()
            """,
            unsafe=True,
        ),
        Invalid(
            """
            def save(db, row):
                try:
                    db.session.add(row)
                    db.session.commit()
                except Exception:
                    return None
            """
        ),
    )


# --- the cheap check on the stdlib AST ---------------------------------------------------------


# Built-in exceptions a failed commit never raises (`Exception` and `BaseException` catch it).
_BUILTIN_ERRORS = frozenset(
    name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException)
) - {"Exception", "BaseException"}


def _imported_names(tree: ast.Module) -> set[str]:
    return {
        alias.asname or alias.name.split(".")[0]
        for node in quickscan.statements_of_type(tree, ast.Import, ast.ImportFrom)
        for alias in cast("ast.Import | ast.ImportFrom", node).names
    }


def _writes_then_swallows(node: ast.Try, builtin_errors: frozenset[str]) -> bool:
    """What `_sessions_written` and `_check` ask, loosely: the `try`'s own frame commits or
    flushes a receiver named like a session (or given unit-of-work calls too), which its
    `finally` does not close and no `with` in it opens, and a handler that may see the failed
    commit (not only built-in errors such as `ValueError`) neither rolls it back nor raises."""
    calls = [call for statement in node.body for call in quickscan.own_calls(statement) if isinstance(call.func, ast.Attribute)]
    receivers: dict[str, list[ast.Call]] = {}
    for call in calls:
        receivers.setdefault(ast.unparse(cast(ast.Attribute, call.func).value), []).append(call)
    handlers = [handler for handler in node.handlers if not _catches_only(handler, builtin_errors)]
    return bool(handlers) and any(_may_leave_open(node, handlers, receiver, written) for receiver, written in receivers.items())


def _catches_only(handler: ast.ExceptHandler, names: frozenset[str]) -> bool:
    caught = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return all(isinstance(error, ast.Name) and error.id in names for error in caught)


def _may_leave_open(node: ast.Try, handlers: list[ast.ExceptHandler], receiver: str, calls: list[ast.Call]) -> bool:
    methods = {cast(ast.Attribute, call.func).attr for call in calls}
    if not methods & _WRITES or not (_NAMED_LIKE_A_SESSION.search(receiver.rsplit(".", 1)[-1]) or methods & _UNIT_OF_WORK):
        return False
    # LibCST compares the receivers' code: only spellings as plain as `receiver` match it surely.
    spelled_alike = all(_spelled_as(call, receiver) for call in calls)
    if spelled_alike and (_calls_on(node.finalbody, receiver, "close") or _opens_with(node.body, receiver)):
        return False
    return any(
        not any(isinstance(child, ast.Raise) for child in quickscan.own_nodes(handler))
        and not (spelled_alike and _calls_on(handler.body, receiver, "rollback"))
        for handler in handlers
    )


def _opens_with(statements: list[ast.stmt], name: str) -> bool:
    """`with <x> as <name>:` anywhere in the statements, written `<x> as <name>` (no parentheses)."""
    return any(
        isinstance(item.optional_vars, ast.Name)
        and item.optional_vars.id == name
        and item.optional_vars.lineno == item.context_expr.end_lineno
        and item.optional_vars.col_offset - (item.context_expr.end_col_offset or 0) == len(" as ")
        for statement in statements
        for with_node in ast.walk(statement)
        if isinstance(with_node, (ast.With, ast.AsyncWith))
        for item in with_node.items
    )


def _calls_on(statements: list[ast.stmt], receiver: str, method: str) -> bool:
    """`<receiver>.<method>()` among the statements' own calls, spelled exactly so."""
    return any(
        quickscan.called_name(call) == method and _spelled_as(call, receiver)
        for statement in statements
        for call in (statement, *quickscan.own_nodes(statement))
        if isinstance(call, ast.Call)
    )


def _spelled_as(call: ast.Call, receiver: str) -> bool:
    """The callee is `<receiver>.<method>` on one line without spaces, parentheses or comments."""
    callee = call.func
    if not isinstance(callee, ast.Attribute) or quickscan.dotted_name(callee.value) != receiver or callee.lineno != callee.end_lineno:
        return False
    return (callee.end_col_offset or 0) - callee.col_offset == len(f"{receiver}.{callee.attr}".encode())


# --- the LibCST side ----------------------------------------------------------------------------


def _own_nodes(body: cst.CSTNode, kind: type[_Node]) -> list[_Node]:
    """The `kind` nodes the block holds in its own frame (not in nested functions, lambdas or classes)."""
    found: list[_Node] = []

    class _Collector(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            if isinstance(node, kind):
                found.append(node)
            return not isinstance(node, FunctionLike)

    body.visit(_Collector())
    return found


def _own_calls(body: cst.CSTNode) -> list[cst.Call]:
    return _own_nodes(body, cst.Call)


def _raises(handler: cst.ExceptHandler) -> bool:
    """A `raise` anywhere in the handler's own frame (`if ...: raise A` / `else: raise B` too):
    it may swallow on some path, but unleak cannot tell it does."""
    return bool(_own_nodes(handler.body, cst.Raise))


def _opened_by_a_with_inside(node: cst.Try, session: str) -> bool:
    """`async with SessionLocal() as session:` inside the `try`'s body."""
    return any(
        item.asname is not None and _code(item.asname.name) == session
        for with_node in m.findall(node.body, m.With())
        for item in cst.ensure_type(with_node, cst.With).items
    )


def _rolls_back(handler: cst.ExceptHandler, session: str) -> bool:
    return any(
        isinstance(call.func, cst.Attribute) and call.func.attr.value == "rollback" and _code(call.func.value) == session
        for call in _own_calls(handler.body)
    )


def _closes_in_finally(node: cst.Try, session: str) -> bool:
    if node.finalbody is None:
        return False
    return any(
        isinstance(call.func, cst.Attribute) and call.func.attr.value == "close" and _code(call.func.value) == session
        for call in _own_calls(node.finalbody.body)
    )


def _is_plain(receiver: cst.BaseExpression) -> bool:
    """A plain name, or `self.<attribute>`."""
    return m.matches(receiver, m.Name() | m.Attribute(value=m.Name("self"), attr=m.Name()))


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)
