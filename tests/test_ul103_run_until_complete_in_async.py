"""UL103 run-until-complete-in-async: cases beyond the embedded examples, and generated variants."""

from __future__ import annotations

import ast
import asyncio
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import fixed_text, run_rules
from unleak.transforms.ul103_run_until_complete_in_async import RunUntilCompleteInAsync

RULES = (RunUntilCompleteInAsync,)


def _fix(code: str) -> str:
    return fixed_text(run_rules(textwrap.dedent(code), RULES))


CHANGED = {
    "dead loop spread over branches and a comprehension; an emptied else goes": (
        """
        import asyncio

        async def refresh(items):
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            if items:
                first = loop.run_until_complete(load(items[0]))
            else:
                loop.close()
            rest = [loop.run_until_complete(load(item)) for item in items[1:]]
            loop.close()
            return first, rest
        """,
        """
        async def refresh(items):
            if items:
                first = await load(items[0])
            rest = [await load(item) for item in items[1:]]
            return first, rest
        """,
    ),
    "the `future=` keyword, a subscript on the result, a getter that goes": (
        """
        import asyncio

        async def first_row(db):
            loop = asyncio.get_event_loop()
            return loop.run_until_complete(future=db.fetch())[0]
        """,
        """
        async def first_row(db):
            return (await db.fetch())[0]
        """,
    ),
    "a finally with other work keeps it; only the loop's teardown goes": (
        """
        import asyncio

        async def export(rows):
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                # write everything
                return loop.run_until_complete(write(rows))
            finally:
                asyncio.set_event_loop(None)
                loop.close()
                release_lock()
        """,
        """
        async def export(rows):
            try:
                # write everything
                return await write(rows)
            finally:
                release_lock()
        """,
    ),
    "two dead loops in one function": (
        """
        import asyncio

        async def both():
            one = asyncio.new_event_loop()
            a = one.run_until_complete(fetch_a())
            one.close()
            two = asyncio.new_event_loop()
            b = two.run_until_complete(fetch_b())
            two.close()
            return a + b
        """,
        """
        async def both():
            a = await fetch_a()
            b = await fetch_b()
            return a + b
        """,
    ),
    "a loop made by an enclosing sync function: only the call changes": (
        """
        import asyncio

        def make_handler():
            loop = asyncio.new_event_loop()

            async def handler(request):
                return loop.run_until_complete(answer(request))

            return handler, loop
        """,
        """
        import asyncio

        def make_handler():
            loop = asyncio.new_event_loop()

            async def handler(request):
                return await answer(request)

            return handler, loop
        """,
    ),
    "a loop stored on the instance keeps its lines": (
        """
        import asyncio

        class Service:
            async def start(self):
                loop = asyncio.new_event_loop()
                self.loop = loop
                return loop.run_until_complete(self.warm_up())
        """,
        """
        import asyncio

        class Service:
            async def start(self):
                loop = asyncio.new_event_loop()
                self.loop = loop
                return await self.warm_up()
        """,
    ),
    "awaiting what the call returned": (
        """
        import asyncio

        async def start(job):
            return await asyncio.get_event_loop().run_until_complete(job.prepare())
        """,
        """
        import asyncio

        async def start(job):
            return await (await job.prepare())
        """,
    ),
}


@pytest.mark.parametrize(("before", "after"), CHANGED.values(), ids=CHANGED.keys())
def test_fixes_exactly(before: str, after: str) -> None:
    assert _fix(before) == textwrap.dedent(after)


UNTOUCHED = {
    "sync function (UL104's business)": """
        import asyncio

        def main():
            loop = asyncio.new_event_loop()
            loop.run_until_complete(serve())
        """,
    "nested sync def": """
        import asyncio

        async def outer():
            def in_thread():
                return asyncio.new_event_loop().run_until_complete(job())
            return await asyncio.to_thread(in_thread)
        """,
    "class body inside an async def": """
        import asyncio

        async def outer(loop):
            class Settings:
                value = loop.run_until_complete(load())
            return Settings
        """,
    "a default value runs at definition time": """
        import asyncio

        async def handler(config=asyncio.new_event_loop().run_until_complete(load_config())):
            return config
        """,
    "in a string and a comment": """
        async def handler():
            # loop.run_until_complete(x) used to be here
            return "loop.run_until_complete(x)"
        """,
}


@pytest.mark.parametrize("code", UNTOUCHED.values(), ids=UNTOUCHED.keys())
def test_leaves_alone(code: str) -> None:
    result = run_rules(textwrap.dedent(code), RULES)
    assert result.error is None and result.findings == [] and result.fixed is None


REPORTED_ONLY = {
    "unknown receiver: an attribute": """
        class Enhancer:
            async def enhance(self, citations):
                return self.loop.run_until_complete(self.resolve(citations))
        """,
    "look-alike: a runner made by the user's own function": """
        from tasks import new_event_loop

        async def handler():
            runner = new_event_loop()
            return runner.run_until_complete(job())
        """,
    "the awaited task belongs to the loop itself": """
        import asyncio

        async def handler():
            loop = asyncio.new_event_loop()
            return loop.run_until_complete(loop.create_task(job()))
        """,
    "star arguments": """
        import asyncio

        async def handler(args):
            return asyncio.get_event_loop().run_until_complete(*args)
        """,
    "nest_asyncio makes the call run (and block the loop)": """
        import asyncio
        import nest_asyncio

        nest_asyncio.apply()

        async def handler():
            return asyncio.get_event_loop().run_until_complete(job())
        """,
}


