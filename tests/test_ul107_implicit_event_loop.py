"""UL107 implicit-event-loop: cases beyond the embedded examples, its split with UL102, and
generated variants run under real asyncio."""

from __future__ import annotations

import ast
import asyncio
import textwrap
import threading
import warnings
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import fixed_text, run_rules
from unleak.transforms.ul102_asyncio_run_in_loop import AsyncioRunInLoop
from unleak.transforms.ul107_implicit_event_loop import ImplicitEventLoop

RULES = (ImplicitEventLoop,)
LOOP_RULES = (AsyncioRunInLoop, ImplicitEventLoop)  # the pair that splits these sites between them


def _fix(code: str, rules: tuple[type, ...] = RULES) -> str:
    return fixed_text(run_rules(textwrap.dedent(code), rules, unsafe=True))


CHANGED = {
    "chained, result used in an expression": (
        """
        import asyncio

        def page_count(url):
            return len(asyncio.get_event_loop().run_until_complete(fetch(url)).pages)
        """,
        """
        import asyncio

        def page_count(url):
            return len(asyncio.run(fetch(url)).pages)
        """,
    ),
    "named loop, `future=` keyword, in a method": (
        """
        import asyncio

        class Client:
            def get(self, key):
                loop = asyncio.get_event_loop()
                value = loop.run_until_complete(future=self.fetch(key))
                return value
        """,
        """
        import asyncio

        class Client:
            def get(self, key):
                value = asyncio.run(self.fetch(key))
                return value
        """,
    ),
    "named loop run inside an `if`, in a lambda's neighbour": (
        """
        import asyncio

        def sync(job, dry_run):
            loop = asyncio.get_event_loop()
            if not dry_run:
                loop.run_until_complete(job.push())
            loop.close()
            callback = lambda: None
        """,
        """
        import asyncio

        def sync(job, dry_run):
            if not dry_run:
                asyncio.run(job.push())
            callback = lambda: None
        """,
    ),
    "a from-import alias": (
        """
        from asyncio import get_event_loop as current_loop

        def main():
            current_loop().run_until_complete(serve())
        """,
        """
        import asyncio

        def main():
            asyncio.run(serve())
        """,
    ),
}


@pytest.mark.parametrize(("before", "after"), CHANGED.values(), ids=CHANGED.keys())
def test_fixes_exactly(before: str, after: str) -> None:
    assert _fix(before) == textwrap.dedent(after)


def test_the_fix_waits_for_unsafe() -> None:
    code = "import asyncio\n\ndef main():\n    asyncio.get_event_loop().run_until_complete(serve())\n"
    result = run_rules(code, RULES)
    assert result.fixed is None and [(f.rule, f.fixable) for f in result.findings] == [("UL107", True)]


UNTOUCHED = {
    "async code: UL105 and UL103": """
        import asyncio

        async def main():
            asyncio.get_event_loop().run_until_complete(serve())
        """,
    "a loop set up and used for more than runs": """
        import asyncio

        def serve_forever():
            loop = asyncio.get_event_loop()
            loop.run_until_complete(start())
            loop.call_soon(ready)
            loop.run_forever()
        """,
    "a loop installed by the code itself": """
        import asyncio

        def main():
            loop = asyncio.get_event_loop()
            asyncio.set_event_loop(loop)
            loop.run_until_complete(serve())
        """,
    "a loop passed on": """
        import asyncio

        def main():
            loop = asyncio.get_event_loop()
            loop.run_until_complete(serve(loop))
        """,
    "a loop the function is given": """
        import asyncio

        def main(loop):
            loop.run_until_complete(serve())
        """,
    "a new loop (UL104's)": """
        import asyncio

        def main():
            asyncio.new_event_loop().run_until_complete(serve())
        """,
    "not asyncio's get_event_loop": """
        def get_event_loop():
            return Loop()

        def main():
            get_event_loop().run_until_complete(serve())
        """,
    "get_event_loop given a policy argument": """
        import asyncio

        def main(policy):
            asyncio.get_event_loop(policy).run_until_complete(serve())
        """,
    "per item in a function: UL102's": """
        import asyncio

        def sync_all(ids):
            for item_id in ids:
                asyncio.get_event_loop().run_until_complete(sync(item_id))
        """,
    "twice in a function: UL102's": """
        import asyncio

        def migrate():
            loop = asyncio.get_event_loop()
            loop.run_until_complete(create_tables())
            loop.run_until_complete(copy_rows())
        """,
    "beside an asyncio.run in the same function: UL102's": """
        import asyncio

        def migrate():
            asyncio.run(create_tables())
            asyncio.get_event_loop().run_until_complete(copy_rows())
        """,
    "per item in a module-level loop: UL102's": """
        import asyncio

        for url in URLS:
            asyncio.get_event_loop().run_until_complete(fetch(url))
        """,
}


