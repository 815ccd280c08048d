"""UL104 unclosed-event-loop: cases beyond the embedded examples, and generated variants."""

from __future__ import annotations

import asyncio
import textwrap
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import fixed_text, run_rules
from unleak.transforms.ul104_unclosed_event_loop import UnclosedEventLoop

RULES = (UnclosedEventLoop,)


def _fix(code: str) -> str:
    return fixed_text(run_rules(textwrap.dedent(code), RULES))


CHANGED = {
    "never closed, result returned": (
        """
        import asyncio

        def fetch_sync(url):
            loop = asyncio.new_event_loop()
            return loop.run_until_complete(fetch(url))
        """,
        """
        import asyncio

        def fetch_sync(url):
            return asyncio.run(fetch(url))
        """,
    ),
    "not installed: unrelated statements in between stay": (
        """
        import asyncio

        def report(day):
            loop = asyncio.new_event_loop()
            rows = load(day)
            total: int = loop.run_until_complete(summarize(rows))
            print(total)
            loop.close()
            return total
        """,
        """
        import asyncio

        def report(day):
            rows = load(day)
            total: int = asyncio.run(summarize(rows))
            print(total)
            return total
        """,
    ),
    "installed, with statements in between: they may use the installed loop": (
        """
        import asyncio

        def report(day):
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            pending = asyncio.gather(load(day), load(day + 1))
            rows = loop.run_until_complete(pending)
            loop.close()
            return rows
        """,
        """
        import asyncio

        def report(day):
            loop = asyncio.new_event_loop()
            try:
                asyncio.set_event_loop(loop)
                pending = asyncio.gather(load(day), load(day + 1))
                rows = loop.run_until_complete(pending)
            finally:
                asyncio.set_event_loop(None)
                loop.close()
            return rows
        """,
    ),
    "close in an except handler only: the try is wrapped": (
        """
        import asyncio

        def serve():
            loop = asyncio.new_event_loop()
            try:
                loop.run_forever()
            except KeyboardInterrupt:
                loop.close()
        """,
        """
        import asyncio

        def serve():
            loop = asyncio.new_event_loop()
            try:
                try:
                    loop.run_forever()
                except KeyboardInterrupt:
                    loop.close()
            finally:
                loop.close()
        """,
    ),
    "statements after the close stay after the try": (
        """
        import asyncio

        def warm():
            loop = asyncio.new_event_loop()
            loop.run_until_complete(prime())
            loop.run_until_complete(check())
            loop.close()
            asyncio.set_event_loop(None)
            log("warm")
        """,
        """
        import asyncio

        def warm():
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(prime())
                loop.run_until_complete(check())
            finally:
                loop.close()
            asyncio.set_event_loop(None)
            log("warm")
        """,
    ),
    "closed in finally, installed, not uninstalled: seed 001 #1": (
        """
        import asyncio

        def stream():
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)  # Pollutes global state
            try:
                yield from produce()
            finally:
                # always
                loop.close()
        """,
        """
        import asyncio

        def stream():
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)  # Pollutes global state
            try:
                yield from produce()
            finally:
                # always
                asyncio.set_event_loop(None)
                loop.close()
        """,
    ),
    "a method, aliases, and a module-level loop inside `if __name__`": (
        """
        import asyncio as aio

        class Job:
            def run(self):
                loop = aio.new_event_loop()
                aio.set_event_loop(loop)
                self.result = loop.run_until_complete(self.work())
                loop.close()

        if __name__ == "__main__":
            loop = aio.new_event_loop()
            loop.run_until_complete(Job().work())
        """,
        """
        import asyncio as aio

        class Job:
            def run(self):
                self.result = aio.run(self.work())

        if __name__ == "__main__":
            aio.run(Job().work())
        """,
    ),
    "a future ensure_future makes on the installed loop and the loop runs is not kept": (
        """
        import asyncio

        def report(day):
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            pending = asyncio.ensure_future(summarize(day))
            loop.run_until_complete(pending)
            loop.close()
            return pending.result()
        """,
        """
        import asyncio

        def report(day):
            loop = asyncio.new_event_loop()
            try:
                asyncio.set_event_loop(loop)
                pending = asyncio.ensure_future(summarize(day))
                loop.run_until_complete(pending)
            finally:
                asyncio.set_event_loop(None)
                loop.close()
            return pending.result()
        """,
    ),
    "a local task the loop runs and the code only asks about is not kept": (
        """
        import asyncio

        def crawl(urls):
            loop = asyncio.new_event_loop()
            tasks = [loop.create_task(fetch(url)) for url in urls]
            loop.run_until_complete(asyncio.wait(tasks))
            done = loop.create_task(report())
            loop.run_until_complete(done)
            loop.close()
            return done.result()
        """,
        """
        import asyncio

        def crawl(urls):
            loop = asyncio.new_event_loop()
            try:
                tasks = [loop.create_task(fetch(url)) for url in urls]
                loop.run_until_complete(asyncio.wait(tasks))
                done = loop.create_task(report())
                loop.run_until_complete(done)
            finally:
                loop.close()
            return done.result()
        """,
    ),
}


