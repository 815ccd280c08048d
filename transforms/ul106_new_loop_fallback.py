"""UL106 new-loop-fallback

## What it does
Finds `except RuntimeError:` handlers (alone or in a tuple, with or without `as e`) that create a new
event loop with `asyncio.new_event_loop()` as a fallback, typically around
`asyncio.get_event_loop()`, `asyncio.get_running_loop()` or `asyncio.run()`. In sync code, the
get-or-create idiom whose loop only runs one coroutine to completion becomes `asyncio.run(coro)`;
an `if loop.is_running():` branch is kept, asking `asyncio.get_running_loop()` instead.

## Why is this bad?
The `RuntimeError` says one of two things: there is no event loop in this thread, or one is already
running. Creating a loop in the handler answers both wrongly. With no loop, `asyncio.run()` is the
way to run a coroutine from sync code, and it closes the loop afterwards; the hand-made loop is
usually installed with `set_event_loop()` and never closed (one leaked loop, selector and file
descriptors per worker thread, as in Celery base tasks and sync wrappers). With a running loop,
the new loop cannot run in this thread at all: `run_until_complete()` on it raises again, or
blocks the running loop and every request it serves. The handler also swallows every other
`RuntimeError` (seed 000 #4).

## Example
```python
def run_sync(coro):
    try:
        loop = asyncio.get_event_loop()
    except RuntimeError:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
    if loop.is_running():
        return asyncio.run_coroutine_threadsafe(coro, loop)
    return loop.run_until_complete(coro)
```

## Use instead
```python
def run_sync(coro):
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None:
        return asyncio.run_coroutine_threadsafe(coro, loop)
    return asyncio.run(coro)
```
(From code that may run while a loop is running, run the coroutine in a worker thread with its
own loop: `pool.submit(asyncio.run, coro).result()`, or `await asyncio.to_thread(asyncio.run, coro)`.)

## Fix safety
Unsafe (runs with `--unsafe`), and only for the idiom in its plain shape, in sync code: a `try:`
holding just `loop = asyncio.get_event_loop()` (or `get_running_loop()`), one handler holding
just `loop = asyncio.new_event_loop()` and perhaps `asyncio.set_event_loop(loop)`, and a loop
used, outside the branches where it runs (`if loop.is_running():` or the `else:` of `if not
loop.is_running():`), for exactly one `run_until_complete(coro)`. Inside those branches the name
means the running loop before and after the fix, so anything goes there. What changes: a loop the
thread had installed but not running is no longer reused (nor left installed and open for the
next call), and the coroutine runs on a fresh loop that is closed afterwards. Everything else is
reported without a fix: a loop also used for anything else (`call_soon_threadsafe`, returned,
passed on, used by a nested function), two runs, a future (`asyncio.gather`), a handler or `try`
doing more, async code. Handlers that catch `RuntimeError` without creating a loop, and
`new_event_loop()` calls outside such a handler (or in a function defined inside it), are not
reported.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

import libcst as cst
import libcst.matchers as m
from libcst.metadata import ParentNodeProvider, PositionProvider, QualifiedNameProvider, ScopeProvider

from unleak.knowledge import analysis, quickscan
from unleak.knowledge.loops import (
    GET_EVENT_LOOP,
    GET_RUNNING_LOOP,
    NEW_EVENT_LOOP,
    ONE_AWAITABLE,
    SET_EVENT_LOOP,
    NodeEditor,
    Rewrite,
    asyncio_attribute,
    asyncio_run_beside,
    creating_call,
    lone_statement,
    loop_creation,
    makes_a_future,
    running_with,
    runs_per_item,
    same_frame,
)
from unleak.rule import FixSafety, ImportSpec, Invalid, Rule, Valid

_CALL_BY_NAME = m.Call(func=m.Name() | m.Attribute())
_ADVICE = (
    "from sync code run the coroutine with `asyncio.run()`; when a loop may already be running, run it in a "
    "worker thread (`await asyncio.to_thread(asyncio.run, coro)` or a thread with its own loop); otherwise re-raise"
)
_IS_RUNNING = m.Call(func=m.Attribute(value=m.Name(), attr=m.Name("is_running")), args=[])
_NOT = m.UnaryOperation(operator=m.Not())


class NewLoopFallback(Rule):
    code = "UL106"
    name = "new-loop-fallback"
    safety = FixSafety.UNSAFE
    summary = "`except RuntimeError:` creates a new event loop as a fallback"
    trigger = (rb"\bRuntimeError\b", rb"\bnew_event_loop\b")
    METADATA_DEPENDENCIES = (QualifiedNameProvider, ScopeProvider)

    @classmethod
    def could_fire(cls, tree: ast.Module) -> bool:
        """An `except` handler that calls `new_event_loop` (or what it is imported as)."""
        callees = quickscan.Callees(tree, "asyncio", {"new_event_loop"})
        return any(quickscan.calls_in(handler, callees) for handler in quickscan.of_type(tree, ast.ExceptHandler))

    @m.visit(m.ExceptHandler() | m.ExceptStarHandler())
    def flag_fallback_loop(self, node: cst.ExceptHandler | cst.ExceptStarHandler) -> None:
        if not (self._catches_runtime_error(node) and self._creates_event_loop(node)):
            return
        fallback = _Fallback.of(self, node) if isinstance(node, cst.ExceptHandler) else None
        fix = fallback.fix() if fallback is not None else None
        if fallback is None or fix is None:
            self.report(node, f"{self.summary}: {_ADVICE}")
            return
        block, imports = fix
        line = self.get_metadata(PositionProvider, node).start.line
        self.report(
            fallback.block,
            f"{self.summary} (line {line}): {_ADVICE}",
            fix=block,
            imports=imports,
            stale_imports=fallback.stale_imports(),
        )

    def _catches_runtime_error(self, handler: cst.ExceptHandler | cst.ExceptStarHandler) -> bool:
        caught = handler.type
        kinds = [element.value for element in caught.elements] if isinstance(caught, cst.Tuple) else [caught]
        return any("builtins.RuntimeError" in analysis.qualified_names(self, kind) for kind in kinds if kind)

    def _creates_event_loop(self, handler: cst.ExceptHandler | cst.ExceptStarHandler) -> bool:
        """A `new_event_loop()` call the handler's body runs itself (not in a function it defines)."""
        handler_function = analysis.enclosing_function(self, handler)
        return any(
            analysis.calls(self, call, "asyncio.new_event_loop")
            and analysis.enclosing_function(self, call) is handler_function
            for call in m.findall(handler.body, _CALL_BY_NAME)
        )

    VALID = (
        Valid(
            """
            import asyncio

            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                content = asyncio.run(fetch())
            else:
                content = None
            """
        ),
        Valid(
            """
            import asyncio

            def run_in_thread(coro):
                loop = asyncio.new_event_loop()
                try:
                    return loop.run_until_complete(coro)
                finally:
                    loop.close()
            """
        ),
        Valid(
            """
            import asyncio

            try:
                loop = asyncio.get_event_loop()
            except ValueError:
                loop = asyncio.new_event_loop()
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            import asyncio

            def run_sync(coro):
                try:
                    loop = asyncio.get_event_loop()
                except RuntimeError:
                    loop = asyncio.new_event_loop()
                    asyncio.set_event_loop(loop)
                if loop.is_running():
                    return asyncio.run_coroutine_threadsafe(coro, loop)
                return loop.run_until_complete(coro)
            """,
            """
            import asyncio

            def run_sync(coro):
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:
                    loop = None
                if loop is not None:
                    return asyncio.run_coroutine_threadsafe(coro, loop)
                return asyncio.run(coro)
            """,
            unsafe=True,
        ),
        Invalid(
            """
            import asyncio

            class BaseTask(Task):
                def run_async(self, coro):
                    try:
                        loop = asyncio.get_event_loop()
                    except RuntimeError:
                        loop = asyncio.new_event_loop()
                        asyncio.set_event_loop(loop)
                    return loop.run_until_complete(coro)
            """,
            """
            import asyncio

            class BaseTask(Task):
                def run_async(self, coro):
                    return asyncio.run(coro)
            """,
            unsafe=True,
        ),
        Invalid(
            """
            import asyncio

            def notify(coro, callback):
                try:
                    loop = asyncio.get_event_loop()
                except RuntimeError:
                    loop = asyncio.new_event_loop()
                loop.call_soon_threadsafe(callback)
                return loop.run_until_complete(coro)
            """
        ),
        Invalid(
            """
            import asyncio

            try:
                loop = asyncio.get_event_loop()
            except RuntimeError:
                loop = asyncio.new_event_loop()
                asyncio.set_event_loop(loop)
            content = loop.run_until_complete(fetch())
            """
        ),
        Invalid(
            """
            from asyncio import new_event_loop

            def save(note):
                try:
                    return asyncio.run(store(note))
                except (RuntimeError, OSError) as error:
                    logger.warning("falling back: %s", error)
                    return new_event_loop().run_until_complete(store(note))
            """
        ),
    )


