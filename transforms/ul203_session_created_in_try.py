'''UL203 session-created-in-try

## What it does
Finds a database session closed in a `finally` whose `try` creates it, or whose `except`
handlers keep its failed transaction:

- `try: db = SessionLocal() ... finally: db.close()`: the assignment moves right before the
  `try` (with its comments);
- every `except` handler of that `try` which neither rolls back (`db.rollback()` anywhere in it)
  nor re-raises (a `raise` statement of its own) gets `db.rollback()` as its first statement
  (`await db.rollback()` when the `finally` awaits the close; it replaces a lone `pass`).
  A session created earlier in the same block and closed in the `finally` gets the rollbacks
  too.

What is a session: a name assigned once, from a call of SQLAlchemy's `Session`/`AsyncSession`
(resolved by qualified name, aliases followed) or of a `sessionmaker(...)`/`async_sessionmaker(...)`
this module assigns once (`SessionLocal = sessionmaker(bind=engine)`); or from a call whose name
ends in `session`, `session_local` or `session_factory` (`SessionLocal()`, `AsyncSessionLocal()`,
`get_session()`, imported from anywhere) -- but then only when the `try` also yields it (a
FastAPI dependency) or calls a transaction method on it (`add`, `add_all`, `commit`, `flush`, `query`, `execute`, `scalars`,
`scalar`, `merge`, `refresh`), which an HTTP client session (`requests.Session`,
`aiohttp.ClientSession`) never does. Only a `name.close()` statement of the `finally` itself
counts as the close.

## Why is this bad?
When `SessionLocal()` fails (pool exhausted, database down), `db` was never bound: the
`finally` raises `UnboundLocalError` and the real error is lost behind it (seed 002 #22). And
an `except` handler that logs and carries on leaves the failed transaction open while it runs:
the connection stays "idle in transaction" with its locks held, so whatever the handler does
next -- record the failure, notify, retry, sleep -- runs against a database that the dead
transaction still blocks (on SQLite another writer fails with "database is locked"), and
code that goes on with the session meets `PendingRollbackError` (seeds 002 #22, 001 #2).

## Example
```python
def record(event):
    try:
        db = SessionLocal()
        db.add(Event(name=event))
        db.commit()
    except Exception:
        logger.exception("could not record %s", event)
    finally:
        db.close()
```

## Use instead
```python
def record(event):
    db = SessionLocal()
    try:
        db.add(Event(name=event))
        db.commit()
    except Exception:
        db.rollback()
        logger.exception("could not record %s", event)
    finally:
        db.close()
```

## Fix safety
Safe. Moving the creation out of the `try` only changes what happens when creating the session
fails: before, the handlers ran and then the `finally` raised `UnboundLocalError` (the function
never completed normally on that path); after, the factory's own error propagates (an enclosing
`try` still sees an error). That path was already a crash; it now names its cause. It is not
moved when the `try` sits in a loop and has handlers: from the second turn on, the name still holds the
previous session, so the handler did catch the factory's error and the loop went on -- that
is reported without a fix (create the session before the `try`, or set it to `None` and check
in `finally`). A `try` whose body is only the creation, or a creation sharing its line with
other statements, is reported without a fix too.

The inserted rollback discards what the `finally`'s `close()` would discard a moment later (a
close rolls the transaction back); only the handler's own statements now run after the rollback,
so ORM objects it reads are reloaded instead of read from the failed transaction. A handler that
uses the session itself (other than rolling back) may rely on the pending work (`db.commit()` of
what went through): it is reported without a fix. Async sessions are rewritten only inside an
`async def`. Nothing is reported for `with SessionLocal() as db:`, names assigned more than once
(`db = None` first) or handlers that already roll back or re-raise.

The byte triggers are `.close(` and `finally`; `could_fire` keeps only files with a `try` whose
`finally` closes (`name.close()`) a name that the `try` body assigns from a call as its first
statement, or -- for a `try` with handlers -- that an earlier statement of the same block
assigns from a call; and the call must be named like a session factory unless the module
imports `sqlalchemy` or `sqlmodel`.
'''

from __future__ import annotations

import ast
import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import libcst as cst
import libcst.matchers as m
from libcst.metadata import Assignment, ParentNodeProvider, QualifiedNameProvider, ScopeProvider

