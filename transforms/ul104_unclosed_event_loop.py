'''UL104 unclosed-event-loop

## What it does
Finds `loop = asyncio.new_event_loop()` in synchronous code (a `def` or module level) whose
`loop.close()` is not guaranteed -- missing, or not in a `finally` -- or that leaves the closed
loop installed as the thread's current loop (`set_event_loop(loop)` without
`set_event_loop(None)` in a `finally`). When the loop only runs one coroutine, the whole dance
becomes `asyncio.run(coro)` (keeping what the result was assigned to); otherwise the statements
that use the loop go into `try:`, with `asyncio.set_event_loop(None)` (if it was installed) and
`loop.close()` in `finally:`.

## Why is this bad?
When the coroutine raises, the `loop.close()` after it never runs: the loop, its selector and
its file descriptors stay open, one more per failed call, until the thread pool or the process
runs out (seed 000 #2). A loop left installed with `set_event_loop` after it is closed is
handed to the next code on that thread that asks for the current loop, which then fails with
"Event loop is closed" (seed 001 #1). `asyncio.run` does all of it right: new loop, run, cancel
leftovers, shut down async generators and the executor, close, uninstall.

## Example
```python
def run_in_thread():
    new_loop = asyncio.new_event_loop()
    asyncio.set_event_loop(new_loop)
    result[0] = new_loop.run_until_complete(coro)
    new_loop.close()
```

## Use instead
```python
def run_in_thread():
    result[0] = asyncio.run(coro)
```

## Fix safety
Safe. The collapse to `asyncio.run` is made only when the loop runs exactly one awaitable with
`run_until_complete`, as a statement of its own in the block that creates the loop, and is
otherwise only installed and closed; when it was installed, nothing else may run between its
creation and that call (it could use the installed loop). Arguments that are futures rather
than coroutines (`asyncio.gather(...)`, `ensure_future`, `shield`, ...) get the `try/finally`
form, since `asyncio.run` only takes coroutines. Left alone: code that already closes the loop
(and uninstalls it, if installed) in a `finally`; loops that escape (returned, stored, passed to
another function, used by a nested function); a name assigned more than once; async code (a
loop is running there: that is UL103). A loop that is installed and never closed may be meant to
stay the thread's loop, and one used outside the block that creates it needs a human: both are
reported without a fix. So is a loop that makes a task, future or handle (`create_task`,
`call_later`, `run_in_executor`, ...) which something keeps beyond the code -- a global, an
attribute, a container, a return value, a nested function: closing the loop would leave it
dead. A task the loop itself runs, or that the code only asks about (`task.result()`), is not
kept. A loop created and installed per iteration of a `for` or `while` and never closed leaks
one loop a round: that one is fixed, classed unsafe, since the last round's loop no longer
stays installed after the loop ends (UL102 then runs the rounds' `asyncio.run` calls in one loop).
'''

from __future__ import annotations

from dataclasses import dataclass

import ast

import libcst as cst
import libcst.matchers as m
from libcst.metadata import ParentNodeProvider, PositionProvider, QualifiedNameProvider, ScopeProvider

from unleak.knowledge.analysis import ancestors, enclosing_function
from unleak.knowledge.loops import (
    NEW_EVENT_LOOP,
    ONE_AWAITABLE,
    LoopUses,
    NodeEditor,
    asyncio_run_beside,
    creating_call,
    drop_statements,
    kept_results,
    loop_creation,
    loop_uses,
    makes_a_future,
    running_with,
    runs_per_item,
    uninstalls,
)
from unleak.knowledge import quickscan
from unleak.rule import FixSafety, ImportSpec, Invalid, Rule, Valid

Block = cst.IndentedBlock | cst.Module

_HOLDS_A_VALUE = m.Expr() | m.Assign() | m.AnnAssign() | m.AugAssign() | m.Return()
_MAYBE_MEANT_TO_STAY = (
    "is installed and never closed: if it is meant to stay the thread's loop, ignore this; else close it in `finally`"
)
_USED_OUTSIDE = "is used outside the block that creates it: close it in a `finally` by hand"


