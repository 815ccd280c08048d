"""UL101 asyncio-run-in-async: cases beyond the embedded examples, and generated variants."""

from __future__ import annotations

import ast
import asyncio
import io
import textwrap
import tokenize
from collections.abc import Iterator

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.helpers import fixed_text, run_rules
from unleak.transforms.ul101_asyncio_run_in_async import AsyncioRunInAsync

RULES = (AsyncioRunInAsync,)


def _fix(code: str) -> str:
    return fixed_text(run_rules(textwrap.dedent(code), RULES))


CHANGED = {
    "seed 003: statement, assignment and argument": (
        """
        import asyncio

        async def check_all_agencies_for_recalls():
            for agency in agencies:
                result = asyncio.run(
                    RecallAlertService.check_agency_for_new_recalls(agency)
                )
                for recall in result.recalls:
                    users.extend(asyncio.run(RecallAlertService.find_affected_users(recall)))
                    asyncio.run(RecallAlertService.send_recall_alert(recall))
        """,
        """
        async def check_all_agencies_for_recalls():
            for agency in agencies:
                result = await RecallAlertService.check_agency_for_new_recalls(agency)
                for recall in result.recalls:
                    users.extend(await RecallAlertService.find_affected_users(recall))
                    await RecallAlertService.send_recall_alert(recall)
        """,
    ),
    "the import stays while other code uses it": (
        """
        import asyncio

        def main():
            asyncio.run(serve())

        async def serve():
            return asyncio.run(load())
        """,
        """
        import asyncio

        def main():
            asyncio.run(serve())

        async def serve():
            return await load()
        """,
    ),
    "from-import": (
        """
        from asyncio import run

        async def main():
            return run(serve())
        """,
        """
        async def main():
            return await serve()
        """,
    ),
    "primary positions need parentheses": (
        """
        import asyncio

        async def main():
            a = asyncio.run(load()).body
            b = asyncio.run(load())[0]
            c = asyncio.run(load())()
            d = (asyncio.run(load())).body
        """,
        """
        async def main():
            a = (await load()).body
            b = (await load())[0]
            c = (await load())()
            d = (await load()).body
        """,
    ),
    "operators do not": (
        """
        import asyncio

        async def main():
            return asyncio.run(size()) ** 2 + 2 ** asyncio.run(size()), -asyncio.run(size()), not asyncio.run(ok())
        """,
        """
        async def main():
            return await size() ** 2 + 2 ** await size(), -await size(), not await ok()
        """,
    ),
    "operands that are not primaries get parentheses": (
        """
        import asyncio

        async def main(flag):
            a = asyncio.run(first() if flag else second())
            b = asyncio.run(job := make())
            c = asyncio.run(cached or fetch())
            d = asyncio.run((fetch()))
        """,
        """
        async def main(flag):
            a = await (first() if flag else second())
            b = await (job := make())
            c = await (cached or fetch())
            d = await (fetch())
        """,
    ),
    "comments inside the call are kept": (
        """
        import asyncio

        async def main():
            result = asyncio.run(  # the slow part
                fetch(),  # retried inside
            )
        """,
        """
        async def main():
            result = await (  # the slow part
                fetch()  # retried inside
            )
        """,
    ),
    "comprehension and f-string": (
        """
        import asyncio

        async def main(urls):
            pages = [asyncio.run(fetch(url)) for url in urls]
            return f"{asyncio.run(title())!r}: {len(pages)}"
        """,
        """
        async def main(urls):
            pages = [await fetch(url) for url in urls]
            return f"{await title()!r}: {len(pages)}"
        """,
    ),
    "nested calls settle over passes": (
        """
        import asyncio

        async def main():
            return asyncio.run(asyncio.run(factory()))
        """,
        """
        async def main():
            return await (await factory())
        """,
    ),
    "an `await` already there is the one meant; one over an attribute is not (issue 14, item 6)": (
        """
        import asyncio
        from asyncio import run as arun

        async def handler(x):
            first = await asyncio.run(fetch(x))
            second = await arun(primary() or fallback())
            third = await (arun(fetch(x))).body
            return first, second, third
        """,
        """
        async def handler(x):
            first = await fetch(x)
            second = await (primary() or fallback())
            third = await (await fetch(x)).body
            return first, second, third
        """,
    ),
    "an `await` over nested calls settles in one pass": (
        """
        import asyncio

        async def main():
            return await asyncio.run(asyncio.run(asyncio.run(factory())))
        """,
        """
        async def main():
            return await (await (await factory()))
        """,
    ),
    "async def inside a sync def, methods, decorators": (
        """
        import asyncio

        def build():
            @retry
            async def step():
                return asyncio.run(fetch())
            return step

        class Crawler:
            @staticmethod
            async def crawl(self):
                # one page
                asyncio.run(self.fetch())
        """,
        """
        def build():
            @retry
            async def step():
                return await fetch()
            return step

        class Crawler:
            @staticmethod
            async def crawl(self):
                # one page
                await self.fetch()
        """,
    ),
}


