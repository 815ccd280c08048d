'''UL303 unawaited-async-session-call

## What it does
Finds a call of an `AsyncSession` coroutine method -- `commit()`, `rollback()`, `close()`,
`flush()`, `refresh(x)`, `delete(x)`, `execute(...)`, `scalar(...)`, `scalars(...)`, `get(...)`,
`merge(x)`, ... -- that is not awaited, in an `async def`, and adds the `await`:

- as a statement of its own: `session.delete(obj)` becomes `await session.delete(obj)`;
- as the receiver of another call or attribute: `session.execute(q).scalars()` becomes
  `(await session.execute(q)).scalars()`;
- as an assignment whose name is only used as the result afterwards: a receiver
  (`result = session.execute(q)` then `result.scalars()`), a test for "no row" (`obj =
  session.get(M, k)` then `if not obj:` or `obj is None`: a coroutine is always true and never
  None), or returned besides.

The session is recognised when every binding of its name in the function is one of:

- a parameter annotated `AsyncSession` (`session: AsyncSession`,
  `Annotated[AsyncSession, Depends(get_db)]`, any `AsyncSession` class, such as SQLModel's);
- `async with <factory>() as session:` where the factory is SQLAlchemy's `AsyncSession`, an
  `async_sessionmaker(...)` (or `sessionmaker(class_=AsyncSession)`) the project index sees in
  any module of the run, or a callee named like a database session factory
  (`AsyncSessionLocal()`, `async_session()`, `get_session()`, `get_db()`; not
  `aiohttp.ClientSession()`): a synchronous `Session` cannot be entered with `async with`;
- `async for session in <factory>():` over a generator the index knows, or one named like an
  async session factory (`get_async_db()`, a FastAPI dependency iterated by hand; the name must
  say `async`, since an async generator can yield a sync `Session`);
- `session = <factory>()` with a factory the project index knows to be asynchronous.

## Why is this bad?
On an `AsyncSession` these methods are coroutines. Called without `await` they return a
coroutine object that never runs: the row is not deleted, the transaction is not committed,
and Python only warns "coroutine ... was never awaited" when the object is garbage-collected,
long after the request answered "done".

## Example
```python
async def remove(session: AsyncSession, item: Item) -> None:
    session.delete(item)
    await session.commit()
```

## Use instead
```python
async def remove(session: AsyncSession, item: Item) -> None:
    await session.delete(item)
    await session.commit()
```

## Fix safety
Safe: the call did nothing before, and awaiting it does what the code says. Left alone:
`session.add(...)`, `add_all(...)`, `expunge(...)` and the other methods that are not
coroutines; any call in a synchronous function (it cannot await) or in a lambda; a session
bound in any other way too (`session = Session()`, a parameter annotated `Session` or not at
all); `self.session` attributes; a call whose coroutine is used otherwise (passed to
`asyncio.gather(...)`, returned, stored and awaited later).

The byte triggers are `async` and a call of one of the coroutine methods; `could_fire` keeps
only files with an `async def` that calls one of them where its coroutine is dropped, on a name
every binding of which in the frame may make an `AsyncSession` (a parameter annotated so or not
at all, an `async with`/`async for` over a possible factory, a possible factory's result), or,
bound outside the frame, one of whose bindings in the module may.
'''

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from functools import cached_property, partial
from typing import cast

import libcst as cst
import libcst.matchers as m
from libcst.helpers import get_full_name_for_node
from libcst.metadata import Assignment, ParentNodeProvider, QualifiedNameProvider, ScopeProvider

from unleak.knowledge import quickscan
from unleak.knowledge.analysis import in_async_function
from unleak.knowledge.project import ProjectView
from unleak.knowledge.sessions import session_call
from unleak.rule import FixSafety, Invalid, Rule, SliceScope, Valid
from unleak.settings import Settings

# `AsyncSession` methods that return coroutines (`add`, `add_all`, `expunge`, `in_transaction`... do not).
COROUTINE_METHODS = frozenset(
    {
        "commit", "rollback", "close", "flush", "refresh", "delete", "execute", "scalar", "scalars",
        "get", "get_one", "merge", "stream", "stream_scalars", "run_sync", "invalidate", "reset", "connection",
    }
)  # fmt: skip
_ASYNC_SESSION_CLASS = "AsyncSession"
# A database session factory by its name alone: `AsyncSessionLocal`, `async_session`, `get_db`.
_FACTORY_NAME = re.compile(r"(?:\w+\.)*(?:(?:async_?)?(?:db_?)?session(?:_?local|_?factory|_?maker)?|get_(?:async_)?(?:db|session))$", re.I)