class UnclosedEventLoop(Rule):
    code = "UL104"
    name = "unclosed-event-loop"
    safety = FixSafety.SAFE
    summary = "Event loop not closed on every path: use `asyncio.run()`, or close (and uninstall) it in `finally`"
    trigger = (rb"new_event_loop",)
    METADATA_DEPENDENCIES = (QualifiedNameProvider, ScopeProvider)

    @classmethod
    def could_fire(cls, tree: ast.Module) -> bool:
        """A call of `asyncio.new_event_loop` (or what it is imported as)."""
        return any(map(quickscan.Callees(tree, "asyncio", {"new_event_loop"}), quickscan.of_type(tree, ast.Call)))

    @m.visit(m.SimpleStatementLine())
    def flag_new_event_loop(self, line: cst.SimpleStatementLine) -> None:
        if loop_creation(self, line, (NEW_EVENT_LOOP,)) is None:
            return
        frame = self._synchronous_frame(line)
        uses = loop_uses(self, line)
        if frame is None or uses is None or uses.escapes or not uses.references():
            return
        teardowns = uninstalls(self, frame)
        closes_in_finally = [close for close in uses.closes if _in_finally(self, close, frame)]
        if closes_in_finally:
            if uses.installs and not any(_in_finally(self, teardown, frame) for teardown in teardowns):
                self._uninstall_before(closes_in_finally[0], uses)
        elif uses.installs and not uses.closes and not runs_per_item(self, line, frame):
            self.report(line, self._message(uses, _MAYBE_MEANT_TO_STAY))
        elif kept := kept_results(self, uses):
            self.report(line, self._message(uses, self._keeps(kept[0])))
        else:
            self._close_on_every_path(uses, teardowns)

    def _synchronous_frame(self, line: cst.SimpleStatementLine) -> cst.BaseSuite | cst.Module | None:
        """The body the loop lives in: a sync function's or the module's; None in async code or a class."""
        function = enclosing_function(self, line)
        if function is None:
            return cst.ensure_type(ancestors(self, line)[-1], cst.Module)
        if isinstance(function, cst.FunctionDef) and function.asynchronous is None:
            return function.body
        return None

    def _message(self, uses: LoopUses, problem: str) -> str:
        line = self.get_metadata(PositionProvider, uses.creation).start.line
        return f"Event loop `{uses.name}` (line {line}) {problem}"

    def _keeps(self, kept: cst.Call) -> str:
        func = kept.func
        made = func.attr.value if isinstance(func, cst.Attribute) else cst.ensure_type(func, cst.Name).value
        line = self.get_metadata(PositionProvider, kept).start.line
        return (
            f"is not closed on every path, but what `{made}()` makes on it (line {line}) is kept beyond this code, "
            "and closing the loop would leave it dead: close the loop by hand once that is done"
        )

    def _uninstall_before(self, close: cst.SimpleStatementLine, uses: LoopUses) -> None:
        """Closed in `finally` already, but left installed: `set_event_loop(None)` goes before the close."""
        uninstall = _call_statement(_install_function(uses), cst.Name("None"))
        self.report(
            close,
            self._message(uses, "stays installed as the thread's loop after it is closed: uninstall it in `finally`"),
            fix=cst.FlattenSentinel(
                [uninstall.with_changes(leading_lines=close.leading_lines), close.with_changes(leading_lines=())]
            ),
        )

    def _close_on_every_path(self, uses: LoopUses, teardowns: list[cst.SimpleStatementLine]) -> None:
        span = _Span.of(self, uses, teardowns)
        if span is None:
            self.report(uses.creation, self._message(uses, _USED_OUTSIDE))
            return
        if not span.kept():
            return  # nothing runs between creation and close
        problem = "is never closed"
        if uses.closes:
            problem = f"is not closed when the code before `{uses.name}.close()` raises"
        # Installed per iteration and never closed: the last one stayed installed, and no longer does.
        safety = FixSafety.UNSAFE if uses.installs and not uses.closes else self.safety
        if safety is FixSafety.UNSAFE:
            problem = "is created and installed per iteration and never closed: one loop leaks per iteration"
        collapsed = self._collapsed(uses, span)
        if collapsed is not None:
            fixed, imports = collapsed
            message = self._message(uses, f"{problem}: use `asyncio.run()`")
            self.report(span.block, message, fix=fixed, imports=imports, safety=safety)
        else:
            guarded = _guarded(uses, *drop_statements(span.statements(), span.teardown))
            statements = span.block.body
            fixed = span.block.with_changes(body=[*statements[: span.start], guarded, *statements[span.end :]])
            self.report(span.block, self._message(uses, f"{problem}: close it in `finally`"), fix=fixed, safety=safety)

    def _collapsed(self, uses: LoopUses, span: _Span) -> tuple[Block, tuple[ImportSpec, ...]] | None:
        """`x = asyncio.run(coro)` for a loop that only runs `coro` (plus set/close), or None."""
        dropped = [statement for statement in span.statements() if statement in span.teardown]
        if len(uses.runs) != 1 or uses.methods or any(close not in dropped for close in uses.closes):
            return None
        (run,) = uses.runs
        holder = self._holding_statement(run)
        kept = span.kept()
        if holder not in kept or not m.matches(run, ONE_AWAITABLE) or makes_a_future(self, run.args[0].value):
            return None
        if uses.installs and [statement for statement in kept if statement not in uses.installs] != [holder]:
            return None  # a statement between creation and run could be using the installed loop
        found = asyncio_run_beside(self, creating_call(uses.creation).func, uses.creation)
        if found is None:
            return None
        reference, imports = found
        editor = NodeEditor({run: running_with(reference)}, [uses.creation, *uses.installs, *dropped])
        return cst.ensure_type(span.block.visit(editor), (cst.IndentedBlock, cst.Module)), imports

    def _holding_statement(self, run: cst.Call) -> cst.CSTNode | None:
        """The line `run` is the whole value of (`x = run`, `return run`, `run`), else None."""
        holder = self.get_metadata(ParentNodeProvider, run)
        line = self.get_metadata(ParentNodeProvider, holder)
        if m.matches(holder, _HOLDS_A_VALUE) and getattr(holder, "value", None) is run and len(line.body) == 1:
            return line
        return None

    VALID = (
        Valid(
            """
            import asyncio

            def run_in_thread(coro):
                loop = asyncio.new_event_loop()
                asyncio.set_event_loop(loop)
                try:
                    return loop.run_until_complete(coro)
                finally:
                    asyncio.set_event_loop(None)
                    loop.close()
            """
        ),
        Valid(
            """
            import asyncio

            def start_background_loop():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, daemon=True).start()
                return loop
            """
        ),
        Valid(
            """
            import asyncio

            async def handler(coro):
                loop = asyncio.new_event_loop()
                return loop.run_until_complete(coro)
            """
        ),
        Valid(
            """
            def new_event_loop():
                return Loop()

            def main():
                loop = new_event_loop()
                loop.run_until_complete(job())
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            import asyncio

            def run_coro_sync(coro):
                def run_in_thread():
                    try:
                        new_loop = asyncio.new_event_loop()
                        asyncio.set_event_loop(new_loop)
                        result[0] = new_loop.run_until_complete(coro)
                        new_loop.close()  # Only happens if no exception!
                    except Exception as e:
                        exception[0] = e
            """,
            """
            import asyncio

            def run_coro_sync(coro):
                def run_in_thread():
                    try:
                        result[0] = asyncio.run(coro)
                    except Exception as e:
                        exception[0] = e
            """,
        ),
        Invalid(
            """
            import asyncio

            def stream_answer(agent, question):
                loop = asyncio.new_event_loop()
                asyncio.set_event_loop(loop)
                try:
                    answer = loop.run_until_complete(agent.ask(question))
                    loop.run_until_complete(agent.save(answer))
                finally:
                    loop.close()
                return answer
            """,
            """
            import asyncio

            def stream_answer(agent, question):
                loop = asyncio.new_event_loop()
                asyncio.set_event_loop(loop)
                try:
                    answer = loop.run_until_complete(agent.ask(question))
                    loop.run_until_complete(agent.save(answer))
                finally:
                    asyncio.set_event_loop(None)
                    loop.close()
                return answer
            """,
        ),
        Invalid(
            """
            from asyncio import new_event_loop, set_event_loop

            def sync_pipeline(batches):
                loop = new_event_loop()
                set_event_loop(loop)
                # one loop for every batch
                for batch in batches:
                    loop.run_until_complete(upload(batch))
                loop.close()
                return len(batches)
            """,
            """
            from asyncio import new_event_loop, set_event_loop

            def sync_pipeline(batches):
                loop = new_event_loop()
                try:
                    set_event_loop(loop)
                    # one loop for every batch
                    for batch in batches:
                        loop.run_until_complete(upload(batch))
                finally:
                    set_event_loop(None)
                    loop.close()
                return len(batches)
            """,
        ),
        Invalid(
            """
            from asyncio import new_event_loop

            loop = new_event_loop()
            report = loop.run_until_complete(build_report())
            """,
            """
            from asyncio import new_event_loop
            import asyncio

            report = asyncio.run(build_report())
            """,
        ),
        Invalid(
            """
            import asyncio as aio

            def fetch_all(urls):
                loop = aio.new_event_loop()
                pages = loop.run_until_complete(aio.gather(*map(fetch, urls)))
                loop.close()
                return pages
            """,
            """
            import asyncio as aio

            def fetch_all(urls):
                loop = aio.new_event_loop()
                try:
                    pages = loop.run_until_complete(aio.gather(*map(fetch, urls)))
                finally:
                    loop.close()
                return pages
            """,
        ),
        Invalid(
            """
            import asyncio

            def init_app():
                loop = asyncio.new_event_loop()
                asyncio.set_event_loop(loop)
                loop.run_until_complete(connect_db())
            """
        ),
    )


