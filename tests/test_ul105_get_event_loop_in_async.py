"""UL105 get-event-loop-in-async: cases beyond the embedded examples, and generated variants."""

from __future__ import annotations

import ast
import asyncio
import textwrap

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.helpers import fixed_text, run_rules
from unleak.transforms.ul105_get_event_loop_in_async import GetEventLoopInAsync

RULES = (GetEventLoopInAsync,)

CHANGED = {
    "aliased from-import: get_running_loop imported, the unused old import goes": (
        """
        from asyncio import get_event_loop as current_loop

        async def deadline(seconds):
            return current_loop().time() + seconds
        """,
        """
        from asyncio import get_running_loop

        async def deadline(seconds):
            return get_running_loop().time() + seconds
        """,
    ),
    "from-import next to a module import": (
        """
        import asyncio
        from asyncio import get_event_loop

        async def main():
            loop = get_event_loop()
            return loop, asyncio.get_event_loop()
        """,
        """
        import asyncio
        from asyncio import get_running_loop

        async def main():
            loop = get_running_loop()
            return loop, asyncio.get_running_loop()
        """,
    ),
    "already imported get_running_loop is reused": (
        """
        from asyncio import get_event_loop, get_running_loop

        async def main():
            return get_event_loop()
        """,
        """
        from asyncio import get_running_loop

        async def main():
            return get_running_loop()
        """,
    ),
    "the old import stays while sync code still uses it": (
        """
        from asyncio import get_event_loop as current_loop

        def now():
            return current_loop().time()

        async def deadline(seconds):
            return current_loop().time() + seconds
        """,
        """
        from asyncio import get_running_loop, get_event_loop as current_loop

        def now():
            return current_loop().time()

        async def deadline(seconds):
            return get_running_loop().time() + seconds
        """,
    ),
    "comprehension, method, async def inside a sync def": (
        """
        import asyncio

        class Server:
            async def start(self):
                # one loop for all handlers
                self.loops = [asyncio.get_event_loop() for _ in self.handlers]

        def factory():
            async def tick():
                return asyncio.get_event_loop().time()
            return tick
        """,
        """
        import asyncio

        class Server:
            async def start(self):
                # one loop for all handlers
                self.loops = [asyncio.get_running_loop() for _ in self.handlers]

        def factory():
            async def tick():
                return asyncio.get_running_loop().time()
            return tick
        """,
    ),
}


@pytest.mark.parametrize(("before", "after"), CHANGED.values(), ids=CHANGED.keys())
def test_fixes(before: str, after: str) -> None:
    assert fixed_text(run_rules(textwrap.dedent(before), RULES)) == textwrap.dedent(after)


UNCHANGED = {
    "sync code": """
        import asyncio

        def main():
            loop = asyncio.get_event_loop()
            loop.run_until_complete(serve())

        async def serve():
            pass
        """,
    "nested def, lambda, class body": """
        import asyncio

        async def main():
            def on_signal():
                asyncio.get_event_loop().stop()
            later = lambda: asyncio.get_event_loop()
            class Config:
                loop = asyncio.get_event_loop()
            return on_signal, later, Config
        """,
    "the async def's own default": """
        import asyncio

        async def main(loop=asyncio.get_event_loop()):
            return loop
        """,
    "the user's own get_event_loop": """
        import asyncio

        def get_event_loop():
            return None

        async def main():
            return get_event_loop()
        """,
    "a policy's get_event_loop": """
        import asyncio

        async def main():
            return asyncio.get_event_loop_policy().get_event_loop()
        """,
    "not called": """
        import asyncio

        async def main():
            return asyncio.get_event_loop
        """,
}


@pytest.mark.parametrize("code", UNCHANGED.values(), ids=UNCHANGED.keys())
def test_leaves_alone(code: str) -> None:
    result = run_rules(textwrap.dedent(code), RULES)
    assert result.findings == [] and result.fixed is None and result.error is None


def test_a_shadowed_get_running_loop_is_reported_without_fix() -> None:
    code = textwrap.dedent(
        """
        from asyncio import get_event_loop

        async def main():
            get_running_loop = None
            return get_event_loop()
        """
    )
    result = run_rules(code, RULES)
    assert result.fixed is None
    [finding] = result.findings
    assert not finding.fixable and "fix by hand" in finding.message