@dataclass
class _Fallback:
    """The get-or-create idiom in sync code, in the one shape the fix knows:

        try:
            loop = asyncio.get_event_loop()        # or get_running_loop()
        except RuntimeError:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)           # optional
        [if loop.is_running(): ...]                # optional; `if not ...: ... else: ...` too
        ... loop.run_until_complete(coro) ...      # once, where the loop is not running

    The loop may be used for anything inside the branches where it runs (it is the running loop,
    before and after the fix); anywhere else only for that one run."""

    rule: Rule
    try_: cst.Try
    block: cst.IndentedBlock | cst.Module
    name: str
    getter: cst.Call  # `asyncio.get_event_loop()` in the `try:`
    handler: cst.ExceptHandler
    run: cst.Call | None = None
    tests: list[cst.BaseExpression] = field(default_factory=list)  # `loop.is_running()`, `not loop.is_running()`

    @classmethod
    def of(cls, rule: Rule, handler: cst.ExceptHandler) -> _Fallback | None:
        try_ = rule.get_metadata(ParentNodeProvider, handler)
        if not isinstance(try_, cst.Try) or len(try_.handlers) != 1 or try_.orelse or try_.finalbody:
            return None
        block = rule.get_metadata(ParentNodeProvider, try_)
        if not isinstance(block, (cst.IndentedBlock, cst.Module)) or analysis.in_async_function(rule, try_):
            return None  # in async code a loop is running: `get_event_loop()` never fails there
        if isinstance(analysis.enclosing_function(rule, try_), cst.ClassDef):
            return None
        if not isinstance(try_.body, cst.IndentedBlock) or not isinstance(handler.body, cst.IndentedBlock):
            return None  # `try: loop = ...` on one line: rare, and left to a human
        (first, *rest) = try_.body.body
        target = loop_creation(rule, first, (GET_EVENT_LOOP, GET_RUNNING_LOOP))
        if rest or target is None or not _creates_and_installs(rule, handler, target.value):
            return None
        getter = creating_call(cst.ensure_type(first, cst.SimpleStatementLine))
        fallback = cls(rule, try_, block, target.value, getter, handler)
        return fallback if fallback._classify_uses(target) else None

    def _classify_uses(self, target: cst.Name) -> bool:
        """Sorts every use of the loop; False where one is outside what the fix knows."""
        scope = self.rule.get_metadata(ScopeProvider, target)
        assignments = list(scope[self.name])
        if len(assignments) != 2 or any(a.scope is not scope for a in assignments):
            return False  # the `try:` one and the handler's; anything more is another loop
        accesses = dict.fromkeys(access for assignment in assignments for access in assignment.references)
        for access in accesses:
            if not same_frame(access.scope, scope) or not self._known_use(cst.ensure_type(access.node, cst.Name)):
                return False
        return self.run is not None

    def _known_use(self, reference: cst.Name) -> bool:
        if analysis.within(self.rule, reference, self.handler):
            return True  # `set_event_loop(loop)`, checked with the handler
        if self._in_running_branch(reference):
            return True
        call = self._called_on(reference)
        if call is None or not analysis.within(self.rule, call, self.block):
            return False
        if m.matches(call, _IS_RUNNING):
            return self._as_branch_test(call)
        method = cst.ensure_type(call.func, cst.Attribute).attr.value
        if method != "run_until_complete" or self.run is not None or not m.matches(call, ONE_AWAITABLE):
            return False
        self.run = call
        frame = analysis.enclosing_function(self.rule, call) or analysis.ancestors(self.rule, call)[-1]
        per_item = runs_per_item(self.rule, call, frame)  # one `asyncio.run` each would make a loop each
        return not per_item and not makes_a_future(self.rule, call.args[0].value)

    def _called_on(self, reference: cst.Name) -> cst.Call | None:
        """`loop.method(...)` for this use of `loop` as the receiver, else None."""
        attribute = self.rule.get_metadata(ParentNodeProvider, reference)
        call = self.rule.get_metadata(ParentNodeProvider, attribute, None)
        if isinstance(attribute, cst.Attribute) and isinstance(call, cst.Call) and call.func is attribute:
            return call
        return None

    def _as_branch_test(self, call: cst.Call) -> bool:
        """Records `loop.is_running()` (or `not loop.is_running()`) that is the whole test of an `if`."""
        test: cst.BaseExpression = call
        parent = self.rule.get_metadata(ParentNodeProvider, call)
        if m.matches(parent, _NOT):
            test = cst.ensure_type(parent, cst.UnaryOperation)
            parent = self.rule.get_metadata(ParentNodeProvider, parent)
        if not isinstance(parent, cst.If) or parent.test is not test:
            return False
        self.tests.append(test)
        return True

    def _in_running_branch(self, node: cst.CSTNode) -> bool:
        """Whether `node` runs only where `loop.is_running()` is true (an `if` body, or the `else:`
        of `if not loop.is_running():`)."""
        chain = [node, *analysis.ancestors(self.rule, node)]
        for inner, outer in zip(chain, chain[1:]):
            if not isinstance(outer, cst.If) or inner not in (outer.body, outer.orelse):
                continue
            if m.matches(outer.test, _IS_RUNNING) and inner is outer.body:
                return self._tests_this_loop(outer.test)
            if m.matches(outer.test, _NOT) and inner is outer.orelse and isinstance(outer.orelse, cst.Else):
                operand = cst.ensure_type(outer.test, cst.UnaryOperation).expression
                return m.matches(operand, _IS_RUNNING) and self._tests_this_loop(operand)
        return False

    def _tests_this_loop(self, test: cst.BaseExpression) -> bool:
        receiver = cst.ensure_type(cst.ensure_type(test, cst.Call).func, cst.Attribute).value
        return isinstance(receiver, cst.Name) and receiver.value == self.name

    # --- the fix --------------------------------------------------------------------------------

    def fix(self) -> tuple[cst.CSTNode, tuple[ImportSpec, ...]] | None:
        """The block with `asyncio.run(coro)` for the run and, where a branch asks whether the loop
        runs, `get_running_loop()` (None when none runs) for the get-or-create; else without it."""
        found = asyncio_run_beside(self.rule, self.getter.func, self.try_)
        if found is None:
            return None
        reference, imports = found
        rewrites: dict[cst.CSTNode, Rewrite] = {cst.ensure_type(self.run, cst.Call): running_with(reference)}
        if not self.tests:
            return self.block.visit(NodeEditor(rewrites, [self.try_])), imports
        running_loop = self._running_loop_getter()
        if running_loop is None:
            return None
        getter, getter_imports = running_loop
        rewrites[self.getter] = lambda updated: cst.ensure_type(updated, cst.Call).with_changes(func=getter)
        rewrites[self.handler.body] = lambda updated: _assigning_none(self.name, updated)
        for test in self.tests:
            rewrites[test] = _none_check(self.name, isinstance(test, cst.UnaryOperation))
        return self.block.visit(NodeEditor(rewrites)), (*imports, *getter_imports)

    def _running_loop_getter(self) -> tuple[cst.BaseExpression, tuple[ImportSpec, ...]] | None:
        func = self.getter.func
        if isinstance(func, cst.Attribute):
            return func.with_changes(attr=cst.Name("get_running_loop")), ()
        return asyncio_attribute(self.rule, self.try_, "get_running_loop")

    def stale_imports(self) -> tuple[ImportSpec, ...]:
        """`from asyncio import get_event_loop, new_event_loop, set_event_loop`, which the fix may leave unused."""
        callees = [call.func for call in m.findall(self.try_, _CALL_BY_NAME) if isinstance(call, cst.Call)]
        specs = (analysis.import_binding(self.rule, callee) for callee in callees if isinstance(callee, cst.Name))
        return tuple(dict.fromkeys(spec for spec in specs if spec is not None))