from unleak.knowledge import quickscan
from unleak.knowledge.analysis import FunctionLike, ancestors, calls_method, in_async_function, qualified_names, within
from unleak.knowledge.layout import without_leading_blanks
from unleak.knowledge.project import ProjectView
from unleak.knowledge.sessions import (
    SESSION_CLASSES,
    SESSION_LIKE_CALLEE,
    TRANSACTION_METHODS,
    project_session_maker,
    reraises,
    session_call,
    with_rollback_first,
)
from unleak.rule import FixSafety, Invalid, Rule, SliceScope, Valid
from unleak.settings import Settings

_CREATION = m.SimpleStatementLine(
    body=[
        m.Assign(targets=[m.AssignTarget(m.Name())], value=m.Call())
        | m.AnnAssign(target=m.Name(), value=m.Call()),
        m.ZeroOrMore(),
    ]
)
# Packages whose `Session`/`ClientSession` is an HTTP client, whatever the `try` does with it.
_HTTP_CLIENTS = frozenset({"requests", "httpx", "aiohttp", "urllib3"})
_CLOSE = m.Call(func=m.Attribute(value=m.Name(), attr=m.Name("close")), args=[])
_CLOSE_STATEMENT = m.SimpleStatementLine(body=[m.Expr(_CLOSE | m.Await(_CLOSE))])


class _Verdict(enum.Enum):
    """What an `except` handler of the `try` does about the session."""

    FINE = "rolls back or re-raises"
    USES_SESSION = "uses the session otherwise: it may need the pending work"
    NEEDS_ROLLBACK = "keeps the failed transaction"


@dataclass(frozen=True)
class _Session:
    """A session name closed in a `try`'s `finally`, and the statement that creates it."""

    name: str
    creation: cst.SimpleStatementLine
    inside: bool  # created as the first statement of the `try` body
    awaited: bool  # the `finally` awaits its close
    accesses: tuple[cst.CSTNode, ...]  # its uses in the `try` statement


