"""UL106 new-loop-fallback: cases beyond the embedded examples, and generated variants."""

from __future__ import annotations

import asyncio
import textwrap
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import fixed_text, run_rules
from unleak.transforms.ul106_new_loop_fallback import NewLoopFallback

RULES = (NewLoopFallback,)


def _reported_lines(code: str) -> list[int]:
    result = run_rules(textwrap.dedent(code), RULES)
    assert result.error is None and result.fixed is None, "a detect-only rule never edits"
    assert all(not finding.fixable for finding in result.findings)
    return [finding.line for finding in result.findings]


SEED = "seed 000 #4, its loop also used for call_soon_threadsafe: reported at the handler"
REPORTED = {
    SEED: (
        """
        import asyncio

        def fetch_note(fetch):
            try:
                loop = asyncio.get_event_loop()
            except RuntimeError:
                loop = asyncio.new_event_loop()
                asyncio.set_event_loop(loop)
            loop.call_soon_threadsafe(ready.set)
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
    [finding] = run_rules(textwrap.dedent(REPORTED[SEED][0]), RULES).findings
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


# --- the get-or-create fallback in sync code: unsafe fix (issue 14, item 2) ------------------------

FIXED = {
    "seed 000 #4: only runs the coroutine": (
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
        """
        import asyncio

        def fetch_note(fetch):
            return asyncio.run(fetch())
        """,
    ),
    "a Celery base task, from-imports, a comment above": (
        """
        from asyncio import get_event_loop, new_event_loop, set_event_loop


        class AsyncTask(Task):
            def run_async(self, coro):
                # reuse the worker's loop
                try:
                    loop = get_event_loop()
                except RuntimeError as error:
                    loop = new_event_loop()
                    set_event_loop(loop)
                result = loop.run_until_complete(coro)
                return result
        """,
        """
        import asyncio


        class AsyncTask(Task):
            def run_async(self, coro):
                # reuse the worker's loop
                result = asyncio.run(coro)
                return result
        """,
    ),
    "an `if loop.is_running():` branch is kept, an aliased module": (
        """
        import asyncio as aio

        def run_sync(coro):
            try:
                loop = aio.get_event_loop()
            except RuntimeError:
                loop = aio.new_event_loop()
                aio.set_event_loop(loop)
            if loop.is_running():
                with ThreadPoolExecutor(max_workers=1) as pool:  # its own loop, in its own thread
                    return pool.submit(aio.run, coro).result()
            return loop.run_until_complete(coro)
        """,
        """
        import asyncio as aio

        def run_sync(coro):
            try:
                loop = aio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is not None:
                with ThreadPoolExecutor(max_workers=1) as pool:  # its own loop, in its own thread
                    return pool.submit(aio.run, coro).result()
            return aio.run(coro)
        """,
    ),
    "`if not loop.is_running(): ... else: ...`, at module level": (
        """
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = asyncio.new_event_loop()
        if not loop.is_running():
            content = loop.run_until_complete(fetch())
        else:
            content = loop.create_task(fetch())
        """,
        """
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            content = asyncio.run(fetch())
        else:
            content = loop.create_task(fetch())
        """,
    ),
    "a branch with a from-import getter": (
        """
        import asyncio
        from asyncio import get_event_loop


        def run_sync(coro):
            try:
                loop = get_event_loop()
            except RuntimeError:
                loop = asyncio.new_event_loop()
            if loop.is_running():
                return None
            return loop.run_until_complete(coro)
        """,
        """
        import asyncio


        def run_sync(coro):
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is not None:
                return None
            return asyncio.run(coro)
        """,
    ),
}


@pytest.mark.parametrize(("before", "after"), FIXED.values(), ids=FIXED.keys())
def test_fixes_the_fallback_exactly(before: str, after: str) -> None:
    result = run_rules(textwrap.dedent(before), RULES, unsafe=True)
    assert fixed_text(result) == textwrap.dedent(after)
    assert run_rules(textwrap.dedent(before), RULES).fixed is None, "the fix is unsafe: it waits for --unsafe"


# The plain get-or-create fallback in a function, then what the function does with the loop.
FALLBACK = """
    try:
        loop = asyncio.get_event_loop()
    except RuntimeError:
        loop = asyncio.new_event_loop()
"""
LOOP_USED_OTHERWISE = {  # case -> (the function's header, what follows the fallback)
    "the loop is used for call_soon_threadsafe": (
        "def run(coro, callback):",
        """
        loop.call_soon_threadsafe(callback)
        return loop.run_until_complete(coro)
        """,
    ),
    "two runs": (
        "def run(first, second):",
        """
        loop.run_until_complete(first)
        return loop.run_until_complete(second)
        """,
    ),
    "the run is per item: one asyncio.run each would be a loop each": (
        "def run_all(coros):",
        """
        for coro in coros:
            loop.run_until_complete(coro)
        """,
    ),
    "a future, which asyncio.run refuses": (
        "def run(first, second):",
        """
        return loop.run_until_complete(asyncio.gather(first, second))
        """,
    ),
    "the loop is returned": (
        "def get_loop():",
        """
        loop.run_until_complete(warm_up())
        return loop
        """,
    ),
    "the loop is used by a nested function": (
        "def run(coro):",
        """
        if loop.is_running():
            return lambda: loop.stop()
        return loop.run_until_complete(coro)
        """,
    ),
    "a third assignment": (
        "def run(coro):",
        """
        if loop.is_closed():
            loop = asyncio.new_event_loop()
        return loop.run_until_complete(coro)
        """,
    ),
    "the run is inside the running branch only": (
        "def run(coro):",
        """
        if loop.is_running():
            return loop.run_until_complete(coro)
        """,
    ),
    "a handler with an else clause": (
        "def run(coro):",
        """
        else:
            log.info("reusing")
        return loop.run_until_complete(coro)
        """,
    ),
    "is_running() used as a value": (
        "def run(coro):",
        """
        busy = loop.is_running()
        return loop.run_until_complete(coro)
        """,
    ),
}
DETECT_ONLY = {
    **{
        case: header + FALLBACK + textwrap.indent(textwrap.dedent(after).lstrip("\n"), "    ")
        for case, (header, after) in LOOP_USED_OTHERWISE.items()
    },
    "the handler does more": """
        def run(coro):
            try:
                loop = asyncio.get_event_loop()
            except RuntimeError:
                log.warning("no loop")
                loop = asyncio.new_event_loop()
            return loop.run_until_complete(coro)
        """,
    "the try does more": """
        def run(coro):
            try:
                setup()
                loop = asyncio.get_event_loop()
            except RuntimeError:
                loop = asyncio.new_event_loop()
            return loop.run_until_complete(coro)
        """,
    "a one-line try and handler": """
        def run(coro):
            try: loop = asyncio.get_event_loop()
            except RuntimeError: loop = asyncio.new_event_loop()
            return loop.run_until_complete(coro)
        """,
    "async code": """
        async def run(coro):
            try:
                loop = asyncio.get_event_loop()
            except RuntimeError:
                loop = asyncio.new_event_loop()
            return loop.run_until_complete(coro)
        """,
}


@pytest.mark.parametrize("code", DETECT_ONLY.values(), ids=DETECT_ONLY.keys())
def test_other_fallbacks_stay_detect_only(code: str) -> None:
    lines = _reported_lines("import asyncio\n" + textwrap.dedent(code))
    assert len(lines) == 1


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


# --- generated fallbacks: fixed exactly when the loop only runs the coroutine; same results, no leaks ---

LOOP_FUNCTIONS = ("get_event_loop", "get_running_loop", "new_event_loop", "set_event_loop")
GETTERS = {  # import line -> (get_event_loop, get_running_loop, new_event_loop, set_event_loop) as spelled
    "import asyncio": tuple(f"asyncio.{name}" for name in LOOP_FUNCTIONS),
    "import asyncio as aio": tuple(f"aio.{name}" for name in LOOP_FUNCTIONS),
    f"import asyncio\nfrom asyncio import {', '.join(LOOP_FUNCTIONS)}": LOOP_FUNCTIONS,
}
BRANCHES = {  # how the code asks whether the loop runs -> lines (the run is `{run}`)
    "none": ["return {run}"],
    "if": ["if loop.is_running():", "    return 'busy'", "return {run}"],
    "if not / else": [
        "if not loop.is_running():",
        "    result = {run}",
        "else:",
        "    result = 'busy'",
        "return result",
    ],
}
EXTRA_USES = {  # a use of the loop outside a running branch -> whether the fix is still offered
    "": True,
    "loop.call_soon_threadsafe(print)": False,
    "loop.set_debug(False)": False,
    "kept.append(loop)": False,
}


async def answer(value: int) -> int:
    await asyncio.sleep(0)
    return value + 1


@st.composite
def fallbacks(draw: st.DrawFn) -> tuple[str, bool]:
    import_line = draw(st.sampled_from(sorted(GETTERS)))
    get_loop, running_loop, new_loop, install = GETTERS[import_line]
    getter = draw(st.sampled_from((get_loop, running_loop)))
    extra = draw(st.sampled_from(sorted(EXTRA_USES)))
    lines = ["try:", f"    loop = {getter}()", "except RuntimeError:", f"    loop = {new_loop}()"]
    lines += [f"    {install}(loop)"] if draw(st.booleans()) else []
    lines += [extra] if extra else []
    branch = draw(st.sampled_from(sorted(BRANCHES)))
    lines += [line.format(run="loop.run_until_complete(answer(value))") for line in BRANCHES[branch]]
    body = textwrap.indent("\n".join(lines), "    ")
    return f"{import_line}\n\nkept = []\n\n\ndef entry(value):\n{body}\n", EXTRA_USES[extra]


def _run_in_a_fresh_thread(code: str) -> tuple[object, int]:
    """(what `entry(41)` returned, how many loops it left open), in a thread without a loop."""
    namespace: dict[str, object] = {"answer": answer}
    exec(compile(code, "example.py", "exec"), namespace)
    created: list[asyncio.AbstractEventLoop] = []
    outcome: list[object] = []
    real_new_event_loop = asyncio.DefaultEventLoopPolicy.new_event_loop

    def recording(policy: asyncio.AbstractEventLoopPolicy) -> asyncio.AbstractEventLoop:
        created.append(real_new_event_loop(policy))
        return created[-1]

    def target() -> None:
        outcome.append(namespace["entry"](41))  # type: ignore[operator]

    asyncio.DefaultEventLoopPolicy.new_event_loop = recording  # type: ignore[method-assign]
    try:
        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
    finally:
        asyncio.DefaultEventLoopPolicy.new_event_loop = real_new_event_loop  # type: ignore[method-assign]
    left_open = sum(not loop.is_closed() for loop in created)
    for loop in created:
        loop.close()
    return outcome[0], left_open


@settings(max_examples=40, deadline=None)
@given(fallbacks())
def test_generated_fallbacks(case: tuple[str, bool]) -> None:
    code, fixable = case
    result = run_rules(code, RULES, unsafe=True)
    assert result.error is None and result.fixes.get("UL106", 0) == fixable, code
    once = fixed_text(result)
    compile(once, "example.py", "exec")
    twice = run_rules(once, RULES, unsafe=True)
    assert twice.fixed is None and twice.error is None, "a second pass must change nothing"
    assert [finding.fixable for finding in twice.findings] == ([] if fixable else [False])
    if fixable:
        before, after = _run_in_a_fresh_thread(code), _run_in_a_fresh_thread(once)
        assert before == (42, 1), "the original leaks the loop it creates"
        assert after == (42, 0), "the fix gives the same answer and leaks nothing"
