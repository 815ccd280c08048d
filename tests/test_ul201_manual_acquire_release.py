"""UL201 manual-acquire-release: cases beyond the embedded examples, and generated variants."""

from __future__ import annotations

import ast
import asyncio
import re
import textwrap
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import fixed_text, run_rules
from unleak.transforms.ul201_manual_acquire_release import ManualAcquireRelease

RULES = (ManualAcquireRelease,)


def _fix(code: str) -> str:
    return fixed_text(run_rules(textwrap.dedent(code), RULES))


CHANGED = {
    "asyncio local, statements before and after": (
        """
        import asyncio

        async def crawl(urls):
            sem = asyncio.Semaphore(3)
            pages = []
            for url in urls:
                await sem.acquire()
                page = await fetch(url)
                pages.append(page)
                sem.release()
            return pages
        """,
        """
        import asyncio

        async def crawl(urls):
            sem = asyncio.Semaphore(3)
            pages = []
            for url in urls:
                async with sem:
                    page = await fetch(url)
                    pages.append(page)
            return pages
        """,
    ),
    "aliased asyncio, self attribute, try/finally after the acquire": (
        """
        from asyncio import Lock as AsyncLock

        class Cache:
            def __init__(self):
                self._lock = AsyncLock()

            async def refresh(self):
                await self._lock.acquire()  # one refresh at a time
                try:
                    self.data = await load()
                finally:
                    self._lock.release()
        """,
        """
        from asyncio import Lock as AsyncLock

        class Cache:
            def __init__(self):
                self._lock = AsyncLock()

            async def refresh(self):
                async with self._lock:  # one refresh at a time
                    self.data = await load()
        """,
    ),
    "threading global lock, a return inside stays inside": (
        """
        import threading

        _registry_lock = threading.RLock()

        def register(name, value):
            _registry_lock.acquire()
            if name in REGISTRY:
                return False
            REGISTRY[name] = value
            _registry_lock.release()
            return True
        """,
        """
        import threading

        _registry_lock = threading.RLock()

        def register(name, value):
            with _registry_lock:
                if name in REGISTRY:
                    return False
                REGISTRY[name] = value
            return True
        """,
    ),
    "threading lock in an async function stays a plain with": (
        """
        import threading

        lock = threading.Lock()

        async def bump(counter):
            lock.acquire()
            counter.value += 1
            lock.release()
        """,
        """
        import threading

        lock = threading.Lock()

        async def bump(counter):
            with lock:
                counter.value += 1
        """,
    ),
    "unknown kind, awaited: async; comments kept": (
        """
        async def send(limiter, message):
            # wait for a slot
            await limiter.acquire()
            # the slow part
            await post(message)
            # give the slot back
            limiter.release()  # done
            log(message)
        """,
        """
        async def send(limiter, message):
            # wait for a slot
            async with limiter:
                # the slow part
                await post(message)
                # give the slot back
                # done
            log(message)
        """,
    ),
    "try/finally with handlers keeps the handlers inside the with": (
        """
        import threading

        lock = threading.Lock()

        def save(row):
            lock.acquire()
            try:
                write(row)
            except OSError:
                retry(row)
            finally:
                lock.release()
        """,
        """
        import threading

        lock = threading.Lock()

        def save(row):
            with lock:
                try:
                    write(row)
                except OSError:
                    retry(row)
        """,
    ),
    "two locks nested: both become with blocks": (
        """
        import threading

        a = threading.Lock()
        b = threading.Lock()

        def transfer():
            a.acquire()
            b.acquire()
            move()
            b.release()
            a.release()
        """,
        """
        import threading

        a = threading.Lock()
        b = threading.Lock()

        def transfer():
            with a:
                with b:
                    move()
        """,
    ),
    "two spans in one block": (
        """
        import threading

        lock = threading.Lock()

        def twice():
            lock.acquire()
            first()
            lock.release()
            between()
            lock.acquire()
            second()
            lock.release()
        """,
        """
        import threading

        lock = threading.Lock()

        def twice():
            with lock:
                first()
            between()
            with lock:
                second()
        """,
    ),
    "asyncio condition: both trailing comments kept": (
        """
        import asyncio

        cond = asyncio.Condition()

        async def waiter():
            await cond.acquire()  # take it
            try:  # wait for a notify
                await cond.wait()
            finally:
                cond.release()
        """,
        """
        import asyncio

        cond = asyncio.Condition()

        async def waiter():
            async with cond:  # wait for a notify
                # take it
                await cond.wait()
        """,
    ),
    "module level, nothing between acquire and release": (
        """
        import threading

        lock = threading.Lock()
        lock.acquire()  # warm up
        lock.release()
        """,
        """
        import threading

        lock = threading.Lock()
        with lock:  # warm up
            pass
        """,
    ),
    "acquire inside the try": (
        """
        import asyncio

        sem = asyncio.BoundedSemaphore(4)

        async def work():
            try:
                await sem.acquire()
                await step()
            finally:
                sem.release()
            return 1
        """,
        """
        import asyncio

        sem = asyncio.BoundedSemaphore(4)

        async def work():
            async with sem:
                await step()
            return 1
        """,
    ),
}