class UnawaitedAsyncSessionCall(Rule):
    code = "UL303"
    name = "unawaited-async-session-call"
    safety = FixSafety.SAFE
    summary = "An `AsyncSession` method called without `await` never runs: await it"
    # A call of one of COROUTINE_METHODS, written out: the registry reads it without importing the module.
    trigger = (
        rb"\basync\b",
        rb"\.(?:close|commit|connection|delete|execute|flush|get|get_one|invalidate|merge|refresh|reset|rollback"
        rb"|run_sync|scalar|scalars|stream|stream_scalars)\s*\(",
    )
    METADATA_DEPENDENCIES = (QualifiedNameProvider, ScopeProvider)
    uses_project = True
    slice_scope = SliceScope.FUNCTION

    @classmethod
    def could_fire(cls, tree: ast.Module) -> bool:
        """For any project: every callee may be an async session factory it knows."""
        return _Gate(tree, lambda callee: True).fires()

    @classmethod
    def could_fire_in(cls, tree: ast.Module, settings: Settings, project: ProjectView) -> bool:
        return _Gate(tree, partial(_known_async_factory, project)).fires()

    @m.visit(m.Call(func=m.Attribute(value=m.Name(), attr=m.OneOf(*map(m.Name, sorted(COROUTINE_METHODS))))))
    def flag_unawaited_call(self, node: cst.Call) -> None:
        if not in_async_function(self, node) or not self._runs_nowhere_else(node):
            return
        receiver = cst.ensure_type(cst.ensure_type(node.func, cst.Attribute).value, cst.Name)
        if not self._is_async_session(receiver):
            return
        parent = self.get_metadata(ParentNodeProvider, node)
        awaited = cst.Await(node)
        if isinstance(parent, (cst.Attribute, cst.Subscript)):  # `(await s.execute(q)).scalars()`
            awaited = awaited.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        self.report(node, fix=awaited)

    def _runs_nowhere_else(self, node: cst.Call) -> bool:
        """The coroutine is dropped or used as if it were the result: a statement of its own, the
        receiver of an attribute, or assigned to a name only used as a receiver."""
        parent = self.get_metadata(ParentNodeProvider, node)
        if isinstance(parent, cst.Expr):
            return True
        if isinstance(parent, cst.Attribute) and parent.value is node:
            return True
        if m.matches(parent, m.Assign(targets=[m.AssignTarget(m.Name())])):
            target = cst.ensure_type(cst.ensure_type(parent, cst.Assign).targets[0].target, cst.Name)
            return self._used_only_as_receiver(target)
        return False

    def _used_only_as_receiver(self, target: cst.Name) -> bool:
        """Every use of the name reads it as the result: the receiver of an attribute, or a test
        for "no row" (`if not obj:`, `obj is None`; a coroutine is always true and never None);
        `return obj` too, when another use does. An `await obj` or a call argument is left alone."""
        scope = self.get_metadata(ScopeProvider, target, None)
        if scope is None:
            return False
        mine = [assignment for assignment in scope.assignments[target.value] if assignment.node is target]
        if len(mine) != 1 or not isinstance(mine[0], Assignment):
            return False
        uses = [self._use_of(access.node) for access in mine[0].references]
        return bool(uses) and "other" not in uses and set(uses) != {"returned"}

    def _use_of(self, name: cst.CSTNode) -> str:
        """How `name` is read: "result" (a receiver or a test), "returned" or "other"."""
        parent = self.get_metadata(ParentNodeProvider, name, None)
        if isinstance(parent, cst.Attribute) and parent.value is name:
            return "result"
        if isinstance(parent, (cst.If, cst.While)) and parent.test is name:
            return "result"
        if m.matches(parent, m.UnaryOperation(operator=m.Not())):
            return "result"
        if m.matches(parent, m.Comparison(comparisons=[m.ComparisonTarget(m.Is() | m.IsNot(), m.Name("None"))])):
            return "result" if cst.ensure_type(parent, cst.Comparison).left is name else "other"
        return "returned" if isinstance(parent, cst.Return) else "other"

    def _is_async_session(self, receiver: cst.Name) -> bool:
        """Every binding of the receiver's name in its scope makes it an `AsyncSession`."""
        scope = self.get_metadata(ScopeProvider, receiver, None)
        if scope is None:
            return False
        bindings = list(scope[receiver.value])
        return bool(bindings) and all(self._binds_async_session(binding.node) for binding in bindings)

    def _binds_async_session(self, bound: cst.CSTNode) -> bool:
        if isinstance(bound, cst.Param):
            return bound.annotation is not None and _names_async_session(bound.annotation.annotation)
        with_item = self._parent_chain(bound, cst.AsName, cst.WithItem)
        if with_item is not None:
            with_statement = self.get_metadata(ParentNodeProvider, with_item)
            entered = cst.ensure_type(with_item, cst.WithItem).item
            asynchronous = isinstance(with_statement, cst.With) and with_statement.asynchronous is not None
            return asynchronous and self._creates_session(entered, named_is_enough=True)
        loop = self._parent_chain(bound, cst.For)
        if isinstance(loop, cst.For) and loop.target is bound:  # `async for db in get_async_db():`
            return loop.asynchronous is not None and self._yields_async_sessions(loop.iter)
        assign = self._parent_chain(bound, cst.AssignTarget, cst.Assign)
        if assign is None:
            return False
        return self._creates_session(cst.ensure_type(assign, cst.Assign).value, named_is_enough=False)

    def _yields_async_sessions(self, iterated: cst.BaseExpression) -> bool:
        """`get_async_db()`: a generator the index knows to hand out async sessions, or one named
        like an async session factory (an async generator may yield a sync `Session` too: the
        name must say `async`)."""
        if self._creates_session(iterated, named_is_enough=False):
            return True
        callee = get_full_name_for_node(iterated.func) if isinstance(iterated, cst.Call) else None
        return callee is not None and "async" in callee.lower() and bool(_FACTORY_NAME.match(callee))

    def _parent_chain(self, node: cst.CSTNode, *kinds: type[cst.CSTNode]) -> cst.CSTNode | None:
        """The last of `node`'s parents when they are of `kinds`, nearest first; else None."""
        current = node
        for kind in kinds:
            current = self.get_metadata(ParentNodeProvider, current, None)
            if not isinstance(current, kind):
                return None
        return current

    def _creates_session(self, value: cst.BaseExpression, *, named_is_enough: bool) -> bool:
        """`value` is a call that creates an async session: by qualified name or the project index;
        in `async with`, a callee named like a session factory is enough."""
        if not isinstance(value, cst.Call):
            return False
        found = session_call(self, value)
        if found is None:
            return False
        if found.asynchronous is None:  # known by its name only: `aiohttp.ClientSession` is not one
            return named_is_enough and bool(_FACTORY_NAME.match(get_full_name_for_node(value.func) or ""))
        return found.asynchronous

    VALID = (
        Valid(
            """
            async def save(session: AsyncSession, item):
                session.add(item)
                await session.commit()
            """
        ),
        Valid(
            """
            def save(session: Session, item):
                session.delete(item)
                session.commit()
            """
        ),
        Valid(
            """
            async def close_all(sessions: list[AsyncSession], session: AsyncSession):
                await asyncio.gather(session.close(), *(other.close() for other in sessions))
            """
        ),
        Valid(
            """
            async def remove(session, item):
                session.delete(item)
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            async def remove(session: AsyncSession, item: Item) -> None:
                session.delete(item)  # gone
                await session.commit()
            """,
            """
            async def remove(session: AsyncSession, item: Item) -> None:
                await session.delete(item)  # gone
                await session.commit()
            """,
        ),
        Invalid(
            """
            from sqlalchemy.ext.asyncio import async_sessionmaker

            AsyncSessionLocal = async_sessionmaker(engine)


            async def names():
                async with AsyncSessionLocal() as session:
                    return session.execute(select(User.name)).scalars().all()
            """,
            """
            from sqlalchemy.ext.asyncio import async_sessionmaker

            AsyncSessionLocal = async_sessionmaker(engine)


            async def names():
                async with AsyncSessionLocal() as session:
                    return (await session.execute(select(User.name))).scalars().all()
            """,
        ),
    )