@pytest.mark.parametrize("code", UNTOUCHED.values(), ids=UNTOUCHED.keys())
def test_leaves_alone(code: str) -> None:
    result = run_rules(textwrap.dedent(code), RULES, unsafe=True)
    assert result.error is None and result.findings == [] and result.fixed is None


REPORTED_ONLY = {
    "a future, which asyncio.run refuses": """
        import asyncio

        def both():
            loop = asyncio.get_event_loop()
            return loop.run_until_complete(asyncio.ensure_future(job()))
        """,
    "two runs at module level": """
        import asyncio

        asyncio.get_event_loop().run_until_complete(create_tables())
        asyncio.get_event_loop().run_until_complete(copy_rows())
        """,
    "run outside the block that gets the loop": """
        import asyncio

        def main(fresh):
            if fresh:
                loop = asyncio.get_event_loop()
                loop.close()
            loop.run_until_complete(job())
        """,
    "asyncio means something else where the run is written": """
        from asyncio import get_event_loop
        import trio as asyncio

        def main():
            get_event_loop().run_until_complete(job())
        """,
}


@pytest.mark.parametrize("code", REPORTED_ONLY.values(), ids=REPORTED_ONLY.keys())
def test_reports_without_a_fix(code: str) -> None:
    result = run_rules(textwrap.dedent(code), RULES, unsafe=True)
    assert result.error is None and result.fixed is None
    assert {(finding.rule, finding.fixable) for finding in result.findings} == {("UL107", False)}


# --- per item: UL102's one loop, with the implicit loop's lines gone ------------------------------

PER_ITEM = {
    "chained, per item": (
        """
        import asyncio

        def sync_all(ids):
            for item_id in ids:
                asyncio.get_event_loop().run_until_complete(sync(item_id))
        """,
        """
        import asyncio


        async def _sync_all_async(ids):
            for item_id in ids:
                await sync(item_id)


        def sync_all(ids):
            return asyncio.run(_sync_all_async(ids))
        """,
    ),
    "a named loop from a from-import, closed after the loop": (
        """
        from asyncio import get_event_loop

        def sync_all(ids):
            loop = get_event_loop()
            # one round trip per id
            for item_id in ids:
                loop.run_until_complete(sync(item_id))
            loop.close()
            return len(ids)
        """,
        """
        import asyncio


        async def _sync_all_async(ids):
            # one round trip per id
            for item_id in ids:
                await sync(item_id)
            return len(ids)


        def sync_all(ids):
            return asyncio.run(_sync_all_async(ids))
        """,
    ),
    "twice in a function": (
        """
        import asyncio as aio

        def migrate():
            loop = aio.get_event_loop()
            loop.run_until_complete(create_tables())
            return loop.run_until_complete(copy_rows())
        """,
        """
        import asyncio as aio


        async def _migrate_async():
            await create_tables()
            return await copy_rows()


        def migrate():
            return aio.run(_migrate_async())
        """,
    ),
    "a module-level loop over a named loop": (
        """
        import asyncio as aio

        loop = aio.get_event_loop()
        for url in URLS:
            loop.run_until_complete(fetch(url))
        """,
        """
        import asyncio as aio

        loop = aio.get_event_loop()


        async def _main():
            global url
            for url in URLS:
                await fetch(url)


        aio.run(_main())
        """,
    ),
}