@pytest.mark.parametrize(("before", "after"), CHANGED.values(), ids=CHANGED.keys())
def test_fixes_exactly(before: str, after: str) -> None:
    assert _fix(before) == textwrap.dedent(after)


GUARD = """
import threading

class Guard:
    def __init__(self):
        self._lock = threading.Lock()

    def __enter__(self):
        self._lock.acquire()
        return self

    def __exit__(self, *exc):
        {exit_body}
{other}"""

UNTOUCHED = {
    "already async with": """
        import asyncio

        sem = asyncio.Semaphore(2)

        async def job():
            async with sem:
                await work()
        """,
    "pool.acquire() returns a connection": """
        async def query(pool):
            conn = await pool.acquire()
            rows = await conn.fetch("select 1")
            await pool.release(conn)
            return rows
        """,
    "non-blocking acquire, result tested": """
        import threading

        lock = threading.Lock()

        def poll():
            if not lock.acquire(blocking=False):
                return
            work()
            lock.release()
        """,
    "timed acquire, result assigned": """
        import threading

        lock = threading.Lock()

        def poll():
            got = lock.acquire(timeout=1)
            work()
            if got:
                lock.release()
        """,
    "unknown kind, not awaited: not a lock we know": """
        def borrow(pool):
            pool.acquire()
            use()
            pool.release()
        """,
    "asyncio lock acquired without await: not this pattern": """
        import asyncio

        lock = asyncio.Lock()

        async def wrong():
            lock.acquire()
            work()
            lock.release()
        """,
    "release in a finally that does more": """
        import threading

        lock = threading.Lock()

        def save():
            lock.acquire()
            try:
                write()
            finally:
                lock.release()
                log("released")
        """,
    "acquired in __enter__, released in __exit__: the class is the context manager": GUARD.format(
        exit_body="self._lock.release()", other=""
    ),
    "acquired in __aenter__, released in __aexit__": """
        import asyncio

        class Limited:
            def __init__(self):
                self._slots = asyncio.Semaphore(3)

            async def __aenter__(self):
                await self._slots.acquire()
                return self

            async def __aexit__(self, *exc):
                self._slots.release()
        """,
}


@pytest.mark.parametrize("code", UNTOUCHED.values(), ids=UNTOUCHED.keys())
def test_leaves_alone(code: str) -> None:
    result = run_rules(textwrap.dedent(code), RULES)
    assert result.error is None and result.findings == [] and result.fixed is None


REPORTED_ONLY = {
    "released only in except (seed 000 #3)": """
        import asyncio

        class BrowserManager:
            def __init__(self):
                self._semaphore = asyncio.Semaphore(5)

            async def get_browser(self):
                await self._semaphore.acquire()
                try:
                    return await launch()
                except Exception:
                    self._semaphore.release()
                    raise
        """,
    "released in another method": """
        import asyncio

        class Pool:
            def __init__(self):
                self._slots = asyncio.Semaphore(5)

            async def take(self):
                await self._slots.acquire()
                return Slot(self)

            def give_back(self):
                self._slots.release()
        """,
    "acquired in a branch, released after it: not one block": """
        import threading

        lock = threading.Lock()

        def maybe(x):
            if x:
                lock.acquire()
            work()
            lock.release()
        """,
    "acquired in __enter__ but released in another method than __exit__": GUARD.format(
        exit_body="pass", other="\n    def done(self):\n        self._lock.release()\n"
    ),
}


@pytest.mark.parametrize("code", REPORTED_ONLY.values(), ids=REPORTED_ONLY.keys())
def test_reports_without_a_fix(code: str) -> None:
    result = run_rules(textwrap.dedent(code), RULES)
    assert result.error is None and result.fixed is None
    assert [(finding.rule, finding.fixable) for finding in result.findings] == [("UL201", False)]


# --- generated variants: they compile, a second pass changes nothing, every statement keeps its place,
# --- and the lock is free again after a step inside it raises ---

KINDS = {  # kind -> (import line, constructor, `await ` or "", with keyword, function keyword)
    "asyncio": ("import asyncio", "asyncio.Semaphore(1)", "await ", "async with", "async def"),
    "threading": ("import threading", "threading.Lock()", "", "with", "def"),
}


@dataclass(frozen=True)
class Variant:
    code: str
    keyword: str  # `with` or `async with`
    holder: str  # where the lock lives: "local", "self" or "global"
    name: str
    failing_step: str  # the step inside the lock that raises


def _indented(lines: list[str]) -> list[str]:
    return [f"    {line}" for line in lines]


