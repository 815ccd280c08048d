"""UL201 manual-acquire-release

## What it does
Finds a lock or semaphore taken with `acquire()` and given back with `release()` by hand, and
turns the statements between the two into a `with lock:` (threading) or `async with sem:`
(asyncio) block.

## Why is this bad?
Any exception, `return`, `break` or `continue` between `acquire()` and `release()` skips the
release: the slot is never given back. A worker pool behind `asyncio.Semaphore(2)` that sees two
failing jobs hangs forever on the third (seed 000 #3, seed 002 #21). A `with` block releases on
every path.

## Example
```python
async def run_job(sem, job):
    await sem.acquire()
    result = await job()
    sem.release()
    return result
```

## Use instead
```python
async def run_job(sem, job):
    async with sem:
        result = await job()
    return result
```

## Fix safety
Safe. The `with` block covers exactly the statements that ran between `acquire()` and
`release()`; only the paths that leaked the slot change. The kind of object comes from how it
was created (`asyncio.Semaphore(...)`, `threading.Lock()`, `multiprocessing.RLock()` assigned to
the name, to `self.<attr>` or to a module global) or, when that is unknown, from the `await` on
`acquire()`. A receiver this module never assigns (a parameter, an attribute a base class sets)
and whose name says lock (`lock`, `self._lock`, `write_mutex`, `sem`, `cond`) is taken for a thread
lock, and the fix is unsafe: `with` needs the object to be a context manager, which only its
type can tell. A release right before a `return` whose value calls nothing (`lock.release();
return False` in a handler), besides the one at the end, goes: the `with` releases at that
`return` too, after the same work; not inside a `with` or a `try` with a `finally` (their exit
code would now run with the lock held). A non-blocking
or timed acquire whose result is used (`if lock.acquire(timeout=1):`) and an `acquire()` that
returns something (`conn = await pool.acquire()`) are not this pattern. When the slot is released
only in an `except` handler, in another function, or not in the same block, it is meant to outlive
the call or leaks on the normal path: that is reported without a fix (it needs a context-manager
API, not a rewrite). A slot taken in `__enter__` (`__aenter__`) and given back in the same class's
`__exit__` (`__aexit__`) is left alone: that class is the context-manager API.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import cast

import libcst as cst
import libcst.matchers as m
from libcst.metadata import Assignment, ParentNodeProvider, PositionProvider, QualifiedNameProvider, ScopeProvider

from unleak.knowledge import quickscan
from unleak.knowledge.analysis import ancestors, calls, enclosing_function, in_async_function
from unleak.rule import FixSafety, Invalid, Rule, SliceScope, Valid

Block = cst.IndentedBlock | cst.Module


class Kind(Enum):
    ASYNCIO = "async with"
    THREADING = "with"


_CONSTRUCTORS = {
    Kind.ASYNCIO: ("asyncio.Semaphore", "asyncio.BoundedSemaphore", "asyncio.Lock", "asyncio.Condition"),
    Kind.THREADING: (
        "threading.Lock",
        "threading.RLock",
        "threading.Semaphore",
        "threading.BoundedSemaphore",
        "threading.Condition",
        "multiprocessing.Lock",
        "multiprocessing.RLock",
        "multiprocessing.Semaphore",
        "multiprocessing.BoundedSemaphore",
        "multiprocessing.Condition",
    ),
}

# `x.acquire()` / `self.x.acquire()`: no arguments, the receiver a name or a dotted name.
_RECEIVER = m.Name() | m.Attribute(value=m.Name() | m.Attribute())
_ACQUIRE_CALL = m.Call(func=m.Attribute(value=_RECEIVER, attr=m.Name("acquire")), args=[])
_ACQUIRE_LINE = m.SimpleStatementLine(body=[m.Expr(_ACQUIRE_CALL | m.Await(_ACQUIRE_CALL))])
_RELEASE_LINE = m.SimpleStatementLine(
    body=[m.Expr(m.Call(func=m.Attribute(value=_RECEIVER, attr=m.Name("release")), args=[]))]
)
_TRY_FINALLY_ONLY = m.Try(handlers=[], orelse=None, finalbody=m.Finally())
_PLAIN_RETURN_LINE = m.SimpleStatementLine(body=[m.Return()])
# A receiver whose creation this module does not show, named like a lock: `lock`, `self._lock`, `rlock`.
_LOCK_LIKE = re.compile(r"(?:^|_)(?:r?lock|mutex|sem(?:aphore)?|cond(?:ition)?)$", re.IGNORECASE)


@dataclass(frozen=True)
class _Acquire:
    """An `acquire()` statement: what it locks (as written) and whether it was awaited."""

    line: cst.SimpleStatementLine
    receiver: cst.BaseExpression
    awaited: bool

    @classmethod
    def of(cls, statement: cst.CSTNode) -> _Acquire | None:
        if not m.matches(statement, _ACQUIRE_LINE):
            return None
        line = cst.ensure_type(statement, cst.SimpleStatementLine)
        value = cst.ensure_type(line.body[0], cst.Expr).value
        call = cst.ensure_type(value.expression if isinstance(value, cst.Await) else value, cst.Call)
        return cls(line, cst.ensure_type(call.func, cst.Attribute).value, isinstance(value, cst.Await))

    def released_by(self, statement: cst.CSTNode) -> bool:
        """Whether `statement` is exactly `<same receiver>.release()`."""
        if not m.matches(statement, _RELEASE_LINE):
            return False
        line = cst.ensure_type(statement, cst.SimpleStatementLine)
        call = cst.ensure_type(cst.ensure_type(line.body[0], cst.Expr).value, cst.Call)
        return cst.ensure_type(call.func, cst.Attribute).value.deep_equals(self.receiver)

    def is_finally_release(self, final: cst.Finally | None) -> bool:
        """Whether `final` is a `finally:` whose whole body is the release."""
        body = final.body if final is not None else None
        return isinstance(body, cst.IndentedBlock) and len(body.body) == 1 and self.released_by(body.body[0])

    def touched_in(self, nodes: Sequence[cst.CSTNode]) -> bool:
        """Whether `nodes` call `acquire` or `release` on the same receiver anywhere inside."""
        finder = _LockCallFinder(self.receiver)
        for node in nodes:
            node.visit(finder)
        return finder.found


class _LockCallFinder(cst.CSTVisitor):
    def __init__(self, receiver: cst.BaseExpression) -> None:
        super().__init__()
        self._receiver = receiver
        self.found = False

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in ("acquire", "release"):
            self.found = self.found or func.value.deep_equals(self._receiver)


class ManualAcquireRelease(Rule):
    code = "UL201"
    name = "manual-acquire-release"
    safety = FixSafety.SAFE
    summary = "Lock/semaphore released by hand: any exception before `release()` leaks it; use `with`"
    trigger = (rb"\.acquire\s*\(", rb"\.release\s*\(")
    METADATA_DEPENDENCIES = (QualifiedNameProvider, ScopeProvider)
    slice_scope = SliceScope.TOP_LEVEL_CLASS

    @classmethod
    def could_fire(cls, tree: ast.Module) -> bool:
        """An `x.acquire()` statement (maybe awaited) with no arguments, whose result is dropped,
        other than one `_entered_and_exited` leaves alone."""
        acquires = [expr for expr in quickscan.of_type(tree, ast.Expr) if _is_acquire_statement(cast(ast.Expr, expr).value)]
        if not acquires:
            return False
        left_to_exit = {id(expr) for node in quickscan.of_type(tree, ast.ClassDef) for expr in _released_by_exit(cast(ast.ClassDef, node))}
        return any(id(expr) not in left_to_exit for expr in acquires)

    @m.visit(_ACQUIRE_LINE)
    def flag_manual_acquire(self, line: cst.SimpleStatementLine) -> None:
        acquire = _Acquire.of(line)
        if acquire is None:
            return
        known = self._kind(acquire)
        if known is None:
            return
        kind, safety = known
        block = self.get_metadata(ParentNodeProvider, line)
        if isinstance(block, cst.IndentedBlock) and self._fix_try_around(acquire, kind, safety, block):
            return
        if isinstance(block, (cst.IndentedBlock, cst.Module)) and self._fix_in_block(acquire, kind, safety, block):
            return
        if not self._released_in_finally(acquire, block) and not self._entered_and_exited(acquire):
            self.report(line, self._message(acquire, kind, fixable=False))

    # --- which kind of lock -------------------------------------------------------------------

    def _kind(self, acquire: _Acquire) -> tuple[Kind, FixSafety] | None:
        """The kind the receiver was created as; else async when awaited; else a thread lock,
        unsafely, when the receiver is named like one (`lock`, `self._lock`, `write_mutex`);
        None: not a candidate."""
        values = self._assigned_values(acquire.receiver)
        created = {kind for value in values for kind in Kind if _constructs(self, value, kind)}
        safety = FixSafety.SAFE
        if len(created) == 1:
            kind: Kind | None = created.pop()
        elif acquire.awaited:
            kind = Kind.ASYNCIO
        elif not values and _LOCK_LIKE.search(_last_name(acquire.receiver)):
            kind, safety = Kind.THREADING, FixSafety.UNSAFE
        else:
            kind = None
        if kind is None or acquire.awaited != (kind is Kind.ASYNCIO):
            return None
        if kind is Kind.ASYNCIO and not in_async_function(self, acquire.line):
            return None
        return kind, safety

    def _assigned_values(self, receiver: cst.BaseExpression) -> list[cst.BaseExpression]:
        """What this module assigns to the receiver (a name, or `self.<attr>` in the class)."""
        if isinstance(receiver, cst.Name):
            return self._values_of_name(receiver)
        if m.matches(receiver, m.Attribute(value=m.Name("self"))):
            return self._values_of_self_attribute(cst.ensure_type(receiver, cst.Attribute))
        return []

    def _values_of_name(self, name: cst.Name) -> list[cst.BaseExpression]:
        scope = self.get_metadata(ScopeProvider, name, None)
        if scope is None:
            return []
        values = []
        for assignment in scope[name.value]:
            if isinstance(assignment, Assignment):
                value = self._assigned_value(assignment.node)
                if value is not None:
                    values.append(value)
        return values

    def _assigned_value(self, target: cst.CSTNode) -> cst.BaseExpression | None:
        """The value of `target = value` / `target: T = value`, else None."""
        parent = self.get_metadata(ParentNodeProvider, target, None)
        if isinstance(parent, cst.AssignTarget):
            parent = self.get_metadata(ParentNodeProvider, parent, None)
        if isinstance(parent, cst.Assign) or (isinstance(parent, cst.AnnAssign) and parent.target is target):
            return parent.value
        return None

    def _values_of_self_attribute(self, attribute: cst.Attribute) -> list[cst.BaseExpression]:
        """The values assigned to `self.<attr>` (or to `<attr>` in the class body) in the method's class."""
        method = enclosing_function(self, attribute)
        cls = enclosing_function(self, method) if method is not None else None
        if not isinstance(cls, cst.ClassDef):
            return []
        finder = _AttributeAssignments(attribute.attr.value)
        cls.body.visit(finder)
        return finder.values

    # --- the fixes ----------------------------------------------------------------------------

    def _fix_try_around(self, acquire: _Acquire, kind: Kind, safety: FixSafety, block: cst.IndentedBlock) -> bool:
        """`try: acquire; ... finally: release` -> `with`, when the acquire opens a try/finally."""
        trying = self.get_metadata(ParentNodeProvider, block)
        if not (
            m.matches(trying, _TRY_FINALLY_ONLY)
            and trying.body is block
            and block.body[0] is acquire.line
            and acquire.is_finally_release(trying.finalbody)
        ):
            return False
        rest = block.body[1:]
        if acquire.touched_in(rest):
            return False
        body = block.with_changes(body=_with_comments_above(rest, acquire.line.leading_lines))
        fix = _with(acquire, kind, body, trying.leading_lines)
        self.report(trying, self._message(acquire, kind), fix=fix, safety=safety)
        return True

    def _fix_in_block(self, acquire: _Acquire, kind: Kind, safety: FixSafety, block: Block) -> bool:
        """`acquire; ...; release` or `acquire; try: ... finally: release` in one block -> `with`."""
        statements = list(block.body)
        start = statements.index(acquire.line)
        following = statements[start + 1 :]
        if following and m.matches(following[0], m.Try(finalbody=m.Finally())):
            trying = cst.ensure_type(following[0], cst.Try)
            guarded_parts = [trying.body, *trying.handlers, *([trying.orelse] if trying.orelse else [])]
            if acquire.is_finally_release(trying.finalbody) and not acquire.touched_in(guarded_parts):
                return self._replace_span(acquire, (kind, safety), block, start, start + 2, _try_without_finally(trying))
        end = next((i for i, statement in enumerate(following) if acquire.released_by(statement)), None)
        if end is None:
            return False
        guarded = _without_early_releases(acquire, following[:end])
        if guarded is None:
            return False
        release = cst.ensure_type(following[end], cst.SimpleStatementLine)
        footer = [*release.leading_lines, *_comment_line(release.trailing_whitespace)]
        body = cst.IndentedBlock(body=_with_comments_above(guarded, ()), footer=footer)
        return self._replace_span(acquire, (kind, safety), block, start, start + end + 2, body)

    def _replace_span(
        self, acquire: _Acquire, known: tuple[Kind, FixSafety], block: Block, start: int, end: int, body: cst.IndentedBlock
    ) -> bool:
        """Replace `block.body[start:end]` (the acquire to the release) with `with <receiver>:` + `body`."""
        kind, safety = known
        statements = list(block.body)
        guarded = _with(acquire, kind, body, acquire.line.leading_lines)
        self.report(
            block,
            self._message(acquire, kind),
            fix=block.with_changes(body=[*statements[:start], guarded, *statements[end:]]),
            safety=safety,
        )
        return True

    def _released_in_finally(self, acquire: _Acquire, block: cst.CSTNode) -> bool:
        """Correct code left alone: the release is in a `finally` of a try right after, or around."""
        if isinstance(block, (cst.IndentedBlock, cst.Module)):
            statements = list(block.body)
            following = statements[statements.index(acquire.line) + 1 :]
            if following and isinstance(following[0], cst.Try) and following[0].finalbody is not None:
                if acquire.touched_in([following[0].finalbody]):
                    return True
        for parent in ancestors(self, acquire.line):
            if isinstance(parent, cst.Try) and parent.finalbody is not None and acquire.touched_in([parent.finalbody]):
                return True
            if isinstance(parent, cst.FunctionDef):
                return False
        return False

    def _entered_and_exited(self, acquire: _Acquire) -> bool:
        """Acquired in `__enter__` and released in the same class's `__exit__` (or the async pair):
        the class already is the context manager that releases on every path."""
        method = enclosing_function(self, acquire.line)
        if not isinstance(method, cst.FunctionDef) or method.name.value not in _EXIT_OF:
            return False
        cls = enclosing_function(self, method)
        if not isinstance(cls, cst.ClassDef):
            return False
        exits = [
            statement
            for statement in cls.body.body
            if isinstance(statement, cst.FunctionDef) and statement.name.value == _EXIT_OF[method.name.value]
        ]
        return acquire.touched_in(exits)

    def _message(self, acquire: _Acquire, kind: Kind, *, fixable: bool = True) -> str:
        line = self.get_metadata(PositionProvider, acquire.line).start.line
        held = cst.Module([]).code_for_node(acquire.receiver)
        if fixable:
            problem = "is released by hand, not on every path"
            return f"`{held}.acquire()` (line {line}) {problem}: use `{kind.value} {held}:`"
        return f"`{held}.acquire()` (line {line}) {_HELD_PAST_THE_BLOCK}"

    VALID = (
        Valid(
            """
            import asyncio

            async def run_job(sem: asyncio.Semaphore, job):
                async with sem:
                    return await job()
            """
        ),
        Valid(
            """
            import threading

            lock = threading.Lock()

            def try_update(state):
                if lock.acquire(blocking=False):
                    try:
                        state.update()
                    finally:
                        lock.release()
            """
        ),
        Valid(
            """
            async def query(pool, sql):
                conn = await pool.acquire()
                try:
                    return await conn.fetch(sql)
                finally:
                    await pool.release(conn)
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            import asyncio

            sem = asyncio.Semaphore(2)

            async def run_job(job):
                await sem.acquire()
                result = await job()  # may raise
                sem.release()
                return result
            """,
            """
            import asyncio

            sem = asyncio.Semaphore(2)

            async def run_job(job):
                async with sem:
                    result = await job()  # may raise
                return result
            """,
        ),
        Invalid(
            """
            import threading

            class Counter:
                def __init__(self):
                    self._lock = threading.Lock()
                    self.value = 0

                def add(self, n):
                    self._lock.acquire()
                    try:
                        self.value += n
                    finally:
                        self._lock.release()
            """,
            """
            import threading

            class Counter:
                def __init__(self):
                    self._lock = threading.Lock()
                    self.value = 0

                def add(self, n):
                    with self._lock:
                        self.value += n
            """,
        ),
        Invalid(
            """
            async def fetch(limit, url):
                try:
                    await limit.acquire()
                    return await get(url)
                finally:
                    limit.release()
            """,
            """
            async def fetch(limit, url):
                async with limit:
                    return await get(url)
            """,
        ),
        Invalid(
            """
            import asyncio

            class BrowserManager:
                def __init__(self):
                    self._semaphore = asyncio.Semaphore(5)

                async def get_browser(self):
                    await self._semaphore.acquire()
                    try:
                        browser = await launch()
                        return await browser.new_context()
                    except Exception:
                        self._semaphore.release()  # only releases on error
                        raise
            """
        ),
    )


