'''UL107 implicit-event-loop

## What it does
Finds synchronous code (a `def`, a lambda or module level) that runs one coroutine on the
thread's implicit event loop: `asyncio.get_event_loop().run_until_complete(coro)`, or
`loop = asyncio.get_event_loop()` followed by `loop.run_until_complete(coro)` (and perhaps
`loop.close()`), and makes it `asyncio.run(coro)`.

Why a rule of its own: UL104 is about loops the code creates and must close, UL105 about
`get_event_loop()` where a loop is running (async code), UL106 about the `except RuntimeError:`
fallback. Here the code creates nothing itself: it leans on a loop that `get_event_loop()`
creates behind its back, which is what is deprecated. Where such runs repeat (per item in a
`for`/`while`, or more than one in a function), one `asyncio.run` each would start a loop per
item: those are UL102's, which runs one loop around the whole job, and this rule stays silent.

## Why is this bad?
`asyncio.get_event_loop()` without a running loop is deprecated since Python 3.10 (3.12 warns
in more cases, and 3.14 raises): in any thread but the main one it raises `RuntimeError: There
is no current event loop`, so the same helper that works in a script fails in a worker thread
(a Celery or gunicorn thread, `run_in_executor`), and called while a loop runs,
`run_until_complete` raises `This event loop is already running`. The loop it creates is never
closed. `asyncio.run()` makes a fresh loop, runs the coroutine, cancels what it leaves behind,
and closes the loop, in any thread.

## Example
```python
def fetch_sync(url):
    return asyncio.get_event_loop().run_until_complete(fetch(url))
```

## Use instead
```python
def fetch_sync(url):
    return asyncio.run(fetch(url))
```

## Fix safety
Unsafe (runs with `--unsafe`): a loop the program set up earlier with `set_event_loop()` (and
the tasks, locks or clients bound to it) is no longer the one that runs the coroutine, and the
loop is closed afterwards. Reported without a fix: a future rather than a coroutine
(`asyncio.gather(...)`, which `asyncio.run` refuses), a run outside the block that holds
`loop = asyncio.get_event_loop()`, and more than one run at module level (put them in one
`async def main()`). A loop used for anything but runs and `close()` is left alone, as is async
code (UL103, UL105).
'''

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import libcst as cst
import libcst.matchers as m
from libcst.metadata import ParentNodeProvider, PositionProvider, QualifiedNameProvider, ScopeProvider

from unleak.knowledge import quickscan
from unleak.knowledge.analysis import ancestors, calls, enclosing_function, import_binding, within
from unleak.knowledge.loops import (
    RUN_UNTIL_COMPLETE,
    ImplicitRun,
    NodeEditor,
    asyncio_run_beside,
    implicit_run,
    makes_a_future,
    running_with,
    runs_per_item,
)
from unleak.rule import FixSafety, Invalid, Rule, Valid

_ASYNCIO_RUN = "asyncio.run"
_MORE_THAN_ONE = "it runs more than one coroutine: run them in one `async def main()`"
_PER_ELEMENT = "it runs once per element of a comprehension: gather them in one coroutine"
_RUN_LIKE = m.Call(func=m.Name() | m.Attribute(attr=m.Name("run") | m.Name("run_until_complete")))
_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)