@pytest.mark.parametrize(("before", "after"), CHANGED.values(), ids=CHANGED.keys())
def test_fixes(before: str, after: str) -> None:
    assert _fix(before) == textwrap.dedent(after)


UNCHANGED = {
    "sync function": """
        import asyncio

        def main():
            return asyncio.run(serve())

        async def serve():
            pass
        """,
    "nested def, lambda and class inside an async def": """
        import asyncio

        async def main():
            def inner():
                return asyncio.run(fetch())
            later = lambda: asyncio.run(fetch())
            class Config:
                value = asyncio.run(fetch())
            return inner, later, Config
        """,
    "the async def's own defaults, decorators and annotations": """
        import asyncio

        @register(asyncio.run(setup()))
        async def main(config=asyncio.run(load())) -> type(asyncio.run(kind())):
            pass
        """,
    "asyncio.run passed, not called": """
        import asyncio

        async def main(pool):
            return await loop.run_in_executor(pool, asyncio.run, fetch())
        """,
    "the user's own run": """
        import asyncio

        def run(job):
            return job

        async def main():
            return run(fetch())
        """,
    "a run imported from elsewhere": """
        import asyncio
        from invoke import run

        async def main():
            return run("make")
        """,
    "a method called run": """
        import asyncio

        async def main(runner):
            return runner.run(fetch()), asyncio.Runner().run(fetch())
        """,
    "already awaited": """
        import asyncio

        async def main():
            return await fetch()
        """,
}


@pytest.mark.parametrize("code", UNCHANGED.values(), ids=UNCHANGED.keys())
def test_leaves_alone(code: str) -> None:
    result = run_rules(textwrap.dedent(code), RULES)
    assert result.findings == [] and result.fixed is None and result.error is None


REPORTED_ONLY = {
    "keyword arguments": "asyncio.run(serve(), debug=True)",
    "loop_factory": "asyncio.run(serve(), loop_factory=uvloop.new_event_loop)",
    "no argument": "asyncio.run()",
    "starred argument": "asyncio.run(*jobs)",
    "double-starred argument": "asyncio.run(**options)",
    "generator expression": "list(asyncio.run(fetch(url)) for url in urls)",
}


@pytest.mark.parametrize("expression", REPORTED_ONLY.values(), ids=REPORTED_ONLY.keys())
def test_reports_without_fix(expression: str) -> None:
    code = f"import asyncio\n\nasync def main(urls):\n    return {expression}\n"
    result = run_rules(code, RULES)
    assert result.error is None and result.fixed is None
    [finding] = result.findings
    assert not finding.fixable and finding.message.endswith("fix by hand)")


# --- generated variants --------------------------------------------------------------------------

ALIASES = {  # import line -> how the code calls asyncio.run
    "import asyncio": "asyncio.run",
    "import asyncio as aio": "aio.run",
    "from asyncio import run": "run",
    "from asyncio import run as go": "go",
}
LOOK_ALIKES = {  # import lines -> a `run` that is not asyncio.run
    "import asyncio\nfrom invoke import run": "run",
    "import asyncio\n\ndef go(job):\n    return job": "go",
    "import asyncio as aio\nimport trio": "trio.run",
    "import asyncio\nimport asyncio.subprocess as aio": "aio.run",
}
FIXABLE_ARGUMENTS = (
    "{coro}()",
    "{coro}(1, key=2)",
    "client.{coro}(*args)",
    "({coro}())",
    "{coro}() or backup()",
    "\n        {coro}(),\n    ",
    "  # slow\n        {coro}()\n    ",
)
UNFIXABLE_ARGUMENTS = ("{coro}(), debug=True", "*{coro}s", "")
SURROUNDINGS = (
    "result = {call}",
    "{call}",
    "pages.append({call})",
    "status = {call}.status",
    "first = {call}[0]",
    "total = {call} ** 2 + 1",
    "items = [{call} for _ in range(2)]",
    "lazy = list({call} for _ in range(2))",
    "later = lambda: {call}",
)
# (template, indentation level of {body})
SYNC_CONTEXTS = {
    "sync def": ("{decorator}def {name}():\n{body}", 1),
    "nested def": ("{decorator}async def {name}():\n    def inner():\n{body}    return inner\n", 2),
    "class body": ("{decorator}async def {name}():\n    class Box:\n{body}    return Box\n", 2),
    "module level": ("{body}", 0),
    "async def's default": ("{decorator}async def {name}(option={call}):\n    pass\n", 0),
    "async def's decorator": ("@register({call})\nasync def {name}():\n    pass\n", 0),
}
ASYNC_CONTEXTS = {
    "async def": ("{decorator}async def {name}():\n{body}", 1),
    "async def in a sync def": (
        "{decorator}def outer():\n    @wraps(outer)\n    async def {name}():\n{body}    return {name}\n",
        2,
    ),
    "async method": ("{decorator}class Service:\n    @staticmethod\n    async def {name}():\n{body}", 2),
}