# --- generated variants --------------------------------------------------------------------------

ALIASES = (  # (import line, how the code calls asyncio.get_event_loop, how the fix calls get_running_loop)
    ("import asyncio", "asyncio.get_event_loop", "asyncio.get_running_loop"),
    ("import asyncio as aio", "aio.get_event_loop", "aio.get_running_loop"),
    ("from asyncio import get_event_loop", "get_event_loop", "get_running_loop"),
    ("from asyncio import get_event_loop as current_loop", "current_loop", "get_running_loop"),
)
SURROUNDINGS = ("loop = {call}", "return {call}", "started = {call}.time()", "loops = [{call} for _ in range(2)]")
ASYNC_CONTEXTS = (
    "{decorator}async def {name}():\n{body}",
    "{decorator}def outer():\n    async def {name}():\n{body_2}    return {name}\n",
)
SYNC_CONTEXTS = (
    "{decorator}def {name}():\n{body}",
    "{decorator}async def {name}():\n    def inner():\n{body_2}    return inner\n",
    "{decorator}async def {name}():\n    return lambda: {call}\n",
    "{decorator}async def {name}(loop={call}):\n    return loop\n",
)


@st.composite
def variants(draw: st.DrawFn, contexts: tuple[str, ...]) -> tuple[str, str, str]:
    """A module calling get_event_loop in one of `contexts`: (code, the call's spelling, the fix's)."""
    import_line, get_event_loop, get_running_loop = draw(st.sampled_from(ALIASES))
    call = f"{get_event_loop}()"
    statement = draw(st.sampled_from(SURROUNDINGS)).format(call=call)
    comment = draw(st.sampled_from(("", "# between statements\n")))
    body = f"{comment}pause = None\n{comment}{statement}\n"
    code = f"{import_line}\n\n" + draw(st.sampled_from(contexts)).format(
        decorator=draw(st.sampled_from(("", "@app.route('/')\n", "@cached\n"))),
        name=draw(st.sampled_from(("main", "serve", "tick"))),
        body=textwrap.indent(body, "    "),
        body_2=textwrap.indent(body, "        "),
        call=call,
    )
    assume(_compiles(code))
    return code, get_event_loop, get_running_loop


def _compiles(code: str) -> bool:
    try:
        compile(code, "example.py", "exec")
    except SyntaxError:
        return False
    return True


def _calls_of(code: str, spelled: str) -> int:
    return sum(isinstance(node, ast.Call) and ast.unparse(node.func) == spelled for node in ast.walk(ast.parse(code)))


@settings(max_examples=50, deadline=None)
@given(variants(ASYNC_CONTEXTS))
def test_generated_async_variants_are_fixed(variant: tuple[str, str, str]) -> None:
    code, get_event_loop, get_running_loop = variant
    once = fixed_text(run_rules(code, RULES))
    compile(once, "example.py", "exec")
    twice = run_rules(once, RULES)
    assert twice.fixed is None and twice.error is None and twice.findings == []
    assert _calls_of(once, get_event_loop) == 0
    assert _calls_of(once, get_running_loop) == 1
    assert once.count("# between statements") == code.count("# between statements")


@settings(max_examples=50, deadline=None)
@given(variants(SYNC_CONTEXTS))
def test_generated_sync_variants_are_untouched(variant: tuple[str, str, str]) -> None:
    code, _, _ = variant
    result = run_rules(code, RULES)
    assert result.error is None and result.findings == [] and result.fixed is None


@pytest.mark.parametrize(("import_line", "get_event_loop", "get_running_loop"), ALIASES)
def test_fixed_code_gets_the_running_loop(import_line: str, get_event_loop: str, get_running_loop: str) -> None:
    """At runtime the fixed coroutine gets the loop running it (and the import it needs exists)."""
    code = (
        f"import asyncio\n{import_line}\n\n"
        f"async def main():\n    return {get_event_loop}() is asyncio.get_running_loop()\n"
    )
    fixed = fixed_text(run_rules(code, RULES))
    assert f"return {get_running_loop}() is" in fixed
    namespace: dict[str, object] = {}
    exec(compile(fixed, "example.py", "exec"), namespace)
    assert asyncio.run(namespace["main"]()) is True  # type: ignore[operator]
