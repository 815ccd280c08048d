"""UL106 new-loop-fallback

## What it does
Finds `except RuntimeError:` handlers (alone or in a tuple, with or without `as e`) that create a new
event loop with `asyncio.new_event_loop()` as a fallback, typically around
`asyncio.get_event_loop()`, `asyncio.get_running_loop()` or `asyncio.run()`.

## Why is this bad?
The `RuntimeError` says one of two things: there is no event loop in this thread, or one is already
running. Creating a loop in the handler answers both wrongly. With no loop, `asyncio.run()` is the
way to run a coroutine from sync code, and it closes the loop afterwards; the hand-made loop is
usually installed with `set_event_loop()` and never closed. With a running loop, the new loop
cannot run in this thread at all: `run_until_complete()` on it raises again, or blocks the running
loop and every request it serves. The handler also swallows every other `RuntimeError` (seed 000 #4).

## Example
```python
try:
    loop = asyncio.get_event_loop()
except RuntimeError:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
content = loop.run_until_complete(fetch())
```

## Use instead
```python
# from sync code, with no loop running:
content = asyncio.run(fetch())
# from code that may run while a loop is running, in a worker thread with its own loop:
with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
    content = pool.submit(asyncio.run, fetch()).result()
# (or, from async code: content = await asyncio.to_thread(asyncio.run, fetch()))
```

## Fix safety
Detect only: which of the two cases applies, and whether the caller can become async, is a design
decision. Handlers that catch `RuntimeError` without creating a loop, and `new_event_loop()` calls
outside such a handler (or in a function defined inside it), are not reported.
"""

from __future__ import annotations

import ast

import libcst as cst
import libcst.matchers as m
from libcst.metadata import QualifiedNameProvider

from unleak.knowledge import analysis, quickscan
from unleak.rule import FixSafety, Invalid, Rule, Valid

_CALL_BY_NAME = m.Call(func=m.Name() | m.Attribute())
_ADVICE = (
    "from sync code run the coroutine with `asyncio.run()`; when a loop may already be running, run it in a "
    "worker thread (`await asyncio.to_thread(asyncio.run, coro)` or a thread with its own loop); otherwise re-raise"
)


class NewLoopFallback(Rule):
    code = "UL106"
    name = "new-loop-fallback"
    safety = FixSafety.DETECT
    summary = "`except RuntimeError:` creates a new event loop as a fallback"
    trigger = (rb"\bRuntimeError\b", rb"\bnew_event_loop\b")
    METADATA_DEPENDENCIES = (QualifiedNameProvider,)

    @classmethod
    def could_fire(cls, tree: ast.Module) -> bool:
        """An `except` handler that calls `new_event_loop` (or what it is imported as)."""
        callees = quickscan.Callees(tree, "asyncio", {"new_event_loop"})
        return any(quickscan.calls_in(handler, callees) for handler in quickscan.of_type(tree, ast.ExceptHandler))

    @m.visit(m.ExceptHandler() | m.ExceptStarHandler())
    def flag_fallback_loop(self, node: cst.ExceptHandler | cst.ExceptStarHandler) -> None:
        if self._catches_runtime_error(node) and self._creates_event_loop(node):
            self.report(node, f"{self.summary}: {_ADVICE}")

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