@st.composite
def variants(
    draw: st.DrawFn, contexts: dict[str, tuple[str, int]], aliases: dict[str, str] = ALIASES
) -> tuple[str, str]:
    """A module calling `run` in one of `contexts`; returns (code, how the call spells `run`)."""
    import_line, run = draw(st.sampled_from(sorted(aliases.items())))
    argument = draw(st.sampled_from(FIXABLE_ARGUMENTS + UNFIXABLE_ARGUMENTS))
    coro = draw(st.sampled_from(("fetch", "load_page", "_refresh", "sync_users2")))
    call = f"{run}({argument.format(coro=coro)})"
    statement = draw(st.sampled_from(SURROUNDINGS)).format(call=call)
    comment = draw(st.sampled_from(("", "# between statements\n")))
    body = f"{comment}{statement}\n{comment}done = True\n"
    template, level = contexts[draw(st.sampled_from(sorted(contexts)))]
    code = f"{import_line}\n\n" + template.format(
        decorator=draw(st.sampled_from(("", "@app.task\n", "@retry(times=3)\n"))),
        name=draw(st.sampled_from(("main", "crawl", "handle_event"))),
        body=textwrap.indent(body, "    " * level),
        call=call,
    )
    assume(_compiles(code))
    return code, run


def _compiles(code: str) -> bool:
    try:
        compile(code, "example.py", "exec")
    except SyntaxError:
        return False
    return True


def _same_scope(node: ast.AST) -> Iterator[ast.AST]:
    """`node` and what runs in its scope (not inside nested functions, lambdas and classes)."""
    yield node
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            yield from _same_scope(child)


def _runs_in_async_bodies(code: str, run: str) -> int:
    """Independent count (with `ast`) of `run(...)` calls directly in async function bodies."""
    return sum(
        isinstance(node, ast.Call) and ast.unparse(node.func) == run
        for function in ast.walk(ast.parse(code))
        if isinstance(function, ast.AsyncFunctionDef)
        for statement in function.body
        for node in _same_scope(statement)
    )


def _comments(code: str) -> list[str]:
    tokens = tokenize.generate_tokens(io.StringIO(code).readline)
    return [token.string for token in tokens if token.type == tokenize.COMMENT]


@settings(max_examples=50, deadline=None)
@given(variants(ASYNC_CONTEXTS))
def test_generated_async_variants_are_fixed_or_reported(variant: tuple[str, str]) -> None:
    code, run = variant
    once = fixed_text(run_rules(code, RULES))
    compile(once, "example.py", "exec")
    twice = run_rules(once, RULES)
    assert twice.fixed is None and twice.error is None, "a second pass must change nothing"
    assert all(not finding.fixable for finding in twice.findings)
    assert _runs_in_async_bodies(once, run) == len(twice.findings), "every asyncio.run left must be reported"
    assert _comments(once) == _comments(code)


@settings(max_examples=50, deadline=None)
@given(variants(SYNC_CONTEXTS) | variants({**SYNC_CONTEXTS, **ASYNC_CONTEXTS}, LOOK_ALIKES))
def test_generated_sync_code_and_look_alikes_are_untouched(variant: tuple[str, str]) -> None:
    code, _ = variant
    result = run_rules(code, RULES)
    assert result.error is None and result.findings == [] and result.fixed is None


GENERATOR_EXPRESSION = "sum({x} for _ in range(2))"  # reported without a fix
EXPRESSIONS = (  # {x} is the awaited value, 3
    "{x}",
    "{x}.real",
    "{x}.bit_length()",
    "({x}).real",
    "{x}.to_bytes(2, 'big')[1]",
    "{x} ** 2",
    "2 ** {x}",
    "-{x} + {x} * 2",
    "not {x}",
    "[{x}][0]",
    "({x},)",
    "str({x})[0]",
    "f'{{{x}}}!'",
    "[{x} for _ in range(2)]",
    "{{'k': {x}}}",
    "{x} if {x} > 2 else 0",
    "{x} > 2 and {x}",
    "[*range({x})]",
    "divmod({x}, 2)",
    GENERATOR_EXPRESSION,
)
COROUTINES = (  # each evaluates to a coroutine returning 3
    "fetch()",
    "fetch(3)",
    "fetch(n=3)",
    "client.fetch()",
    "(fetch())",
    "fetch() if True else fetch(4)",
    "{'a': fetch}['a']()",
    "(lambda: fetch())()",
    "coro := fetch()",
    "\n        fetch(\n            3,\n        ),\n    ",
)
PROGRAM = """\
{import_line}


async def fetch(n=3):
    return n


class Client:
    async def fetch(self):
        return 3


client = Client()


async def main():
    return {expression}
"""


