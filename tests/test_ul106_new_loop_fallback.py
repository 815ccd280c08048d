"""UL106 new-loop-fallback: cases beyond the embedded examples, and generated variants."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import run_rules
from unleak.transforms.ul106_new_loop_fallback import NewLoopFallback

RULES = (NewLoopFallback,)


def _reported_lines(code: str) -> list[int]:
    result = run_rules(textwrap.dedent(code), RULES)
    assert result.error is None and result.fixed is None, "a detect-only rule never edits"
    assert all(not finding.fixable for finding in result.findings)
    return [finding.line for finding in result.findings]


REPORTED = {
    "seed 000 #4, reported at the handler": (
        """
        import asyncio

        def fetch_note(fetch):
            try:
                loop = asyncio.get_event_loop()
            except RuntimeError:
                loop = asyncio.new_event_loop()
                asyncio.set_event_loop(loop)
            return loop.run_until_complete(fetch())
        """,
        [7],
    ),
    "aliased module, tuple with `as e`, inside an if": (
        """
        import asyncio as aio

        try:
            loop = aio.get_running_loop()
        except (ValueError, RuntimeError) as error:
            if "no running event loop" in str(error):
                loop = aio.new_event_loop()
        """,
        [6],
    ),
    "from-import with alias, in a nested try": (
        """
        from asyncio import new_event_loop as fresh_loop

        async def main():
            try:
                return run_sync()
            except RuntimeError:
                try:
                    loop = fresh_loop()
                finally:
                    pass
        """,
        [7],
    ),
    "nested handlers both catching RuntimeError": (
        """
        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            try:
                setup()
            except RuntimeError:
                loop = asyncio.new_event_loop()
        """,
        [6, 9],
    ),
    "except*": (
        """
        import asyncio

        try:
            asyncio.get_running_loop()
        except* RuntimeError:
            loop = asyncio.new_event_loop()
        """,
        [6],
    ),
}


@pytest.mark.parametrize(("code", "lines"), REPORTED.values(), ids=REPORTED.keys())
def test_reports_the_handler(code: str, lines: list[int]) -> None:
    assert _reported_lines(code) == lines


def test_message_says_what_to_do_instead() -> None:
    [finding] = run_rules(textwrap.dedent(REPORTED["seed 000 #4, reported at the handler"][0]), RULES).findings
    for advice in ("asyncio.run()", "worker thread", "asyncio.to_thread", "re-raise"):
        assert advice in finding.message


UNCHANGED = {
    "seed 000 #4 fix: a worker thread": """
        import asyncio
        import concurrent.futures

        try:
            content = asyncio.run(fetch())
        except RuntimeError as e:
            if "asyncio.run() cannot be called from a running event loop" in str(e):
                with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
                    content = executor.submit(asyncio.run, fetch()).result()
            else:
                raise
        """,
    "a handler that does not create a loop": """
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        """,
    "new_event_loop outside a handler": """
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            loop = asyncio.new_event_loop()
        """,
    "other exception types": """
        import asyncio

        try:
            connect()
        except (OSError, ValueError):
            loop = asyncio.new_event_loop()
        except Exception:
            loop = asyncio.new_event_loop()
        """,
    "in the try or else block, not the handler": """
        import asyncio

        try:
            loop = asyncio.new_event_loop()
        except RuntimeError:
            raise
        else:
            other = asyncio.new_event_loop()
        """,
    "a function defined in the handler": """
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            def make_loop():
                return asyncio.new_event_loop()
            factory = lambda: asyncio.new_event_loop()
        """,
    "the user's own new_event_loop and RuntimeError": """
        import asyncio

        class RuntimeError(Exception):
            pass

        def new_event_loop():
            return None

        try:
            pass
        except RuntimeError:
            loop = asyncio.new_event_loop()
        try:
            pass
        except Warning:
            loop = new_event_loop()
        """,
}


@pytest.mark.parametrize("code", UNCHANGED.values(), ids=UNCHANGED.keys())
def test_leaves_alone(code: str) -> None:
    assert _reported_lines(code) == []


# --- generated variants --------------------------------------------------------------------------

CAUGHT = {  # except clause -> catches RuntimeError
    "RuntimeError": True,
    "RuntimeError as error": True,
    "(RuntimeError, OSError)": True,
    "(KeyError, RuntimeError) as error": True,
    "ValueError": False,
    "(OSError, ValueError) as error": False,
    "Exception": False,
}
CREATIONS = {  # statement in the handler -> creates a loop with asyncio.new_event_loop
    "loop = asyncio.new_event_loop()": True,
    "loop = aio.new_event_loop()": True,
    "loop = fresh_loop()": True,
    "loop = new_event_loop()": False,  # the module's own
    "loop = asyncio.get_event_loop_policy().new_event_loop()": False,
    "content = asyncio.run(fetch())": False,
    "make = lambda: asyncio.new_event_loop()": False,
}
PLACEMENTS = (  # how the statement sits in the handler body (indented by 4)
    "{statement}\n",
    "log('falling back')\n# create one\n{statement}\nasyncio.set_event_loop(loop)\n",
    "if retry:\n    {statement}\nelse:\n    raise\n",
)
CONTEXTS = ("{handler}", "def fetch_note():\n{handler_1}", "async def fetch_note():\n{handler_1}")
PRELUDE = """\
import asyncio
import asyncio as aio
from asyncio import new_event_loop as fresh_loop


def new_event_loop():
    return None


"""


@st.composite
def handlers(draw: st.DrawFn) -> tuple[str, bool]:
    """A module with one try/except; returns (code, whether UL106 must report it)."""
    caught, catches_runtime_error = draw(st.sampled_from(sorted(CAUGHT.items())))
    statement, creates_loop = draw(st.sampled_from(sorted(CREATIONS.items())))
    body = draw(st.sampled_from(PLACEMENTS)).format(statement=statement)
    handler = f"try:\n    loop = asyncio.get_event_loop()\nexcept {caught}:\n" + textwrap.indent(body, "    ")
    code = PRELUDE + draw(st.sampled_from(CONTEXTS)).format(
        handler=handler, handler_1=textwrap.indent(handler, "    ")
    )
    return code, catches_runtime_error and creates_loop


@settings(max_examples=50, deadline=None)
@given(handlers())
def test_generated_handlers_are_reported_exactly_when_they_create_a_loop(case: tuple[str, bool]) -> None:
    code, must_report = case
    lines = _reported_lines(code)
    lines_of_code = enumerate(code.splitlines(), start=1)
    handler_line = next(number for number, line in lines_of_code if line.lstrip().startswith("except"))
    assert lines == ([handler_line] if must_report else [])