@pytest.mark.parametrize(("before", "after"), PER_ITEM.values(), ids=PER_ITEM.keys())
def test_per_item_runs_get_one_loop(before: str, after: str) -> None:
    assert _fix(before, LOOP_RULES) == textwrap.dedent(after)


def test_a_loop_also_used_for_other_things_is_not_moved() -> None:
    code = """
        import asyncio

        def sync_all(ids):
            loop = asyncio.get_event_loop()
            for item_id in ids:
                loop.run_until_complete(sync(item_id))
            loop.run_forever()
        """
    result = run_rules(textwrap.dedent(code), LOOP_RULES, unsafe=True)
    assert result.error is None and result.fixed is None and result.findings == []


# --- generated variants: the same results under real asyncio, and a fixed point -----------------

IMPORTS = {  # import line -> how the code calls get_event_loop
    "import asyncio": "asyncio.get_event_loop",
    "import asyncio as aio": "aio.get_event_loop",
    "from asyncio import get_event_loop": "get_event_loop",
    "from asyncio import get_event_loop as current": "current",
}
RECORDED: list[int] = []


async def record(value: int) -> int:
    await asyncio.sleep(0)
    RECORDED.append(value)
    return value * 2


@st.composite
def entry_points(draw: st.DrawFn) -> str:
    """A sync `entry(items)` that runs `record` on the implicit loop, once, twice or per item."""
    import_line = draw(st.sampled_from(sorted(IMPORTS)))
    get_loop = IMPORTS[import_line]
    named = draw(st.booleans())
    loop = "loop" if named else f"{get_loop}()"
    shape = draw(st.sampled_from(("once", "twice", "for", "while")))
    lines = [f"loop = {get_loop}()"] if named else []
    lines += ["total = 0"]
    if shape == "once":
        lines += [f"total += {loop}.run_until_complete(record(len(items)))"]
    elif shape == "twice":
        lines += [f"total += {loop}.run_until_complete(record(1))", f"total += {loop}.run_until_complete(record(2))"]
    elif shape == "for":
        lines += ["for item in items:", f"    total += {loop}.run_until_complete(record(item))"]
    else:
        lines += ["while items:", f"    total += {loop}.run_until_complete(record(items.pop()))"]
    if named and draw(st.booleans()):
        lines.append("loop.close()")
    lines.append("return total")
    body = textwrap.indent("\n".join(lines), "    ")
    return f"{import_line}\n\n\ndef entry(items):\n{body}\n"


def _run_in_a_thread_with_a_loop(code: str) -> tuple[Any, list[int]]:
    """(what `entry([1, 2, 3])` returned, what `record` saw), in a fresh thread whose current loop
    is set up first, as the original code expects."""
    namespace: dict[str, Any] = {"record": record}
    exec(compile(code, "example.py", "exec"), namespace)
    outcome: list[Any] = []

    def target() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        RECORDED.clear()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                outcome.append(namespace["entry"]([1, 2, 3]))
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    return outcome[0], list(RECORDED)


@settings(max_examples=40, deadline=None)
@given(entry_points())
def test_generated_implicit_runs_keep_their_results(code: str) -> None:
    once = fixed_text(run_rules(code, LOOP_RULES, unsafe=True))
    compile(once, "example.py", "exec")
    assert "get_event_loop" not in once.split("\n\n\n", 1)[1], once
    twice = run_rules(once, LOOP_RULES, unsafe=True)
    assert twice.fixed is None and twice.error is None and twice.findings == [], "a second pass must change nothing"
    assert _run_in_a_thread_with_a_loop(once) == _run_in_a_thread_with_a_loop(code)


# --- every rule together leaves correct event-loop code alone ---------------------------------------

