"""UL105 get-event-loop-in-async

## What it does
Finds `asyncio.get_event_loop()` called inside an `async def` and replaces it with
`asyncio.get_running_loop()`.

## Why is this bad?
`get_event_loop()` means different things depending on where it runs: in a coroutine it returns the
running loop, but in a thread without a loop, or from sync code, it creates a new loop that nobody
closes (deprecated since Python 3.10 and an error since 3.14 when no loop is set). Code that fetches
the loop this way gets copied into helpers and threads, where it quietly hands out a loop that is
not the one running the coroutine, and into `except RuntimeError:` fallbacks that create more loops
(seed 000 #4). `get_running_loop()` says what is meant and fails loudly when no loop is running.

## Example
```python
import asyncio

async def fetch(url):
    loop = asyncio.get_event_loop()
    return await loop.run_in_executor(None, download, url)
```

## Use instead
```python
import asyncio

async def fetch(url):
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, download, url)
```

## Fix safety
Safe: inside a running coroutine both calls return the same loop. The call keeps its module
reference (`aio.get_event_loop()` becomes `aio.get_running_loop()`); a from-import gets
`from asyncio import get_running_loop` added, and the `get_event_loop` import goes when nothing
uses it any more. Sync code, nested `def`s, lambdas and class bodies
are left alone (there `get_event_loop()` may legitimately return a loop that is not running yet),
and so are an `async def`'s own decorators and defaults. When `get_running_loop` is already a
different name in the module, the call is reported without a fix.
"""

from __future__ import annotations

import ast

import libcst as cst
import libcst.matchers as m
from libcst.metadata import QualifiedNameProvider, ScopeProvider

from unleak.knowledge import analysis, quickscan
from unleak.rule import FixSafety, ImportSpec, Invalid, Rule, Valid

_RUNNING_LOOP = "get_running_loop"
_GET_EVENT_LOOP_CALL = m.Call(func=m.Name() | m.Attribute(), args=[])


class GetEventLoopInAsync(Rule):
    code = "UL105"
    name = "get-event-loop-in-async"
    safety = FixSafety.SAFE
    summary = "`asyncio.get_event_loop()` inside an async function: use `asyncio.get_running_loop()`"
    trigger = (rb"\bget_event_loop\b", rb"\basync\s+def\b")
    METADATA_DEPENDENCIES = (QualifiedNameProvider, ScopeProvider)

    @classmethod
    def could_fire(cls, tree: ast.Module) -> bool:
        """An `async def` that calls `get_event_loop` (or what it is imported as)."""
        callees = quickscan.Callees(tree, "asyncio", {"get_event_loop"})
        return any(quickscan.calls_in(function, callees) for function in quickscan.of_type(tree, ast.AsyncFunctionDef))

    @m.visit(_GET_EVENT_LOOP_CALL)
    def flag_get_event_loop(self, node: cst.Call) -> None:
        if not (analysis.calls(self, node, "asyncio.get_event_loop") and analysis.in_async_function(self, node)):
            return
        if isinstance(node.func, cst.Attribute):
            self.report(node, fix=node.with_changes(func=node.func.with_changes(attr=cst.Name(_RUNNING_LOOP))))
        elif self._running_loop_name_is_taken(node):
            self.report(node, f"{self.summary} (`{_RUNNING_LOOP}` is another name in this module: fix by hand)")
        else:
            func = cst.ensure_type(node.func, cst.Name)
            imported_as = None if func.value == "get_event_loop" else func.value
            self.report(
                node,
                fix=node.with_changes(func=func.with_changes(value=_RUNNING_LOOP)),
                imports=(ImportSpec("asyncio", _RUNNING_LOOP),),
                stale_imports=(ImportSpec("asyncio", "get_event_loop", imported_as),),
            )

    def _running_loop_name_is_taken(self, node: cst.Call) -> bool:
        """Whether importing `get_running_loop` would clash with (or be shadowed by) another binding."""
        scope = self.get_metadata(ScopeProvider, node)
        return any(
            qualified.name != f"asyncio.{_RUNNING_LOOP}"
            for assignment in scope[_RUNNING_LOOP]
            for qualified in assignment.get_qualified_names_for(_RUNNING_LOOP)
        )

    VALID = (
        Valid(
            """
            import asyncio

            async def fetch(url):
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(None, download, url)
            """
        ),
        Valid(
            """
            import asyncio

            def start():
                loop = asyncio.get_event_loop()
                loop.run_until_complete(serve())

            async def serve():
                await asyncio.sleep(1)
            """
        ),
        Valid(
            """
            import asyncio

            async def serve():
                def on_signal():
                    asyncio.get_event_loop().stop()
                return on_signal
            """
        ),
        Valid(
            """
            from app.loops import get_event_loop

            async def serve():
                return get_event_loop()
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            import asyncio

            async def fetch(url):
                loop = asyncio.get_event_loop()
                return await loop.run_in_executor(None, download, url)
            """,
            """
            import asyncio

            async def fetch(url):
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(None, download, url)
            """,
        ),
        Invalid(
            """
            import asyncio as aio

            async def deadline(seconds):
                return aio.get_event_loop().time() + seconds
            """,
            """
            import asyncio as aio

            async def deadline(seconds):
                return aio.get_running_loop().time() + seconds
            """,
        ),
        Invalid(
            """
            from asyncio import get_event_loop

            async def deadline(seconds):
                return get_event_loop().time() + seconds
            """,
            """
            from asyncio import get_running_loop

            async def deadline(seconds):
                return get_running_loop().time() + seconds
            """,
        ),
        Invalid(
            """
            from asyncio import get_event_loop

            def get_running_loop():
                return None

            async def deadline(seconds):
                return get_event_loop().time() + seconds
            """
        ),
    )