@pytest.mark.parametrize(("before", "after"), CHANGED.values(), ids=CHANGED.keys())
def test_fixes_exactly(before: str, after: str) -> None:
    assert _fix(before) == textwrap.dedent(after)


UNTOUCHED = {
    "already correct: seed 000 #2's fix (not installed)": """
        import asyncio

        def run_in_thread(coro):
            new_loop = asyncio.new_event_loop()
            try:
                return new_loop.run_until_complete(coro)
            finally:
                new_loop.close()
        """,
    "already correct: seed 001 #1's fix": """
        import asyncio

        def stream():
            loop = asyncio.new_event_loop()
            try:
                asyncio.set_event_loop(loop)
                yield from produce()
            finally:
                asyncio.set_event_loop(None)
                try:
                    loop.close()
                except Exception as e:
                    log(e)
        """,
    "async code (UL103's business)": """
        import asyncio

        async def handler():
            loop = asyncio.new_event_loop()
            loop.run_until_complete(job())
        """,
    "the loop escapes: returned": """
        import asyncio

        def make_loop():
            loop = asyncio.new_event_loop()
            loop.set_debug(True)
            return loop
        """,
    "the loop escapes: stored": """
        import asyncio

        class Worker:
            def __init__(self):
                loop = asyncio.new_event_loop()
                self.loop = loop
        """,
    "the loop escapes: used by a nested function": """
        import asyncio

        def start():
            loop = asyncio.new_event_loop()

            def stop():
                loop.call_soon_threadsafe(loop.stop)

            threading.Thread(target=loop.run_forever).start()
            return stop
        """,
    "the loop escapes: handed to a thread": """
        import asyncio
        import threading

        def start_worker():
            loop = asyncio.new_event_loop()
            threading.Thread(target=serve, args=(loop,), daemon=True).start()
            loop.call_soon_threadsafe(ready.set)
        """,
    "the loop escapes: its run_forever handed to a thread": """
        import asyncio
        import threading

        def start_worker():
            loop = asyncio.new_event_loop()
            handle = loop.call_soon(warm_up)
            threading.Thread(target=loop.run_forever, daemon=True).start()
        """,
    "two loops under one name": """
        import asyncio

        def twice():
            loop = asyncio.new_event_loop()
            loop.run_until_complete(one())
            loop = asyncio.new_event_loop()
            loop.run_until_complete(two())
        """,
    "a global loop": """
        import asyncio

        def init():
            global loop
            loop = asyncio.new_event_loop()
            loop.run_until_complete(connect())
        """,
    "a user function called new_event_loop": """
        from pool import new_event_loop

        def main():
            loop = new_event_loop()
            loop.run_until_complete(job())
        """,
    "a class attribute": """
        import asyncio

        class Settings:
            loop = asyncio.new_event_loop()
        """,
}


@pytest.mark.parametrize("code", UNTOUCHED.values(), ids=UNTOUCHED.keys())
def test_leaves_alone(code: str) -> None:
    result = run_rules(textwrap.dedent(code), RULES)
    assert result.error is None and result.findings == [] and result.fixed is None