def _creates_and_installs(rule: Rule, handler: cst.ExceptHandler, name: str) -> bool:
    """Whether the handler's body is `name = asyncio.new_event_loop()`, then perhaps
    `asyncio.set_event_loop(name)`, and nothing else."""
    creation, *rest = cst.ensure_type(handler.body, cst.IndentedBlock).body
    target = loop_creation(rule, creation, (NEW_EVENT_LOOP,))
    if target is None or target.value != name or len(rest) > 1:
        return False
    for statement in rest:
        call = m.findall(statement, m.Call(args=[m.Arg(m.Name(name), keyword=None)]))
        install = cst.ensure_type(call[0], cst.Call) if len(call) == 1 else None
        if install is None or not analysis.calls(rule, install, SET_EVENT_LOOP):
            return False
        if lone_statement(rule, install) is not statement:
            return False
    return True


def _assigning_none(name: str, updated: cst.CSTNode) -> cst.IndentedBlock:
    """The handler's body as `name = None`: no loop runs in this thread."""
    body = cst.ensure_type(updated, cst.IndentedBlock)
    assign = cst.Assign(targets=[cst.AssignTarget(cst.Name(name))], value=cst.Name("None"))
    first = body.body[0]
    return body.with_changes(body=[cst.SimpleStatementLine(body=[assign], leading_lines=first.leading_lines)])


def _none_check(name: str, negated: bool) -> Rewrite:
    """`loop.is_running()` -> `loop is not None`; `not loop.is_running()` -> `loop is None`."""
    operator = cst.Is() if negated else cst.IsNot()

    def rewrite(updated: cst.CSTNode) -> cst.CSTNode:
        check = cst.Comparison(cst.Name(name), [cst.ComparisonTarget(operator, cst.Name("None"))])
        expression = cst.ensure_type(updated, cst.BaseExpression)
        return check.with_changes(lpar=expression.lpar, rpar=expression.rpar)

    return rewrite
