'''UL103 run-until-complete-in-async

## What it does
Finds `loop.run_until_complete(x)` inside an `async def` and replaces it with `await x`. When the
loop then has nothing left to do, its `loop = asyncio.new_event_loop()` (or `get_event_loop()`),
`asyncio.set_event_loop(loop)` and `loop.close()` lines go too, with the `set_event_loop(None)`
next to the close and a `try/finally` that only existed to close the loop (its body stays,
dedented into place).

## Why is this bad?
Inside a coroutine an event loop is already running in this thread, and asyncio refuses to start
a second one: `run_until_complete` raises `RuntimeError: This event loop is already running` (on
the running loop) or `Cannot run the event loop while another loop is running` (on a new loop).
The usual "fix" around that, `nest_asyncio`, blocks the running loop until the inner call is
done: every other request queues up and health checks time out (seed 000 #1).

## Example
```python
async def enhance(citations):
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        resolved = loop.run_until_complete(chain.batch_resolve(citations))
    finally:
        loop.close()
    return resolved
```

## Use instead
```python
async def enhance(citations):
    resolved = await chain.batch_resolve(citations)
    return resolved
```

## Fix safety
Safe. The call it replaces can never succeed in a running loop, so no working program changes
meaning. The loop's own lines are removed only when nothing else uses it: a loop that is also
passed on, stored, returned, or used for anything but `run_until_complete`, `set_event_loop`
and `close` keeps its lines; the import of what those lines called (`asyncio`) goes when nothing
else uses it any more. Reported without a fix: a receiver that cannot be shown to be an
asyncio loop (`self.loop`, a parameter), a call inside a generator expression (`await` would turn
it into an asynchronous generator), an awaited object built from the same loop, unexpected
arguments, and modules that import `nest_asyncio` (where the call does run, blocking the loop).
Only the body of the `async def` counts: a nested `def` or `lambda` is synchronous code.
'''

from __future__ import annotations

import ast

import libcst as cst
import libcst.matchers as m
from libcst.metadata import ParentNodeProvider, PositionProvider, QualifiedNameProvider, ScopeProvider

from unleak.knowledge.analysis import ancestors, calls, enclosing_function, import_binding
from unleak.knowledge.loops import (
    LOOP_FACTORIES,
    ONE_AWAITABLE,
    RUN_UNTIL_COMPLETE,
    LoopUses,
    NodeEditor,
    awaited,
    awaiting,
    creation_of,
    loop_uses,
    uninstalls,
)
from unleak.knowledge import quickscan
from unleak.rule import FixSafety, ImportSpec, Invalid, Rule, Valid
from unleak.settings import Settings

_NEST_ASYNCIO = m.ImportAlias(name=m.Name("nest_asyncio")) | m.ImportFrom(module=m.Name("nest_asyncio"))