class SessionCreatedInTry(Rule):
    code = "UL203"
    name = "session-created-in-try"
    safety = FixSafety.SAFE
    summary = "Session created inside `try` or left un-rolled-back by its `except` handlers"
    trigger = (rb"\.close\s*\(", rb"\bfinally\b")
    METADATA_DEPENDENCIES = (QualifiedNameProvider, ScopeProvider)
    uses_project = True
    slice_scope = SliceScope.IN_FUNCTIONS

    @classmethod
    def could_fire(cls, tree: ast.Module) -> bool:
        return cls.could_fire_in(tree, Settings(), ProjectView.empty())

    @classmethod
    def could_fire_in(cls, tree: ast.Module, settings: Settings, project: ProjectView) -> bool:
        makes_sessions = _possible_session_makers(tree, project)
        return any(
            _creation_then_try_closing_it(statements, makes_sessions) for statements in quickscan.statement_lists(tree)
        )

    @m.visit(m.Try(finalbody=m.Finally(body=m.IndentedBlock())))
    def flag_session_in_try(self, node: cst.Try) -> None:
        session = next(self._sessions(node), None)
        if session is not None:
            self._check(node, session)

    def _check(self, node: cst.Try, session: _Session) -> None:
        if session.awaited and not in_async_function(self, node):
            return
        verdicts = [self._handler_verdict(handler, session) for handler in node.handlers]
        if _Verdict.USES_SESSION in verdicts:
            self.report(node, f"{self.summary}: a handler uses `{session.name}`; roll back by hand where it fits")
            return
        rolls_back = _Verdict.NEEDS_ROLLBACK in verdicts
        if not session.inside and not rolls_back:
            return
        unmovable = self._why_creation_stays(node, session) if session.inside else None
        if unmovable is not None:
            self.report(
                node,
                f"`{session.name}` is created inside the `try` that closes it: create it before the `try`"
                f" (not fixed: {unmovable})",
            )
            return
        handlers = [
            with_rollback_first(handler, session.name, session.awaited) if verdict is _Verdict.NEEDS_ROLLBACK else handler
            for handler, verdict in zip(node.handlers, verdicts)
        ]
        self.report(node, self._message(session, rolls_back), fix=_rewritten(node, session, handlers))

    def _message(self, session: _Session, rolls_back: bool) -> str:
        parts = [f"create `{session.name}` before the `try`"] if session.inside else []
        if rolls_back:
            parts.append(f"roll `{session.name}` back in the `except` handlers")
        return f"{self.summary}: {' and '.join(parts)}"

    # --- which session the finally closes ------------------------------------------------------

    def _sessions(self, node: cst.Try) -> Iterator[_Session]:
        finalbody = cst.ensure_type(node.finalbody, cst.Finally).body
        for statement in cst.ensure_type(finalbody, cst.IndentedBlock).body:
            if not m.matches(statement, _CLOSE_STATEMENT):
                continue
            value = cst.ensure_type(cst.ensure_type(statement, cst.SimpleStatementLine).body[0], cst.Expr).value
            close = cst.ensure_type(value.expression if isinstance(value, cst.Await) else value, cst.Call)
            name = cst.ensure_type(cst.ensure_type(close.func, cst.Attribute).value, cst.Name).value
            session = self._session(node, name, awaited=isinstance(value, cst.Await))
            if session is not None:
                yield session

    def _session(self, node: cst.Try, name: str, *, awaited: bool) -> _Session | None:
        found = self._creation_of(node, name)
        if found is None:
            return None
        creation, inside = found
        call = cst.ensure_type(_assigned_value(creation), cst.Call)
        kind = session_call(self, call)
        if kind is None or kind.asynchronous not in (None, awaited):
            return None
        accesses = self._single_assignment_accesses(creation)
        if accesses is None:
            return None
        in_try = tuple(access for access in accesses if within(self, access, node))
        if not kind.resolved and (_HTTP_CLIENTS & self._packages(call) or not any(map(self._used_as_a_session, in_try))):
            return None
        return _Session(name, creation, inside, awaited, in_try)

    def _packages(self, call: cst.Call) -> set[str]:
        return {name.split(".")[0] for name in qualified_names(self, call.func)}

    def _used_as_a_session(self, access: cst.CSTNode) -> bool:
        """A transaction method called on it (`db.add(...)`), or handed out by `yield db` (a
        FastAPI dependency: an HTTP client session is not yielded from a `try` that closes it)."""
        parent = self.get_metadata(ParentNodeProvider, access, None)
        return calls_method(self, access, TRANSACTION_METHODS) or (isinstance(parent, cst.Yield) and parent.value is access)

    def _creation_of(self, node: cst.Try, name: str) -> tuple[cst.SimpleStatementLine, bool] | None:
        """The statement creating `name`: the `try` body's first, or an earlier one of the same block."""
        if isinstance(node.body, cst.IndentedBlock) and node.body.body:
            first = node.body.body[0]
            if _assigns(first, name):
                return cst.ensure_type(first, cst.SimpleStatementLine), True
        block = self.get_metadata(ParentNodeProvider, node)
        if not isinstance(block, (cst.IndentedBlock, cst.Module)):
            return None
        statements = list(block.body)
        earlier = statements[: statements.index(node)]
        creation = next((statement for statement in reversed(earlier) if _assigns(statement, name)), None)
        return (cst.ensure_type(creation, cst.SimpleStatementLine), False) if creation is not None else None

    def _single_assignment_accesses(self, creation: cst.SimpleStatementLine) -> tuple[cst.CSTNode, ...] | None:
        """The uses of the created name, or None when it is assigned anywhere else in its scope."""
        target = _assigned_name(creation)
        scope = self.get_metadata(ScopeProvider, target)
        assignments = list(scope.assignments[target.value])
        if len(assignments) != 1 or not isinstance(assignments[0], Assignment) or assignments[0].node is not target:
            return None
        return tuple(access.node for access in assignments[0].references)

    # --- what each handler does with it --------------------------------------------------------

    def _handler_verdict(self, handler: cst.ExceptHandler, session: _Session) -> _Verdict:
        here = [access for access in session.accesses if within(self, access, handler)]
        if any(calls_method(self, access, {"rollback"}) for access in here) or reraises(handler):
            return _Verdict.FINE
        return _Verdict.USES_SESSION if here else _Verdict.NEEDS_ROLLBACK

    def _why_creation_stays(self, node: cst.Try, session: _Session) -> str | None:
        """Why the creation cannot move before the `try`, or None when it can."""
        if len(session.creation.body) != 1:
            return "it shares its line with other statements"
        if len(cst.ensure_type(node.body, cst.IndentedBlock).body) < 2:
            return "the `try` does nothing else"
        if node.handlers and _in_a_loop(self, node):
            return "in a loop its handlers also catch the creation's errors, and the loop goes on"
        return None

    VALID = (
        Valid(
            """
            def record(event):
                db = SessionLocal()
                try:
                    db.add(Event(name=event))
                    db.commit()
                except Exception:
                    db.rollback()
                    logger.exception("could not record")
                finally:
                    db.close()
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
                    logger.exception("could not record")
                    raise
                finally:
                    db.close()
            """
        ),
        Valid(
            """
            def record(event):
                with SessionLocal() as db:
                    db.add(Event(name=event))
                    db.commit()
            """
        ),
        Valid(
            """
            import requests

            def fetch(url):
                try:
                    session = requests.Session()
                    return session.get(url).text
                except Exception:
                    return ""
                finally:
                    session.close()
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            def get_db():
                try:
                    db = SessionLocal()
                    yield db
                finally:
                    db.close()
            """,
            """
            def get_db():
                db = SessionLocal()
                try:
                    yield db
                finally:
                    db.close()
            """,
        ),
        Invalid(
            """
            def record(event):
                try:
                    db = SessionLocal()
                    db.add(Event(name=event))
                    db.commit()
                except Exception:
                    logger.exception("could not record %s", event)
                finally:
                    db.close()
            """,
            """
            def record(event):
                db = SessionLocal()
                try:
                    db.add(Event(name=event))
                    db.commit()
                except Exception:
                    db.rollback()
                    logger.exception("could not record %s", event)
                finally:
                    db.close()
            """,
        ),
        Invalid(
            """
            from sqlalchemy.ext.asyncio import async_sessionmaker

            Sessions = async_sessionmaker(engine)

            async def rename(user_id, name):
                # one session per request
                try:
                    session = Sessions()  # pooled
                    user = await session.get(User, user_id)
                    user.name = name
                    await session.commit()
                except ValueError:
                    return False
                except KeyError:
                    await session.rollback()
                    return False
                finally:
                    await session.close()
                return True
            """,
            """
            from sqlalchemy.ext.asyncio import async_sessionmaker

            Sessions = async_sessionmaker(engine)

            async def rename(user_id, name):
                # one session per request
                session = Sessions()  # pooled
                try:
                    user = await session.get(User, user_id)
                    user.name = name
                    await session.commit()
                except ValueError:
                    await session.rollback()
                    return False
                except KeyError:
                    await session.rollback()
                    return False
                finally:
                    await session.close()
                return True
            """,
        ),
        Invalid(
            """
            def worker(jobs):
                db = SessionLocal()
                try:
                    for job in jobs:
                        db.execute(job)
                        db.commit()
                except Exception: log("job failed")
                finally:
                    db.close()
            """,
            """
            def worker(jobs):
                db = SessionLocal()
                try:
                    for job in jobs:
                        db.execute(job)
                        db.commit()
                except Exception: db.rollback(); log("job failed")
                finally:
                    db.close()
            """,
        ),
        Invalid(
            """
            def poll():
                while True:
                    try:
                        db = SessionLocal()
                        db.execute(PING)
                    except Exception:
                        log("database down")
                    finally:
                        db.close()
            """
        ),
    )