REPORTED_ONLY = {
    "installed and never closed: maybe meant to stay": """
        import asyncio

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.run_until_complete(init_db())
        """,
    "used outside the block that creates it": """
        import asyncio

        def main(fresh):
            if fresh:
                loop = asyncio.new_event_loop()
            loop.run_until_complete(job())
        """,
}

# A task, future or handle made on the loop and kept beyond the code: closing the loop kills it
# (issue 14, item 5). Reported, never fixed.
KEEPS_WHAT_IT_MAKES = {
    "a global task (a peer's fixture)": """
        import asyncio

        def start():
            global task
            loop = asyncio.new_event_loop()
            task = loop.create_task(main())
        """,
    "a task stored on self": """
        import asyncio

        class Worker:
            def start(self):
                loop = asyncio.new_event_loop()
                self.task = loop.create_task(self.main())
                loop.run_until_complete(asyncio.sleep(0))
                loop.close()
        """,
    "a task put in a container": """
        import asyncio

        def start(pending):
            loop = asyncio.new_event_loop()
            pending.append(loop.create_task(main()))
            loop.run_until_complete(asyncio.sleep(0))
        """,
    "a task returned through a local name": """
        import asyncio

        def start():
            loop = asyncio.new_event_loop()
            task = loop.create_task(main())
            loop.run_until_complete(asyncio.sleep(0))
            return task
        """,
    "a handle kept in a nonlocal": """
        import asyncio

        def outer():
            handle = None

            def start():
                nonlocal handle
                loop = asyncio.new_event_loop()
                handle = loop.call_later(5, tick)
                loop.run_until_complete(job())
                loop.close()

            return start
        """,
    "a module-level task": """
        import asyncio

        loop = asyncio.new_event_loop()
        task = loop.create_task(main())
        loop.run_until_complete(warm_up())
        """,
    "a local task used by a nested function": """
        import asyncio

        def start(register):
            loop = asyncio.new_event_loop()
            task = loop.create_task(main())
            register(lambda: task.cancel())
            loop.run_until_complete(job())
        """,
    "a future ensure_future makes on the installed loop, kept on self": """
        import asyncio
        from asyncio import ensure_future

        class Poller:
            def start(self):
                loop = asyncio.new_event_loop()
                asyncio.set_event_loop(loop)
                self.pending = ensure_future(self.poll())
                loop.run_until_complete(asyncio.sleep(0))
                loop.close()
        """,
}
REPORTED_ONLY.update(KEEPS_WHAT_IT_MAKES)



@pytest.mark.parametrize("code", REPORTED_ONLY.values(), ids=REPORTED_ONLY.keys())
def test_reports_without_a_fix(code: str) -> None:
    result = run_rules(textwrap.dedent(code), RULES)
    assert result.error is None and result.fixed is None
    assert [(finding.rule, finding.fixable) for finding in result.findings] == [("UL104", False)]


def test_asyncio_import_is_added_for_a_from_import() -> None:
    code = """\
from asyncio import new_event_loop


def main():
    loop = new_event_loop()
    loop.run_until_complete(job())
"""
    assert _fix(code) == code.replace("\n\n\ndef", "\nimport asyncio\n\n\ndef").replace(
        "    loop = new_event_loop()\n    loop.run_until_complete(job())", "    asyncio.run(job())"
    )


def test_no_collapse_where_asyncio_means_something_else() -> None:
    code = """\
from asyncio import new_event_loop
import trio as asyncio


def main():
    loop = new_event_loop()
    loop.run_until_complete(job())
"""
    assert "    try:\n        loop.run_until_complete(job())\n    finally:\n        loop.close()\n" in _fix(code)


# --- generated variants: fixed code closes every loop it creates, even when the coroutine fails ---