CORRECT = {
    "asyncio.run in `if __name__ == '__main__':`": """
        import asyncio

        async def main():
            await asyncio.sleep(0)

        if __name__ == "__main__":
            asyncio.run(main())
        """,
    "a thread's own loop, closed and uninstalled in finally": """
        import asyncio

        def run_in_thread(coro):
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                return loop.run_until_complete(coro)
            finally:
                asyncio.set_event_loop(None)
                loop.close()
        """,
    "a running-loop check without a fallback loop": """
        import asyncio

        def run_sync(coro):
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return asyncio.run(coro)
            raise RuntimeError("run_sync() called from async code: await the coroutine instead")
        """,
    "asyncio.Runner across a generator": """
        import asyncio

        def pages(urls):
            with asyncio.Runner() as runner:
                for url in urls:
                    yield runner.run(fetch(url))
        """,
    "a background loop handed to a thread": """
        import asyncio
        import threading

        def start_background_loop():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, daemon=True).start()
            return loop
        """,
}


@pytest.mark.parametrize("code", CORRECT.values(), ids=CORRECT.keys())
def test_every_rule_leaves_correct_loop_code_alone(code: str) -> None:
    result = run_rules(textwrap.dedent(code), None, unsafe=True)
    assert result.error is None and result.findings == [] and result.fixed is None


GATE_CASES = {
    # what the visitor leaves to UL102 or to async rules: the gate rules it out
    "two runs in one function": (
        "import asyncio\n\ndef setup(bt):\n    asyncio.get_event_loop().run_until_complete(bt.keys())\n"
        "    asyncio.get_event_loop().run_until_complete(bt.plots())\n",
        False,
    ),
    "a run next to asyncio.run": (
        "import asyncio\n\ndef f(a, b):\n    asyncio.run(a)\n    asyncio.get_event_loop().run_until_complete(b)\n",
        False,
    ),
    "a run per item": (
        "import asyncio\n\ndef f(urls):\n    loop = asyncio.get_event_loop()\n    for url in urls:\n"
        "        loop.run_until_complete(fetch(url))\n",
        False,
    ),
    "a run in a while test": (
        "import asyncio\n\ndef f(loop):\n    asyncio.get_event_loop()\n    while loop.run_until_complete(step()):\n        pass\n",
        False,
    ),
    "a run in an async def": (
        "import asyncio\n\nasync def f(u):\n    return asyncio.get_event_loop().run_until_complete(fetch(u))\n",
        False,
    ),
    # what it may report
    "one run per function": (
        "import asyncio\n\ndef a(u):\n    return asyncio.get_event_loop().run_until_complete(fetch(u))\n\n"
        "def b(u):\n    return asyncio.get_event_loop().run_until_complete(fetch(u))\n",
        True,
    ),
    "two runs at module level": (
        "import asyncio\n\nasyncio.get_event_loop().run_until_complete(a())\nasyncio.get_event_loop().run_until_complete(b())\n",
        True,
    ),
    "a run in a nested function beside two in its outer one": (
        "import asyncio\n\ndef f(a, b):\n    asyncio.run(a)\n    asyncio.run(b)\n"
        "    def g(c):\n        return asyncio.get_event_loop().run_until_complete(c)\n    return g\n",
        True,
    ),
    "a run in a lambda beside a loop": (
        "import asyncio\n\ndef f(urls):\n    for url in urls:\n"
        "        go = lambda: asyncio.get_event_loop().run_until_complete(fetch(url))\n",
        True,
    ),
    "a run in a method's default argument, beside two in its body": (
        "import asyncio\n\nclass K:\n    def m(self, x=asyncio.get_event_loop().run_until_complete(c())):\n"
        "        asyncio.run(a())\n        asyncio.run(b())\n",
        True,
    ),
}


@pytest.mark.parametrize(("code", "possible"), GATE_CASES.values(), ids=GATE_CASES.keys())
def test_could_fire_needs_what_the_visitor_needs(code: str, possible: bool) -> None:
    assert ImplicitEventLoop.could_fire(ast.parse(code)) is possible
    found = {finding.rule for finding in run_rules(code, (ImplicitEventLoop,), fixing=False).findings}
    assert found == ({"UL107"} if possible else set())


def test_could_fire_walks_a_deep_expression() -> None:
    code = "import asyncio\n\nasyncio.get_event_loop().run_until_complete(main(" + " + ".join(["x"] * 900) + "))\n"
    assert ImplicitEventLoop.could_fire(ast.parse(code))