# --- small structural helpers ------------------------------------------------------------------


def _assigned_name(statement: cst.SimpleStatementLine) -> cst.Name:
    small = statement.body[0]
    target = small.targets[0].target if isinstance(small, cst.Assign) else cst.ensure_type(small, cst.AnnAssign).target
    return cst.ensure_type(target, cst.Name)


def _assigned_value(statement: cst.SimpleStatementLine) -> cst.BaseExpression | None:
    small = statement.body[0]
    return small.value if isinstance(small, (cst.Assign, cst.AnnAssign)) else None


def _assigns(statement: cst.BaseStatement, name: str) -> bool:
    if not m.matches(statement, _CREATION):
        return False
    return _assigned_name(cst.ensure_type(statement, cst.SimpleStatementLine)).value == name


def _in_a_loop(rule: Rule, node: cst.CSTNode) -> bool:
    """Whether `node` runs inside a `for`/`while` of its own function (or of the module)."""
    for parent in ancestors(rule, node):
        if isinstance(parent, FunctionLike):
            return False
        if isinstance(parent, (cst.For, cst.While)):
            return True
    return False


def _rewritten(
    node: cst.Try, session: _Session, handlers: list[cst.ExceptHandler]
) -> cst.Try | cst.FlattenSentinel[cst.BaseStatement]:
    """The `try` with its new handlers; with the creation moved in front of it when it was inside."""
    fixed = node.with_changes(handlers=handlers)
    if not session.inside:
        return fixed
    body = cst.ensure_type(node.body, cst.IndentedBlock)
    first, *rest = body.body[1:]
    first = first.with_changes(leading_lines=without_leading_blanks(first.leading_lines))
    # Comments above the `try` stay first, then the creation's own.
    moved = session.creation.with_changes(leading_lines=[*node.leading_lines, *session.creation.leading_lines])
    remaining = fixed.with_changes(leading_lines=[], body=body.with_changes(body=[first, *rest]))
    return cst.FlattenSentinel([moved, remaining])