_EXIT_OF = {"__enter__": "__exit__", "__aenter__": "__aexit__"}
_HELD_PAST_THE_BLOCK = (
    "is not released in the same block on the normal path (only on error, in another function, or held past "
    "the call): give the resource a context-manager API and use `async with`/`with`"
)


def _released_by_exit(cls: ast.ClassDef) -> Iterator[ast.Expr]:
    """The `self.<attr>.acquire()` statements of the class's `__enter__` (`__aenter__`) that its
    `__exit__` (`__aexit__`) touches, where `__enter__` releases nothing: the visitor neither fixes
    nor reports them. Receivers are compared as written without spaces or parentheses (as LibCST's
    `deep_equals` compares them)."""
    methods = {method.name: method for method in cls.body if isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for enter, exit_name in _EXIT_OF.items():
        method, exit_method = methods.get(enter), methods.get(exit_name)
        if method is None or exit_method is None:
            continue
        own = list(quickscan.own_nodes(method))
        if any(isinstance(node, ast.Call) and quickscan.called_name(node) == "release" for node in own):
            continue
        touched = {_plain_receiver(node) for node in ast.walk(exit_method) if isinstance(node, ast.Call)} - {None}
        yield from (
            node
            for node in own
            if isinstance(node, ast.Expr) and _is_acquire_statement(node.value) and _plain_receiver(_unawaited_call(node.value)) in touched
        )


def _plain_receiver(call: ast.Call) -> str | None:
    """`_lock` for `self._lock.acquire()` or `self._lock.release()` written with no space or
    parenthesis inside; None for anything else."""
    func = call.func
    if not isinstance(func, ast.Attribute) or func.attr not in ("acquire", "release"):
        return None
    receiver = func.value
    if not (isinstance(receiver, ast.Attribute) and isinstance(receiver.value, ast.Name) and receiver.value.id == "self"):
        return None
    compact = f"self.{receiver.attr}.{func.attr}"
    one_line = func.lineno == func.end_lineno and receiver.value.col_offset == func.col_offset
    return receiver.attr if one_line and (func.end_col_offset or 0) - func.col_offset == len(compact) else None


def _unawaited_call(value: ast.expr) -> ast.Call:
    return cast(ast.Call, value.value if isinstance(value, ast.Await) else value)


def _is_acquire_statement(value: ast.expr) -> bool:
    call = value.value if isinstance(value, ast.Await) else value
    return (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "acquire"
        and not call.args
        and not call.keywords
    )


def _constructs(rule: Rule, value: cst.BaseExpression, kind: Kind) -> bool:
    return isinstance(value, cst.Call) and calls(rule, value, *_CONSTRUCTORS[kind])


class _AttributeAssignments(cst.CSTVisitor):
    """Values assigned to `self.<attr>` in a class's methods or to `<attr>` in its body."""

    def __init__(self, attr: str) -> None:
        super().__init__()
        self._targets = m.Attribute(value=m.Name("self"), attr=m.Name(attr)) | m.Name(attr)
        self.values: list[cst.BaseExpression] = []

    def visit_Assign(self, node: cst.Assign) -> None:
        if any(m.matches(target.target, self._targets) for target in node.targets):
            self.values.append(node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None and m.matches(node.target, self._targets):
            self.values.append(node.value)


def _last_name(receiver: cst.BaseExpression) -> str:
    return receiver.attr.value if isinstance(receiver, cst.Attribute) else cst.ensure_type(receiver, cst.Name).value


def _without_early_releases(acquire: _Acquire, statements: Sequence[cst.BaseStatement]) -> list[cst.BaseStatement] | None:
    """`statements` without the releases that stand right before a `return` of a value that calls
    nothing (the `with` releases there too, after the same work); None when they touch the lock
    in any other way."""
    dropper = _EarlyReleaseDropper(acquire)
    kept = [statement.visit(dropper) for statement in statements]
    if acquire.touched_in(kept):
        return None
    return [cst.ensure_type(statement, cst.BaseStatement) for statement in kept]


class _EarlyReleaseDropper(cst.CSTTransformer):
    """Drops `<receiver>.release()` lines followed in their block by `return` / `return <no call>`;
    the comments above a dropped line move to the `return`. Nested functions are left as they are,
    and so are releases inside a `with` or a `try` with a `finally` (whose exit code would now
    run with the lock held)."""

    def __init__(self, acquire: _Acquire) -> None:
        super().__init__()
        self._acquire = acquire
        self._exits_pending = 0

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def visit_With(self, node: cst.With) -> None:
        self._exits_pending += 1

    def leave_With(self, original_node: cst.With, updated_node: cst.With) -> cst.With:
        self._exits_pending -= 1
        return updated_node

    def visit_Try(self, node: cst.Try) -> None:
        self._exits_pending += node.finalbody is not None

    def leave_Try(self, original_node: cst.Try, updated_node: cst.Try) -> cst.Try:
        self._exits_pending -= original_node.finalbody is not None
        return updated_node

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock) -> cst.IndentedBlock:
        body: list[cst.BaseStatement] = []
        moved: Sequence[cst.EmptyLine] = ()
        statements = list(updated_node.body)
        for index, statement in enumerate(statements):
            following = statements[index + 1] if index + 1 < len(statements) else None
            if self._early_release(statement, following):
                moved = cst.ensure_type(statement, cst.SimpleStatementLine).leading_lines
                continue
            body.append(statement.with_changes(leading_lines=[*moved, *statement.leading_lines]) if moved else statement)
            moved = ()
        return updated_node.with_changes(body=body)

    def _early_release(self, statement: cst.BaseStatement, following: cst.BaseStatement | None) -> bool:
        if self._exits_pending or not self._acquire.released_by(statement) or not m.matches(following, _PLAIN_RETURN_LINE):
            return False
        returned = cst.ensure_type(cst.ensure_type(following, cst.SimpleStatementLine).body[0], cst.Return).value
        line = cst.ensure_type(statement, cst.SimpleStatementLine)
        calls_nothing = returned is None or not m.findall(returned, m.Call() | m.Await() | m.Yield())
        return calls_nothing and line.trailing_whitespace.comment is None


def _comments(lines: Sequence[cst.EmptyLine]) -> list[cst.EmptyLine]:
    return [line for line in lines if line.comment is not None]


def _with_comments_above(
    statements: Sequence[cst.BaseStatement], lines: Sequence[cst.EmptyLine]
) -> list[cst.BaseStatement]:
    """`statements` as the body of a new block (`pass` if none), the comments of `lines` above the first:
    comments from a line that goes (the acquire, the `try:`) stay with the code they were about."""
    if not statements:
        return [cst.SimpleStatementLine([cst.Pass()], leading_lines=_comments(lines))]
    first, *rest = statements
    return [first.with_changes(leading_lines=[*_comments(lines), *first.leading_lines]), *rest]


def _comment_line(trailing: cst.TrailingWhitespace) -> list[cst.EmptyLine]:
    """A trailing `# comment` of a removed line, kept as a line of its own."""
    return [cst.EmptyLine(comment=trailing.comment)] if trailing.comment is not None else []


def _try_without_finally(trying: cst.Try) -> cst.IndentedBlock:
    """The body of a `try` whose `finally` only released: the try's own body, or the try minus its finally."""
    if not trying.handlers and trying.orelse is None:
        body = cst.ensure_type(trying.body, cst.IndentedBlock)
        return body.with_changes(body=_with_comments_above(body.body, trying.leading_lines))
    return cst.IndentedBlock(body=[trying.with_changes(finalbody=None, leading_lines=_comments(trying.leading_lines))])


def _with(acquire: _Acquire, kind: Kind, body: cst.IndentedBlock, leading_lines: Sequence[cst.EmptyLine]) -> cst.With:
    """`with <receiver>:` (or `async with`) over `body`; the acquire line's `# comment` goes on the
    `with` line, or above the first statement when the body's header has a comment already."""
    trailing = acquire.line.trailing_whitespace
    if trailing.comment is not None and body.header.comment is None:
        body = body.with_changes(header=trailing)
    elif trailing.comment is not None:
        body = body.with_changes(body=_with_comments_above(body.body, _comment_line(trailing)))
    return cst.With(
        items=[cst.WithItem(acquire.receiver)],
        body=body,
        asynchronous=cst.Asynchronous() if kind is Kind.ASYNCIO else None,
        leading_lines=leading_lines,
    )