IMPORTS = {  # import line -> how the code spells (new_event_loop, set_event_loop)
    "import asyncio": ("asyncio.new_event_loop", "asyncio.set_event_loop"),
    "import asyncio as aio": ("aio.new_event_loop", "aio.set_event_loop"),
    "from asyncio import new_event_loop, set_event_loop": ("new_event_loop", "set_event_loop"),
}


class RecordingPolicy(asyncio.DefaultEventLoopPolicy):
    """Records every loop asyncio creates, and the loop last installed."""

    def __init__(self) -> None:
        super().__init__()
        self.created: list[asyncio.AbstractEventLoop] = []
        self.installed: asyncio.AbstractEventLoop | None = None

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        self.created.append(loop)
        return loop

    def set_event_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.installed = loop
        super().set_event_loop(loop)


async def job(fail: bool, value: int) -> int:
    await asyncio.sleep(0)
    if fail:
        raise ValueError("job failed")
    return value


def passthrough(function: Any) -> Any:
    return function


SHAPES = {  # how the code is wrapped -> (definition template, call template)
    "function": ("{decorator}def entry(fail):\n{body}", "entry"),
    "method": ("class Service:\n    {decorator}def entry(self, fail):\n{body}", "Service().entry"),
    "nested": ("def entry(fail):\n    {decorator}def inner():\n{body}\n    return inner()", "entry"),
}


@st.composite
def entry_points(draw: st.DrawFn) -> str:
    """A sync `entry(fail)` that runs `job` on a loop of its own, closed (or not) in one of many ways."""
    import_line = draw(st.sampled_from(sorted(IMPORTS)))
    new, install = IMPORTS[import_line]
    loop = draw(st.sampled_from(("loop", "new_loop", "event_loop")))
    installed = draw(st.booleans())
    runs = draw(st.integers(1, 2))
    lines = [f"{loop} = {new}()"] + ([f"{install}({loop})"] if installed else [])
    uses = [f"result = {loop}.run_until_complete(job(fail, 1))"]
    if runs == 2:
        uses.append(f"result += {loop}.run_until_complete(job(False, 2))")
    closing = draw(st.sampled_from(("none", "after", "finally", "finally+uninstall")))
    if installed and closing == "none":
        closing = "after"  # installed and never closed is reported without a fix
    if closing.startswith("finally"):
        teardown = [f"{install}(None)"] if installed and closing.endswith("uninstall") else []
        teardown.append(f"{loop}.close()")
        lines += ["try:", *(f"    {use}" for use in uses), "finally:", *(f"    {line}" for line in teardown)]
    else:
        lines += uses + ([f"{loop}.close()"] if closing == "after" else [])
    if draw(st.booleans()):
        between = [i for i, line in enumerate(lines) if not line.startswith((" ", "finally"))]
        lines.insert(draw(st.sampled_from(between)), "# a comment between statements")
    lines.append("return result")
    template, call = SHAPES[draw(st.sampled_from(sorted(SHAPES)))]
    depth = template.count("def ") + template.count("class ")
    body = textwrap.indent("\n".join(lines), "    " * depth)
    decorator = draw(st.sampled_from(("", "@passthrough\n" + "    " * (depth - 1))))
    definition = template.format(decorator=decorator, body=body)
    return f"{import_line}\n\n\n{definition}\n\n\nENTRY = {call}\n"


def _run_entry(code: str, *, fail: bool) -> tuple[Any, RecordingPolicy]:
    """(what `entry(fail)` returned or raised, the recording policy) under real asyncio."""
    namespace: dict[str, Any] = {"job": job, "passthrough": passthrough}
    exec(compile(code, "example.py", "exec"), namespace)
    policy = RecordingPolicy()
    previous = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(policy)
    try:
        outcome = namespace["ENTRY"](fail)
    except ValueError as error:
        outcome = repr(error)
    finally:
        asyncio.set_event_loop_policy(previous)
    return outcome, policy