@dataclass(frozen=True)
class _Span:
    """The statements of the block that creates the loop, from just after the creation to its
    close (or to its last use): what the fix puts in `try:` or rewrites."""

    block: Block
    start: int
    end: int
    teardown: frozenset[cst.CSTNode]  # the close and uninstall statements the fix replaces

    @classmethod
    def of(cls, rule: Rule, uses: LoopUses, teardowns: list[cst.SimpleStatementLine]) -> _Span | None:
        """None when the loop is used outside the block that creates it."""
        block = cst.ensure_type(rule.get_metadata(ParentNodeProvider, uses.creation), (cst.IndentedBlock, cst.Module))
        statements = list(block.body)
        start = statements.index(uses.creation) + 1
        uses_of_the_loop = (*uses.runs, *uses.methods, *uses.installs, *uses.closes)
        used = [_top_statement(rule, node, block) for node in uses_of_the_loop]
        if any(top is None or statements.index(top) < start for top in used):
            return None
        teardown = frozenset(uses.closes) | (frozenset(teardowns) if uses.installs else frozenset())
        first_close = next((i for i in range(start, len(statements)) if statements[i] in uses.closes), None)
        end = first_close if first_close is not None else 1 + max(statements.index(top) for top in used if top)
        while end < len(statements) and statements[end] in teardown:
            end += 1
        return cls(block, start, end, teardown)

    def statements(self) -> list[cst.BaseStatement]:
        return list(self.block.body[self.start : self.end])

    def kept(self) -> list[cst.BaseStatement]:
        return [statement for statement in self.statements() if statement not in self.teardown]