class ImplicitEventLoop(Rule):
    code = "UL107"
    name = "implicit-event-loop"
    safety = FixSafety.UNSAFE
    summary = (
        "`asyncio.get_event_loop().run_until_complete()` in sync code is deprecated and fails in a thread "
        "or under a running loop: use `asyncio.run()`"
    )
    trigger = (rb"\bget_event_loop\b", rb"\brun_until_complete\b")
    METADATA_DEPENDENCIES = (QualifiedNameProvider, ScopeProvider)

    @classmethod
    def could_fire(cls, tree: ast.Module) -> bool:
        """A call of `get_event_loop` (or what it is imported as), and a `run_until_complete` call
        that `flag_implicit_run` may report: not in an `async def`, not per item of a `for`/`while`
        of its frame, and, in a function, lambda or class, not next to another run of the same
        frame that is surely one (`asyncio.run(x)`, `asyncio.get_event_loop().run_until_complete(x)`):
        those are UL102's."""
        calls_node = list(quickscan.of_type(tree, ast.Call))
        get_loop = quickscan.Callees(tree, "asyncio", {"get_event_loop"})
        if not any(map(get_loop, calls_node)) or not any(map(quickscan.calls_named("run_until_complete"), calls_node)):
            return False
        frames = _Frames(get_loop, quickscan.Callees(tree, "asyncio", {"run"}))
        frames.walk(tree)
        return any(frame.may_report for frame in frames.found.values())

    @m.visit(RUN_UNTIL_COMPLETE)
    def flag_implicit_run(self, call: cst.Call) -> None:
        run = implicit_run(self, call)
        if run is None or call is not run.runs()[0]:
            return  # a named loop is reported once, at its first run
        frame = enclosing_function(self, call)
        if isinstance(frame, cst.FunctionDef) and frame.asynchronous is not None:
            return  # a loop is running here: UL103 and UL105
        root = frame if frame is not None else ancestors(self, call)[-1]
        repeated = any(runs_per_item(self, each, root) for each in run.runs())
        if repeated or len(run.runs()) > 1 or self._other_runs(root, run):
            if frame is None and not repeated:
                self.report(call, f"{self.summary} ({_MORE_THAN_ONE})")
            return  # in a function, or per item: UL102 runs one loop around the whole job
        if any(self._per_element(each, root) for each in run.runs()):
            self.report(call, f"{self.summary} ({_PER_ELEMENT})")
            return
        self._fix(run)

    def _per_element(self, call: cst.Call, root: cst.CSTNode) -> bool:
        """Whether `call` runs once per element of a comprehension inside `root`."""
        for parent in ancestors(self, call):
            if parent is root:
                return False
            if isinstance(parent, _COMPREHENSIONS):
                return True
        return False

    def _fix(self, run: ImplicitRun) -> None:
        awaitable = run.call.args[0].value
        if makes_a_future(self, awaitable):
            self.report(run.call, f"{self.summary} (`asyncio.run()` takes a coroutine, not this future: fix by hand)")
            return
        found = asyncio_run_beside(self, run.factory, run.call)
        if found is None:
            self.report(run.call, f"{self.summary} (the name `asyncio` means something else here: fix by hand)")
            return
        reference, imports = found
        stale = import_binding(self, run.factory) if isinstance(run.factory, cst.Name) else None
        stale_imports = (stale,) if stale is not None else ()
        if run.uses is None:
            fixed = running_with(reference)(run.call)
            self.report(run.call, fix=fixed, imports=imports, stale_imports=stale_imports)
            return
        block = self.get_metadata(ParentNodeProvider, run.uses.creation)
        if not all(within(self, node, block) for node in (run.call, *run.leftovers())):
            self.report(run.call, f"{self.summary} (the loop is used outside the block that gets it: fix by hand)")
            return
        editor = NodeEditor({run.call: running_with(reference)}, run.leftovers())
        line = self.get_metadata(PositionProvider, run.call).start.line
        message = f"{self.summary} (line {line}; the loop's own lines go)"
        self.report(block, message, fix=block.visit(editor), imports=imports, stale_imports=stale_imports)

    def _other_runs(self, root: cst.CSTNode, run: ImplicitRun) -> bool:
        """Whether the frame of `root` runs another coroutine to completion (`asyncio.run`, or a run
        on an implicit loop)."""
        mine = set(run.runs())
        for call in m.findall(root, _RUN_LIKE):
            call = cst.ensure_type(call, cst.Call)
            if call in mine or enclosing_function(self, call) is not enclosing_function(self, run.call):
                continue
            if calls(self, call, _ASYNCIO_RUN) or implicit_run(self, call) is not None:
                return True
        return False

    VALID = (
        Valid(
            """
            import asyncio

            async def handler(url):
                loop = asyncio.get_event_loop()
                return await loop.run_in_executor(None, download, url)
            """
        ),
        Valid(
            """
            import asyncio

            def start_server():
                loop = asyncio.get_event_loop()
                server = loop.run_until_complete(serve())
                loop.run_forever()
                return server
            """
        ),
        Valid(
            """
            import asyncio

            def fetch_all(urls):
                return [fetch_sync(url) for url in urls]

            def fetch_sync(url):
                loop = asyncio.get_event_loop()
                first = loop.run_until_complete(fetch(url))
                return first, loop.run_until_complete(fetch(first.next))
            """
        ),
        Valid(
            """
            import asyncio

            def run(coro):
                loop = asyncio.new_event_loop()
                try:
                    return loop.run_until_complete(coro)
                finally:
                    loop.close()
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            import asyncio

            def fetch_all(urls):
                loop = asyncio.get_event_loop()
                return [loop.run_until_complete(fetch(url)) for url in urls]
            """
        ),
        Invalid(
            """
            import asyncio

            def fetch_sync(url):
                return asyncio.get_event_loop().run_until_complete(fetch(url))
            """,
            """
            import asyncio

            def fetch_sync(url):
                return asyncio.run(fetch(url))
            """,
            unsafe=True,
        ),
        Invalid(
            """
            from asyncio import get_event_loop


            def main():
                loop = get_event_loop()
                # start the crawl
                pages = loop.run_until_complete(crawl(SEEDS))
                loop.close()
                print(len(pages))
            """,
            """
            import asyncio


            def main():
                # start the crawl
                pages = asyncio.run(crawl(SEEDS))
                print(len(pages))
            """,
            unsafe=True,
        ),
        Invalid(
            """
            import asyncio as aio

            if __name__ == "__main__":
                aio.get_event_loop().run_until_complete(main())
            """,
            """
            import asyncio as aio

            if __name__ == "__main__":
                aio.run(main())
            """,
            unsafe=True,
        ),
        Invalid(
            """
            import asyncio

            def fetch_pair(a, b):
                return asyncio.get_event_loop().run_until_complete(asyncio.gather(fetch(a), fetch(b)))
            """
        ),
    )