@settings(max_examples=50, deadline=None)
@given(entry_points(), st.booleans())
def test_generated_entry_points_close_every_loop_after_the_fix(code: str, fail: bool) -> None:
    once = fixed_text(run_rules(code, RULES))
    twice = run_rules(once, RULES)
    assert twice.fixed is None and twice.error is None and twice.findings == [], "a second pass must change nothing"
    assert once.count("# a comment between statements") == code.count("# a comment between statements")
    expected, _ = _run_entry(code, fail=fail)
    outcome, policy = _run_entry(once, fail=fail)
    assert outcome == expected, "the fix must not change what the code returns or raises"
    assert policy.created and all(loop.is_closed() for loop in policy.created), "every loop is closed"
    assert policy.installed is None or not policy.installed.is_closed(), "no closed loop is left installed"


MAKERS = (
    "loop.create_task(main())",
    "loop.create_future()",
    "loop.call_later(1, tick)",
    "loop.run_in_executor(None, work)",
)
KEEPERS = {  # where the made object goes -> (line before the creation, statement keeping `{made}`)
    "a global": ("global made", "made = {made}"),
    "an attribute": ("", "self.made = {made}"),
    "a container": ("", "pending[key] = {made}"),
    "a call": ("", "pending.append({made})"),
    "a returned local": ("", "made = {made}\n    return made"),
}


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(MAKERS), st.sampled_from(sorted(KEEPERS)), st.booleans(), st.booleans())
def test_generated_loops_that_keep_what_they_make_are_never_fixed(
    made: str, keeper: str, installed: bool, closed: bool
) -> None:
    before, keeping = KEEPERS[keeper]
    lines = [before, "loop = asyncio.new_event_loop()", "asyncio.set_event_loop(loop)" if installed else ""]
    lines += ["loop.run_until_complete(job())", "loop.close()" if closed else ""]
    lines.insert(3, keeping.format(made=made))
    body = "\n".join(f"    {line}" for line in lines if line)
    code = f"import asyncio\n\n\ndef start(self, pending, key):\n{body}\n"
    result = run_rules(code, RULES, unsafe=True)
    assert result.error is None and result.fixed is None, code
    if not (installed and not closed):  # that one is reported as "maybe meant to stay"
        assert [(finding.rule, finding.fixable) for finding in result.findings] == [("UL104", False)], code
        assert "is kept beyond this code" in result.findings[0].message


# --- a new loop per iteration, installed and never closed (issue 14, item 3): unsafe fix ----------

PER_ITERATION = {
    "an optimizer's rounds: one asyncio.run per round": (
        """
        import asyncio

        def optimize(rounds):
            best = None
            for r in range(rounds):
                loop = asyncio.new_event_loop()
                asyncio.set_event_loop(loop)
                best = loop.run_until_complete(step(r, best))
            return best
        """,
        """
        import asyncio

        def optimize(rounds):
            best = None
            for r in range(rounds):
                best = asyncio.run(step(r, best))
            return best
        """,
    ),
    "a while retry loop: each loop closed in finally": (
        """
        import asyncio

        def fetch_with_retries():
            attempts = 0
            while attempts < 3:
                loop = asyncio.new_event_loop()
                asyncio.set_event_loop(loop)
                try:
                    return loop.run_until_complete(fetch())
                except OSError:
                    attempts += 1
        """,
        """
        import asyncio

        def fetch_with_retries():
            attempts = 0
            while attempts < 3:
                loop = asyncio.new_event_loop()
                try:
                    asyncio.set_event_loop(loop)
                    try:
                        return loop.run_until_complete(fetch())
                    except OSError:
                        attempts += 1
                finally:
                    asyncio.set_event_loop(None)
                    loop.close()
        """,
    ),
    "the loop used for more than runs: each loop closed in finally": (
        """
        import asyncio

        def poll(rounds):
            for r in range(rounds):
                loop = asyncio.new_event_loop()
                asyncio.set_event_loop(loop)
                loop.set_debug(True)
                loop.run_until_complete(step(r))
        """,
        """
        import asyncio

        def poll(rounds):
            for r in range(rounds):
                loop = asyncio.new_event_loop()
                try:
                    asyncio.set_event_loop(loop)
                    loop.set_debug(True)
                    loop.run_until_complete(step(r))
                finally:
                    asyncio.set_event_loop(None)
                    loop.close()
        """,
    ),
}