def _top_statement(rule: Rule, node: cst.CSTNode, block: Block) -> cst.CSTNode | None:
    """The statement of `block` that holds `node` (or is it), else None."""
    chain = [node, *ancestors(rule, node)]
    return next((inner for inner, outer in zip(chain, chain[1:]) if outer is block), None)


def _in_finally(rule: Rule, node: cst.CSTNode, stop: cst.CSTNode) -> bool:
    """Whether `node` runs in a `finally:` clause inside `stop`."""
    for parent in ancestors(rule, node):
        if parent is stop:
            return False
        if isinstance(parent, cst.Finally):
            return True
    return False


def _install_function(uses: LoopUses) -> cst.BaseExpression:
    """`asyncio.set_event_loop` as the code spelled it when installing the loop."""
    expr = cst.ensure_type(uses.installs[0].body[0], cst.Expr)
    return cst.ensure_type(expr.value, cst.Call).func


def _call_statement(func: cst.BaseExpression, *args: cst.BaseExpression) -> cst.SimpleStatementLine:
    """`func(args...)` as a statement of its own."""
    return cst.SimpleStatementLine(body=[cst.Expr(cst.Call(func=func, args=[cst.Arg(arg) for arg in args]))])


def _guarded(uses: LoopUses, region: list[cst.BaseStatement], lines: list[cst.EmptyLine]) -> cst.Try:
    """`try: <region> finally: [set_event_loop(None)]; loop.close()` in the region's place; `lines`
    (the comments above the close it replaces) go above the new teardown."""
    teardown = [_call_statement(_install_function(uses), cst.Name("None"))] if uses.installs else []
    teardown.append(_call_statement(cst.Attribute(cst.Name(uses.name), cst.Name("close"))))
    teardown[0] = teardown[0].with_changes(leading_lines=lines)
    first, *rest = region
    return cst.Try(
        body=cst.IndentedBlock(body=[first.with_changes(leading_lines=()), *rest]),
        finalbody=cst.Finally(body=cst.IndentedBlock(body=teardown)),
        leading_lines=first.leading_lines,
    )