# --- the cheap check on the stdlib AST ---------------------------------------------------------


@dataclass
class _Frame:
    """The `run_until_complete` calls one frame makes, as `could_fire` counts them."""

    node: ast.AST
    once: int = 0  # calls not per item of a `for`/`while`
    sure: int = 0  # runs that are surely runs (`asyncio.run`, the chained implicit run)

    @property
    def may_report(self) -> bool:
        if isinstance(self.node, ast.AsyncFunctionDef) or not self.once:
            return False
        return isinstance(self.node, ast.Module) or self.sure < 2


@dataclass
class _Frames:
    get_loop: Callable[[ast.Call], bool]
    asyncio_run: Callable[[ast.Call], bool]
    found: dict[int, _Frame] = field(default_factory=dict)

    def walk(self, tree: ast.Module) -> None:
        """Count the runs of each frame of `tree` (iteratively: a long expression nests deep)."""
        stack: list[tuple[ast.AST, ast.AST, bool]] = [(tree, tree, False)]  # node, its frame, per item
        while stack:
            node, frame, per_item = stack.pop()
            if isinstance(node, ast.Call):
                self._count(node, frame, per_item)
            stack.extend(_children(node, frame, per_item))

    def _count(self, call: ast.Call, frame: ast.AST, per_item: bool) -> None:
        counted = self.found.setdefault(id(frame), _Frame(frame))
        if quickscan.called_name(call) == "run_until_complete" and isinstance(call.func, ast.Attribute):
            counted.once += not per_item
            receiver = call.func.value
            chained = isinstance(receiver, ast.Call) and not receiver.args and not receiver.keywords and self.get_loop(receiver)
            counted.sure += bool(chained and _one_awaitable(call))
        elif self.asyncio_run(call):
            counted.sure += 1


def _children(node: ast.AST, frame: ast.AST, per_item: bool) -> Iterator[tuple[ast.AST, ast.AST, bool]]:
    """The children of `node`, each with the frame that runs it and whether it runs per item."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)) and node is not frame:
        inner = node.body if isinstance(node.body, list) else [node.body]
        yield from ((child, node, False) for child in inner)
        yield from ((child, frame, per_item) for child in ast.iter_child_nodes(node) if child not in inner)
        return  # decorators, defaults and bases run in the outer frame
    for field_name, value in ast.iter_fields(node):
        repeated = per_item or _repeats(node, field_name)
        yield from ((child, frame, repeated) for child in (value if isinstance(value, list) else [value]) if isinstance(child, ast.AST))


def _repeats(node: ast.AST, field_name: str) -> bool:
    """Whether `field_name` of `node` is the repeated part of a `for`/`while` statement."""
    if isinstance(node, (ast.For, ast.AsyncFor)):
        return field_name == "body"
    return isinstance(node, ast.While) and field_name in ("body", "test")


def _one_awaitable(call: ast.Call) -> bool:
    """`ONE_AWAITABLE`: one positional argument, or `future=`."""
    if call.keywords:
        return not call.args and len(call.keywords) == 1 and call.keywords[0].arg == "future"
    return len(call.args) == 1 and not isinstance(call.args[0], ast.Starred)