def _known_async_factory(project: ProjectView, callee: str) -> bool:
    found = project.session_factory(callee).found
    return found is not None and found.asynchronous


def _names_async_session(annotation: cst.BaseExpression) -> bool:
    """`AsyncSession`, `asyncio.AsyncSession`, `Annotated[AsyncSession, ...]`, `"AsyncSession"`."""
    if isinstance(annotation, cst.SimpleString):
        return str(annotation.evaluated_value).rsplit(".", 1)[-1] == _ASYNC_SESSION_CLASS
    if m.matches(annotation, m.Subscript(value=m.Name("Annotated") | m.Attribute(attr=m.Name("Annotated")))):
        first = cst.ensure_type(annotation, cst.Subscript).slice[0].slice
        return isinstance(first, cst.Index) and _names_async_session(first.value)
    return m.matches(annotation, m.Name(_ASYNC_SESSION_CLASS) | m.Attribute(attr=m.Name(_ASYNC_SESSION_CLASS)))


# --- the cheap check on the stdlib AST ----------------------------------------------------------


class _Gate:
    """`could_fire` for one module: `knows_async_factory` says whether the project may know a
    callee (`make`, `db.make`) as an async session factory."""

    def __init__(self, tree: ast.Module, knows_async_factory: Callable[[str], bool]) -> None:
        self.tree = tree
        self.knows_async_factory = knows_async_factory

    def fires(self) -> bool:
        return any(self._calls_unawaited(function) for function in quickscan.statements_of_type(self.tree, ast.AsyncFunctionDef))

    def _calls_unawaited(self, function: ast.AsyncFunctionDef) -> bool:
        """A coroutine method called where its coroutine is dropped, in the function's own frame,
        on a name that may be an `AsyncSession` there."""
        frame = quickscan.frame_nodes(function)
        dropped = set(map(id, _dropped_values(frame)))
        calls = [call for call in _method_calls(frame) if id(call) in dropped]
        if not calls:
            return False
        bindings = quickscan.bindings(quickscan.parameters(function), frame)
        return any(self._may_be_async_session(_receiver(call), bindings.get(_receiver(call))) for call in calls)

    def _may_be_async_session(self, name: str, bindings: list[quickscan.Binding] | None) -> bool:
        """What `_is_async_session` asks of every binding in the frame; a name the frame does not
        bind is looked up in the whole module (a closure's or a global: one of its bindings must
        may make it one; a name bound nowhere stays possible)."""
        if bindings:
            return all(map(self._may_bind_async_session, bindings))
        elsewhere = self._module_bindings.get(name)
        return elsewhere is None or any(map(self._may_bind_async_session, elsewhere))

    @cached_property
    def _module_bindings(self) -> dict[str, list[quickscan.Binding]]:
        nodes = quickscan.every_node(self.tree)
        return quickscan.bindings(((node, None) for node in nodes if isinstance(node, ast.arg)), nodes)

    def _may_bind_async_session(self, binding: quickscan.Binding) -> bool:
        """Loosely `_binds_async_session` (a parameter without annotation stays possible)."""
        if binding.parameter is not None:
            annotation = binding.parameter.annotation
            return annotation is None or _ASYNC_SESSION_CLASS in ast.unparse(annotation)
        value = binding.value
        if not isinstance(value, ast.Call):
            return False
        if binding.how == "async with":
            return self._may_create_session(value, named_is_enough=True)
        if binding.how == "async for":
            callee = quickscan.dotted_name(value.func) or ""
            named = "async" in callee.lower() and _FACTORY_NAME.match(callee) is not None
            return named or self._may_create_session(value, named_is_enough=False)
        return binding.how == "assigned" and self._may_create_session(value, named_is_enough=False)

    def _may_create_session(self, call: ast.Call, *, named_is_enough: bool) -> bool:
        """Loosely `_creates_session`: `AsyncSession(...)` under any name it is imported as, a
        factory the project may know as asynchronous, or (when enough) a factory by its name."""
        callee = quickscan.dotted_name(call.func)
        if callee is None:
            return False
        if callee.rsplit(".", 1)[-1] in self._async_session_classes:
            return True
        return bool(named_is_enough and _FACTORY_NAME.match(callee)) or self.knows_async_factory(callee)

    @cached_property
    def _async_session_classes(self) -> frozenset[str]:
        """`AsyncSession`, and every name the module imports a name ending in it as."""
        aliases = {
            alias.asname
            for node in quickscan.statements_of_type(self.tree, ast.Import, ast.ImportFrom)
            for alias in cast("ast.Import | ast.ImportFrom", node).names
            if alias.asname and alias.name.rsplit(".", 1)[-1] == _ASYNC_SESSION_CLASS
        }
        return frozenset({_ASYNC_SESSION_CLASS, *aliases})


def _dropped_values(frame: list[ast.AST]) -> Iterator[ast.expr]:
    """The values whose coroutine `_runs_nowhere_else` would take as dropped: a statement of its
    own, the receiver of an attribute, the value assigned to one name alone."""
    for node in frame:
        if isinstance(node, (ast.Expr, ast.Attribute)):
            yield node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            yield node.value


def _receiver(call: ast.Call) -> str:
    return cast(ast.Name, cast(ast.Attribute, call.func).value).id


def _method_calls(frame: list[ast.AST]) -> Iterator[ast.Call]:
    for call in frame:
        if not isinstance(call, ast.Call):
            continue
        callee = call.func
        if isinstance(callee, ast.Attribute) and isinstance(callee.value, ast.Name) and callee.attr in COROUTINE_METHODS:
            yield call