@settings(max_examples=50, deadline=None)
@given(
    st.sampled_from(sorted(ALIASES.items())), st.sampled_from(EXPRESSIONS), st.sampled_from(COROUTINES)
)
def test_fixed_code_computes_what_the_call_meant(
    alias: tuple[str, str], expression: str, coroutine: str
) -> None:
    """Precedence check at runtime: the fixed expression gives the value it would with the coroutine's result."""
    import_line, run = alias
    code = PROGRAM.format(import_line=import_line, expression=expression.format(x=f"{run}({coroutine})"))
    assume(_compiles(code))
    result = run_rules(code, RULES)
    if expression == GENERATOR_EXPRESSION:
        assert result.fixed is None and [finding.fixable for finding in result.findings] == [False]
        return
    assert result.findings == []
    fixed = fixed_text(result)
    namespace: dict[str, object] = {}
    exec(compile(fixed, "example.py", "exec"), namespace)
    expected = eval(expression.format(x="value"), {"value": 3})
    assert asyncio.run(namespace["main"]()) == expected  # type: ignore[operator]


def test_a_removed_import_on_the_first_line_leaves_no_blank_line_on_top() -> None:
    code = "import asyncio\n\n\nasync def main():\n    return asyncio.run(work())\n"
    assert fixed_text(run_rules(code, RULES)) == "async def main():\n    return await work()\n"
    commented = "# app\nimport asyncio\n\nasync def main():\n    return asyncio.run(work())\n"
    assert fixed_text(run_rules(commented, RULES)) == "# app\n\nasync def main():\n    return await work()\n"


# --- asyncio.run reached through a module's helper (issue 14, item 6) -------------------------------

HELPER = '''\
import asyncio


def run_sync(coro):
    """Run a coroutine from sync code."""
    return asyncio.run(coro)


'''


def test_a_helper_that_only_runs_its_argument_is_awaited_through() -> None:
    code = HELPER + "async def handler(x):\n    page = run_sync(fetch(x))\n    return await run_sync(parse(page))\n"
    found = run_rules(code, RULES, fixing=False).findings
    assert [(finding.line, finding.fixable) for finding in found] == [(10, True), (11, True)]
    assert all(finding.message.startswith("`run_sync()` runs `asyncio.run()`") for finding in found)
    result = run_rules(code, RULES)
    fixed = "async def handler(x):\n    page = await fetch(x)\n    return await parse(page)\n"
    assert fixed_text(result) == HELPER + fixed
    assert run_rules(fixed_text(result), RULES).fixed is None


HELPERS_LEFT_ALONE = {
    "a helper that runs the coroutine in a thread of its own": """
        def run_sync(coro):
            with ThreadPoolExecutor(max_workers=1) as pool:
                return pool.submit(asyncio.run, coro).result()
        """,
    "a helper that does more": """
        def run_sync(coro):
            log.debug("running")
            return asyncio.run(coro)
        """,
    "a helper with options": """
        def run_sync(coro, debug=False):
            return asyncio.run(coro, debug=debug)
        """,
    "a decorated helper": """
        @functools.cache
        def run_sync(coro):
            return asyncio.run(coro)
        """,
    "a helper bound twice": """
        def run_sync(coro):
            return asyncio.run(coro)

        run_sync = other_runner
        """,
    "a helper running something else": """
        def run_sync(coro):
            return asyncio.run(main())
        """,
}


@pytest.mark.parametrize("helper", HELPERS_LEFT_ALONE.values(), ids=HELPERS_LEFT_ALONE.keys())
def test_other_helpers_are_left_alone(helper: str) -> None:
    code = "import asyncio\n" + textwrap.dedent(helper) + "\n\nasync def handler(x):\n    return run_sync(fetch(x))\n"
    result = run_rules(code, RULES)
    assert result.findings == [] and result.fixed is None and result.error is None


def test_a_helper_called_from_sync_code_or_shadowed_is_left_alone() -> None:
    code = HELPER + (
        "def sync_caller(x):\n    return run_sync(fetch(x))\n\n\n"
        "async def handler(run_sync, x):\n    return run_sync(fetch(x))\n"
    )
    result = run_rules(code, RULES)
    assert result.findings == [] and result.fixed is None and result.error is None