@pytest.mark.parametrize(("before", "after"), PER_ITERATION.values(), ids=PER_ITERATION.keys())
def test_a_loop_installed_per_iteration_is_closed(before: str, after: str) -> None:
    result = run_rules(textwrap.dedent(before), RULES)
    assert result.fixed is None and [(f.rule, f.fixable) for f in result.findings] == [("UL104", True)]
    assert "per iteration" in result.findings[0].message
    assert fixed_text(run_rules(textwrap.dedent(before), RULES, unsafe=True)) == textwrap.dedent(after)


def test_with_ul102_the_rounds_share_one_loop() -> None:
    from unleak.transforms.ul102_asyncio_run_in_loop import AsyncioRunInLoop

    before = PER_ITERATION["an optimizer's rounds: one asyncio.run per round"][0]
    after = """\
import asyncio


async def _optimize_async(rounds):
    best = None
    for r in range(rounds):
        best = await step(r, best)
    return best


def optimize(rounds):
    return asyncio.run(_optimize_async(rounds))
"""
    both = (AsyncioRunInLoop, UnclosedEventLoop)
    assert fixed_text(run_rules(textwrap.dedent(before).lstrip(), both, unsafe=True)) == after


PER_ITERATION_UNTOUCHED = {
    "closed in finally each round": """
        import asyncio

        def optimize(rounds):
            for r in range(rounds):
                loop = asyncio.new_event_loop()
                asyncio.set_event_loop(loop)
                try:
                    loop.run_until_complete(step(r))
                finally:
                    asyncio.set_event_loop(None)
                    loop.close()
        """,
    "a loop per round handed to a thread": """
        import asyncio
        import threading

        def start_workers(count):
            for _ in range(count):
                loop = asyncio.new_event_loop()
                asyncio.set_event_loop(loop)
                threading.Thread(target=loop.run_forever, daemon=True).start()
        """,
}


@pytest.mark.parametrize("code", PER_ITERATION_UNTOUCHED.values(), ids=PER_ITERATION_UNTOUCHED.keys())
def test_per_iteration_loops_left_alone(code: str) -> None:
    result = run_rules(textwrap.dedent(code), RULES, unsafe=True)
    assert result.error is None and result.findings == [] and result.fixed is None


@st.composite
def rounds(draw: st.DrawFn) -> str:
    """A sync `entry(fail)` that makes a loop per round, installs it, and never closes it."""
    import_line = draw(st.sampled_from(sorted(IMPORTS)))
    new, install = IMPORTS[import_line]
    header = draw(st.sampled_from(("for r in range(3):", "while len(seen) < 3:")))
    body = [f"loop = {new}()", f"{install}(loop)"]
    body += ["loop.set_debug(False)"] if draw(st.booleans()) else []
    body += ["seen.append(loop.run_until_complete(job(fail and len(seen) == 2, len(seen))))"]
    lines = ["seen = []", header, *(f"    {line}" for line in body), "return seen"]
    return f"{import_line}\n\n\ndef entry(fail):\n" + textwrap.indent("\n".join(lines), "    ") + "\n\n\nENTRY = entry\n"


@settings(max_examples=30, deadline=None)
@given(rounds(), st.booleans())
def test_generated_rounds_close_every_loop_after_the_fix(code: str, fail: bool) -> None:
    once = fixed_text(run_rules(code, RULES, unsafe=True))
    twice = run_rules(once, RULES, unsafe=True)
    assert twice.fixed is None and twice.error is None and twice.findings == [], "a second pass must change nothing"
    expected, before = _run_entry(code, fail=fail)
    outcome, after = _run_entry(once, fail=fail)
    assert outcome == expected, "the fix must not change what the code returns or raises"
    leaked = [loop for loop in before.created if not loop.is_closed()]
    for loop in leaked:
        loop.close()
    assert len(before.created) == len(leaked) == 3, "the original leaks one loop a round"
    assert len(after.created) == 3 and all(loop.is_closed() for loop in after.created), "every loop is closed"