class RunUntilCompleteInAsync(Rule):
    code = "UL103"
    name = "run-until-complete-in-async"
    safety = FixSafety.SAFE
    summary = "`run_until_complete()` inside `async def` cannot run: a loop is already running here; `await` instead"
    trigger = (rb"run_until_complete",)
    METADATA_DEPENDENCIES = (QualifiedNameProvider, ScopeProvider)

    @classmethod
    def could_fire(cls, tree: ast.Module) -> bool:
        """An `async def` that calls `.run_until_complete(...)`."""
        runs = quickscan.calls_named("run_until_complete")
        return any(quickscan.calls_in(function, runs) for function in quickscan.of_type(tree, ast.AsyncFunctionDef))

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__(settings)
        self._patched_loops = False
        self._retired: set[cst.SimpleStatementLine] = set()  # loops whose whole cleanup is reported

    def visit_Module(self, node: cst.Module) -> None:
        self._patched_loops = bool(m.findall(node, _NEST_ASYNCIO))

    @m.visit(RUN_UNTIL_COMPLETE)
    def flag_run_until_complete(self, call: cst.Call) -> None:
        function = enclosing_function(self, call)
        if not (isinstance(function, cst.FunctionDef) and function.asynchronous is not None):
            return
        receiver = cst.ensure_type(call.func, cst.Attribute).value
        if isinstance(receiver, cst.Call) and calls(self, receiver, *LOOP_FACTORIES):
            self._rewrite_call(call, function)
            return
        creation = creation_of(self, receiver) if isinstance(receiver, cst.Name) else None
        if not isinstance(creation, cst.SimpleStatementLine):
            code = cst.Module([]).code_for_node(receiver)
            self.report(call, f"{self.summary} (cannot tell that `{code}` is an asyncio loop: `await` by hand)")
        elif creation not in self._retired:
            uses = loop_uses(self, creation)
            if uses is not None and self._is_dead_after_fix(uses, function):
                self._retire(uses, function)
            else:
                self._rewrite_call(call, function)

    def _rewrite_call(self, call: cst.Call, function: cst.FunctionDef) -> None:
        reason = self._why_not_fixable(call, function)
        if reason:
            self.report(call, f"{self.summary} ({reason})")
        else:
            self.report(call, fix=awaited(self, call, call.args[0].value))

    def _why_not_fixable(self, call: cst.Call, function: cst.FunctionDef) -> str | None:
        if self._patched_loops:
            return "this module uses nest_asyncio, which lets the call block the running loop: `await` by hand"
        if not m.matches(call, ONE_AWAITABLE):
            return "unexpected arguments: `await` the awaitable by hand"
        if _in_generator_expression(self, call, function):
            return "inside a generator expression `await` would make it asynchronous: rewrite by hand"
        receiver = cst.ensure_type(call.func, cst.Attribute).value
        if isinstance(receiver, cst.Name) and m.findall(call.args[0], m.Name(receiver.value)):
            return f"what it runs is built from `{receiver.value}` itself: rewrite by hand"
        return None

    def _is_dead_after_fix(self, uses: LoopUses, function: cst.FunctionDef) -> bool:
        """Whether the loop only exists for run_until_complete calls this rule rewrites."""
        return (
            enclosing_function(self, uses.creation) is function
            and not uses.methods
            and not uses.escapes
            and all(
                enclosing_function(self, run) is function and self._why_not_fixable(run, function) is None
                for run in uses.runs
            )
        )

    def _retire(self, uses: LoopUses, function: cst.FunctionDef) -> None:
        """One fix for the loop: every run awaited, and its creation, install and close gone."""
        self._retired.add(uses.creation)
        close_blocks = {self.get_metadata(ParentNodeProvider, close) for close in uses.closes}
        teardown = [
            line
            for line in uninstalls(self, function.body)
            if uses.installs and self.get_metadata(ParentNodeProvider, line) in close_blocks
        ]
        removals = [uses.creation, *uses.installs, *uses.closes, *teardown]
        rewrites = {run: awaiting(self, run) for run in uses.runs}
        block = _common_block(self, *removals, *uses.runs)
        line = self.get_metadata(PositionProvider, uses.creation).start.line
        message = f"{self.summary}; the loop `{uses.name}` (line {line}) is then unused and goes"
        self.report(block, message, fix=block.visit(NodeEditor(rewrites, removals)), stale_imports=self._stale(removals))

    def _stale(self, removals: list[cst.CSTNode]) -> tuple[ImportSpec, ...]:
        """The imports of what the removed lines called (`asyncio` of `asyncio.new_event_loop()`)."""
        callees = [cst.ensure_type(call, cst.Call).func for removal in removals for call in m.findall(removal, m.Call())]
        return tuple(dict.fromkeys(spec for callee in callees if (spec := import_binding(self, callee)) is not None))

    VALID = (
        Valid(
            """
            import asyncio

            def sync_entry_point(data):
                loop = asyncio.new_event_loop()
                try:
                    return loop.run_until_complete(process(data))
                finally:
                    loop.close()
            """
        ),
        Valid(
            """
            import asyncio

            async def handler(data):
                def in_worker_thread():
                    loop = asyncio.new_event_loop()
                    try:
                        return loop.run_until_complete(process(data))
                    finally:
                        loop.close()

                return await asyncio.to_thread(in_worker_thread)
            """
        ),
        Valid(
            """
            async def handler(loop, data):
                callback = lambda: loop.run_until_complete(process(data))
                return await process(data)
            """
        ),
        Valid(
            """
            async def handler(runner):
                text = "loop.run_until_complete(x)"
                return await runner.run_until_complete
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            import asyncio

            async def enhance(citations):
                loop = asyncio.new_event_loop()
                asyncio.set_event_loop(loop)
                try:
                    resolved = loop.run_until_complete(chain.batch_resolve(citations))
                    enriched = loop.run_until_complete(enrichment.batch_enrich(resolved))
                finally:
                    # Always close the loop
                    loop.close()
                return enriched
            """,
            """
            async def enhance(citations):
                resolved = await chain.batch_resolve(citations)
                enriched = await enrichment.batch_enrich(resolved)
                return enriched
            """,
        ),
        Invalid(
            """
            import asyncio

            async def handler(data):
                loop = asyncio.get_event_loop()
                rows = loop.run_until_complete(fetch(data))
                return await loop.run_in_executor(None, digest, rows)
            """,
            """
            import asyncio

            async def handler(data):
                loop = asyncio.get_event_loop()
                rows = await fetch(data)
                return await loop.run_in_executor(None, digest, rows)
            """,
        ),
        Invalid(
            """
            from asyncio import get_event_loop

            async def status(client):
                return get_event_loop().run_until_complete(client.get("/health")).json()
            """,
            """
            from asyncio import get_event_loop

            async def status(client):
                return (await client.get("/health")).json()
            """,
        ),
        Invalid(
            """
            import asyncio as aio

            async def pick(fast):
                loop = aio.new_event_loop()
                aio.set_event_loop(loop)
                try:
                    return loop.run_until_complete(quick() if fast else slow())
                except TimeoutError:
                    return None
                finally:
                    aio.set_event_loop(None)
                    loop.close()
            """,
            """
            async def pick(fast):
                try:
                    return await (quick() if fast else slow())
                except TimeoutError:
                    return None
            """,
        ),
        Invalid(
            """
            class Enhancer:
                async def enhance(self, citations):
                    return self.loop.run_until_complete(self.chain.resolve(citations))
            """
        ),
        Invalid(
            """
            import asyncio

            async def total(items):
                loop = asyncio.get_event_loop()
                return sum(loop.run_until_complete(price(item)) for item in items)
            """
        ),
    )


def _in_generator_expression(rule: Rule, node: cst.CSTNode, stop: cst.CSTNode) -> bool:
    """Whether a generator expression lies between `node` and `stop` (there, `await` would make
    the generator asynchronous and break whoever iterates it)."""
    for parent in ancestors(rule, node):
        if parent is stop:
            return False
        if isinstance(parent, cst.GeneratorExp):
            return True
    return False


def _common_block(rule: Rule, first: cst.CSTNode, *others: cst.CSTNode) -> cst.IndentedBlock | cst.Module:
    """The innermost indented block (or the module) that holds `first` and every one of `others`."""
    shared = [set(ancestors(rule, node)) for node in others]
    return next(
        block
        for block in ancestors(rule, first)
        if isinstance(block, (cst.IndentedBlock, cst.Module)) and all(block in chain for chain in shared)
    )