# --- the cheap check on the stdlib AST ---------------------------------------------------------


def _possible_session_makers(tree: ast.Module, project: ProjectView) -> Callable[[ast.Call], bool]:
    """A call that may make a session: any call in a module importing SQLAlchemy or SQLModel
    (`Session` may go by any name there), else a call named like one (`SessionLocal()`) or
    one the project index knows as a session factory."""
    if _imported_packages(tree) & _SESSION_PACKAGES:
        return lambda call: True
    known_to_the_project = project_session_maker(project)
    return lambda call: SESSION_LIKE_CALLEE.search(quickscan.called_name(call) or "") is not None or known_to_the_project(call)


def _imported_packages(tree: ast.Module) -> set[str]:
    packages: set[str] = set()
    for node in quickscan.statements_of_type(tree, ast.Import, ast.ImportFrom):
        if isinstance(node, ast.ImportFrom):
            packages.add((node.module or "").split(".")[0])
        elif isinstance(node, ast.Import):
            packages |= {alias.name.split(".")[0] for alias in node.names}
    return packages


_SESSION_PACKAGES = frozenset(qualified.split(".")[0] for qualified in SESSION_CLASSES)


def _created_names(statements: list[ast.stmt], makes_sessions: Callable[[ast.Call], bool]) -> set[str]:
    created: set[str] = set()
    for statement in statements:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
        elif isinstance(statement, ast.AnnAssign):
            target = statement.target
        else:
            continue
        if isinstance(target, ast.Name) and isinstance(statement.value, ast.Call) and makes_sessions(statement.value):
            created.add(target.id)
    return created


def _closed_names(statements: list[ast.stmt]) -> set[str]:
    closed: set[str] = set()
    for statement in statements:
        value = statement.value if isinstance(statement, ast.Expr) else None
        value = value.value if isinstance(value, ast.Await) else value
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "close":
            if isinstance(value.func.value, ast.Name):
                closed.add(value.func.value.id)
    return closed


def _may_leave_open(handler: ast.ExceptHandler, sessions: set[str]) -> bool:
    """A handler `_handler_verdict` may not find fine for one of `sessions`: no `raise` among its
    own statements, and no `<session>.rollback()` in its frame (a name a comprehension of the
    handler binds is taken as not rolled back)."""
    if not sessions or any(isinstance(statement, ast.Raise) for statement in handler.body):
        return False
    frame = list(quickscan.own_nodes(handler))
    rebound = {
        name.id
        for node in frame
        if isinstance(node, ast.comprehension)
        for name in ast.walk(node.target)
        if isinstance(name, ast.Name)
    }
    rolled_back = {
        call.func.value.id
        for call in frame
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "rollback"
        and isinstance(call.func.value, ast.Name)
    }
    return bool(sessions - (rolled_back - rebound))


def _creation_then_try_closing_it(statements: list[ast.stmt], makes_sessions: Callable[[ast.Call], bool]) -> bool:
    """A `try` whose `finally` closes a name its body creates first, or that an earlier statement
    creates and a handler may leave in its failed transaction."""
    created: set[str] = set()
    for statement in statements:
        if isinstance(statement, ast.Try) and statement.finalbody:
            closed = _closed_names(statement.finalbody)
            if closed & _created_names(statement.body[:1], makes_sessions):
                return True
            if any(_may_leave_open(handler, closed & created) for handler in statement.handlers):
                return True
        created |= _created_names([statement], makes_sessions)
    return False