@pytest.mark.parametrize("code", REPORTED_ONLY.values(), ids=REPORTED_ONLY.keys())
def test_reports_without_a_fix(code: str) -> None:
    result = run_rules(textwrap.dedent(code), RULES)
    assert result.error is None and result.fixed is None
    assert [(finding.rule, finding.fixable) for finding in result.findings] == [("UL103", False)]


def test_suppression_comment_on_the_call_keeps_it() -> None:
    code = """\
import asyncio

async def handler(register):
    loop = asyncio.get_event_loop()
    register(loop)
    return loop.run_until_complete(job())  # unleak: ignore[UL103]
"""
    result = run_rules(code, RULES)
    assert result.fixed is None and result.findings == []


def test_a_dead_loop_is_one_finding_however_many_calls() -> None:
    code = """\
import asyncio

async def handler():
    loop = asyncio.new_event_loop()
    a = loop.run_until_complete(one())
    b = loop.run_until_complete(two())
    loop.close()
    return a, b
"""
    assert len(run_rules(code, RULES, fixing=False).findings) == 1


# --- generated variants --------------------------------------------------------------------------

IMPORTS = {  # import line -> how the code spells (new_event_loop, get_event_loop, set_event_loop)
    "import asyncio": ("asyncio.new_event_loop", "asyncio.get_event_loop", "asyncio.set_event_loop"),
    "import asyncio as aio": ("aio.new_event_loop", "aio.get_event_loop", "aio.set_event_loop"),
    "from asyncio import new_event_loop, get_event_loop, set_event_loop": (
        "new_event_loop",
        "get_event_loop",
        "set_event_loop",
    ),
}
RUN_STATEMENTS = (  # {run} is `loop.run_until_complete`; the coroutines return 3 and 4
    ("result = {run}(three())", "result"),
    ("result = {run}(four()) + {run}(three())", "result"),
    ("result = {run}(future=three()).real", "result"),
    ("result = [{run}(three()) for _ in range(2)]", "result"),
    ("result = {run}(three() if flag else four())", "result"),
)
EXTRA_USES = ("", "{loop}.set_debug(False)", "seen.append({loop})")
PROGRAM = """\
{import_line}

seen = []
flag = True


async def three():
    return 3


async def four():
    return 4


{decorator}async def handler():
{body}
    return result
"""
DECORATORS = ("", "@decorate\n")


@st.composite
def handlers(draw: st.DrawFn) -> tuple[str, str, bool]:
    """(program, loop name, whether the loop is used for something else) for one async handler."""
    import_line = draw(st.sampled_from(sorted(IMPORTS)))
    new, get, install = IMPORTS[import_line]
    loop = draw(st.sampled_from(("loop", "new_loop", "event_loop", "ev")))
    factory = draw(st.sampled_from((new, get)))
    statement, _ = draw(st.sampled_from(RUN_STATEMENTS))
    extra = draw(st.sampled_from(EXTRA_USES)).format(loop=loop)
    lines = [f"{loop} = {factory}()"]
    if factory == new and draw(st.booleans()):
        lines.append(f"{install}({loop})")
    if extra:
        lines.append(extra)
    run_line = statement.format(run=f"{loop}.run_until_complete")
    closing = draw(st.sampled_from(("none", "after", "finally", "finally+uninstall"))) if factory == new else "none"
    if closing.startswith("finally"):
        teardown = [f"{install}(None)"] if closing.endswith("uninstall") else []
        lines += ["try:", f"    {run_line}", "finally:", *(f"    {t}" for t in teardown), f"    {loop}.close()"]
    else:
        lines += [run_line] + ([f"{loop}.close()"] if closing == "after" else [])
    if draw(st.booleans()):
        between = [i for i, line in enumerate(lines) if not line.startswith((" ", "finally"))]
        lines.insert(draw(st.sampled_from(between)), "# a comment between statements")
    body = textwrap.indent("\n".join(lines), "    ")
    if draw(st.booleans()):
        body = "    if flag:\n" + textwrap.indent(body, "    ") + "\n    else:\n        result = None"
    program = PROGRAM.format(import_line=import_line, decorator=draw(st.sampled_from(DECORATORS)), body=body)
    return program, loop, bool(extra)


def _run_until_complete_in_async_bodies(code: str) -> int:
    """Independent count (with `ast`) of `.run_until_complete(...)` directly in async function bodies."""
    count = 0
    for function in ast.walk(ast.parse(code)):
        if isinstance(function, ast.AsyncFunctionDef):
            pending = list(function.body)
            while pending:
                node = pending.pop()
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                    continue
                count += isinstance(node, ast.Attribute) and node.attr == "run_until_complete"
                pending.extend(ast.iter_child_nodes(node))
    return count


def _decorate(function: object) -> object:
    return function


@settings(max_examples=50, deadline=None)
@given(handlers())
def test_generated_handlers_are_fixed_and_then_run(variant: tuple[str, str, bool]) -> None:
    code, loop, used_otherwise = variant
    once = fixed_text(run_rules(code, RULES))
    twice = run_rules(once, RULES)
    assert twice.fixed is None and twice.error is None and twice.findings == [], "a second pass must change nothing"
    assert _run_until_complete_in_async_bodies(once) == 0
    assert once.count("# a comment between statements") == code.count("# a comment between statements")
    assert (f"{loop} =" in once) == used_otherwise, "the loop's lines stay exactly when it is used otherwise"
    namespace: dict[str, object] = {"decorate": _decorate}
    exec(compile(once, "example.py", "exec"), namespace)
    result = asyncio.run(namespace["handler"]())  # type: ignore[operator]
    assert result in (3, 7, [3, 3]), result