@st.composite
def variants(draw: st.DrawFn) -> Variant:
    import_line, constructor, await_, keyword, def_ = KINDS[draw(st.sampled_from(sorted(KINDS)))]
    holder = draw(st.sampled_from(("local", "self", "global")))
    name = draw(st.sampled_from(("lock", "sem", "_guard")))
    receiver = f"self.{name}" if holder == "self" else name
    counts = [draw(st.integers(0, 2)), draw(st.integers(1, 3)), draw(st.integers(0, 2))]
    steps = [f"step_{i}()" for i in range(sum(counts))]
    before, inside, after = steps[: counts[0]], steps[counts[0] : -counts[2] or None], steps[len(steps) - counts[2] :]
    failing_step = draw(st.sampled_from(inside)).removesuffix("()")
    if draw(st.booleans()):
        inside.insert(draw(st.integers(0, len(inside))), "# a comment inside")
    acquire, release = f"{await_}{receiver}.acquire()", f"{receiver}.release()"
    shape = draw(st.sampled_from(("plain", "try after", "try around")))
    if shape == "plain":
        span = [acquire, *inside, release]
    elif shape == "try after":
        span = [acquire, "try:", *_indented(inside), "finally:", f"    {release}"]
    else:
        span = ["try:", f"    {acquire}", *_indented(inside), "finally:", f"    {release}"]
    if draw(st.booleans()):
        span = ["if ready():", *_indented(span)]
    creation = [f"{name} = {constructor}"] if holder == "local" else []
    lines = [f"{def_} run({'self' if holder == 'self' else ''}):", *_indented([*creation, *before, *span, *after])]
    if holder == "self":
        init = ["def __init__(self):", f"    self.{name} = {constructor}", ""]
        lines = ["class Worker:", *_indented([*init, *lines])]
    prologue = [import_line, ""] + ([f"{name} = {constructor}", ""] if holder == "global" else [])
    return Variant("\n".join([*prologue, *lines]) + "\n", keyword, holder, name, failing_step)


def _steps(code: str) -> list[str]:
    return re.findall(r"step_\d+\(\)|# a comment inside", code)


class StepFailed(Exception):
    pass


def _lock_after_a_failing_step(variant: Variant, code: str) -> Any:
    """Run `code`'s `run()` with `variant.failing_step` raising; the lock it used (None: a local)."""

    def fail() -> None:
        raise StepFailed

    namespace: dict[str, Any] = {f"step_{i}": lambda: None for i in range(10)}
    namespace |= {variant.failing_step: fail, "ready": lambda: True}
    exec(compile(code, "example.py", "exec"), namespace)
    owner = namespace["Worker"]() if variant.holder == "self" else None
    run = owner.run if owner is not None else namespace["run"]
    with pytest.raises(StepFailed):
        outcome = run()
        if asyncio.iscoroutine(outcome):
            asyncio.run(outcome)
    if variant.holder == "local":
        return None
    return getattr(owner, variant.name) if owner is not None else namespace[variant.name]


@settings(max_examples=40, deadline=None)
@given(variants())
def test_generated_variants_become_with_blocks(variant: Variant) -> None:
    once = fixed_text(run_rules(variant.code, RULES))
    compile(once, "example.py", "exec")
    assert ".acquire()" not in once and ".release()" not in once
    assert re.search(rf"^\s*{variant.keyword} (self\.)?{variant.name}:$", once, re.MULTILINE), once
    assert _steps(once) == _steps(variant.code), "every statement stays, in order"
    twice = run_rules(once, RULES)
    assert twice.fixed is None and twice.error is None and twice.findings == [], "a second pass changes nothing"
    lock = _lock_after_a_failing_step(variant, once)
    assert lock is None or not lock.locked(), "the lock is free again after the failing step"


ENTERED_AND_EXITED = """
import threading

class Pool:
    def __init__(self):
        self._lock = threading.Lock()

    def __enter__(self):
        self._lock.acquire(){enter_extra}

    def __exit__(self, *exc):
        {exit_body}
"""


@pytest.mark.parametrize(
    ("enter_extra", "exit_body", "possible"),
    [
        ("", "self._lock.release()", False),  # the class is the context manager
        ("", "self.other.release()", True),  # __exit__ releases something else
        ("", "(self._lock).release()", True),  # written otherwise: LibCST's deep_equals tells them apart
        ("", "self._lock .release()", True),
        ("\n        self._lock.release()", "self._lock.release()", True),  # __enter__ releases too
        ("", "pass", True),
    ],
)
def test_could_fire_leaves_an_acquire_its_exit_releases(enter_extra: str, exit_body: str, possible: bool) -> None:
    code = ENTERED_AND_EXITED.format(enter_extra=enter_extra, exit_body=exit_body)
    assert ManualAcquireRelease.could_fire(ast.parse(code)) is possible
    if not possible:  # the visitor agrees
        assert run_rules(code, (ManualAcquireRelease,), unsafe=True).findings == []
