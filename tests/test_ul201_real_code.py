"""UL201 on shapes real code writes: locks of unknown origin named like locks (an unsafe fix),
multiprocessing locks, and a release before an early `return` as well as at the end."""

from __future__ import annotations

import textwrap

import pytest

from tests.helpers import fixed_text, run_rules
from unleak.transforms.ul201_manual_acquire_release import ManualAcquireRelease

RULES = (ManualAcquireRelease,)


def _fix(code: str, *, unsafe: bool = False) -> str:
    return fixed_text(run_rules(textwrap.dedent(code), RULES, unsafe=unsafe))


SAFE = {
    # Was a reported-only case ("released in a nested branch too"): the `with` releases at that `return` too.
    "released before an early return and at the end": (
        """
        import threading

        lock = threading.Lock()

        def update(x):
            lock.acquire()
            if x is None:
                lock.release()
                return
            apply(x)
            lock.release()
        """,
        """
        import threading

        lock = threading.Lock()

        def update(x):
            with lock:
                if x is None:
                    return
                apply(x)
        """,
    ),
    "early release in a handler, comment kept above the return": (
        """
        import threading

        class Channel:
            def __init__(self):
                self._lock = threading.Lock()

            def ask(self, request):
                self._lock.acquire()
                self.send(request)
                try:
                    answer = self.receive()
                except TimeoutError:
                    # nothing came back
                    self._lock.release()
                    return False
                self.seen.add(answer)
                self._lock.release()
                return answer
        """,
        """
        import threading

        class Channel:
            def __init__(self):
                self._lock = threading.Lock()

            def ask(self, request):
                with self._lock:
                    self.send(request)
                    try:
                        answer = self.receive()
                    except TimeoutError:
                        # nothing came back
                        return False
                    self.seen.add(answer)
                return answer
        """,
    ),
    "multiprocessing lock": (
        """
        import multiprocessing

        guard = multiprocessing.RLock()

        def bump(shared):
            guard.acquire()
            shared["n"] += 1
            guard.release()
        """,
        """
        import multiprocessing

        guard = multiprocessing.RLock()

        def bump(shared):
            with guard:
                shared["n"] += 1
        """,
    ),
}


@pytest.mark.parametrize(("before", "after"), SAFE.values(), ids=SAFE.keys())
def test_fixes_safely(before: str, after: str) -> None:
    assert _fix(before) == textwrap.dedent(after)
    assert _fix(after) == textwrap.dedent(after)


UNKNOWN_LOCKS = {
    "a parameter named lock": (
        """
        def bump(shared, lock):
            lock.acquire()
            shared["n"] += 1
            lock.release()
        """,
        """
        def bump(shared, lock):
            with lock:
                shared["n"] += 1
        """,
    ),
    "an attribute set by a base class": (
        """
        class Client(Remote):
            def reconnect(self):
                self.write_lock.acquire()
                self.conn = self.connect()
                self.write_lock.release()
        """,
        """
        class Client(Remote):
            def reconnect(self):
                with self.write_lock:
                    self.conn = self.connect()
        """,
    ),
}


@pytest.mark.parametrize(("before", "after"), UNKNOWN_LOCKS.values(), ids=UNKNOWN_LOCKS.keys())
def test_lock_of_unknown_origin_is_fixed_only_with_unsafe(before: str, after: str) -> None:
    result = run_rules(textwrap.dedent(before), RULES)
    assert result.fixed is None
    assert [(finding.rule, finding.safety, finding.applicable) for finding in result.findings] == [("UL201", "unsafe", False)]
    assert _fix(before, unsafe=True) == textwrap.dedent(after)


LEFT_ALONE = {
    "an unknown object not named like a lock": """
        def borrow(pool):
            pool.acquire()
            work()
            pool.release()
        """,
    "named like a lock but made by something else here": """
        lock = make_gate()

        def bump(shared):
            lock.acquire()
            shared["n"] += 1
            lock.release()
        """,
    "a name that only ends like one": """
        def bump(shared, flock):
            flock.acquire()
            shared["n"] += 1
            flock.release()
        """,
}


@pytest.mark.parametrize("code", LEFT_ALONE.values(), ids=LEFT_ALONE.keys())
def test_leaves_alone(code: str) -> None:
    result = run_rules(textwrap.dedent(code), RULES, unsafe=True)
    assert result.fixed is None and not result.findings


NOT_FIXED = {
    "early release before a return that calls": """
        import threading

        lock = threading.Lock()

        def update(x):
            lock.acquire()
            if x is None:
                lock.release()
                return compute()
            apply(x)
            lock.release()
        """,
    "early release inside a try with a finally": """
        import threading

        lock = threading.Lock()

        def update(x):
            lock.acquire()
            try:
                if x is None:
                    lock.release()
                    return
                apply(x)
            finally:
                log()
            lock.release()
        """,
    "early release before a break": """
        import threading

        lock = threading.Lock()

        def update(xs):
            lock.acquire()
            for x in xs:
                if x is None:
                    lock.release()
                    break
            lock.release()
        """,
}


@pytest.mark.parametrize("code", NOT_FIXED.values(), ids=NOT_FIXED.keys())
def test_other_releases_inside_are_reported_without_a_fix(code: str) -> None:
    result = run_rules(textwrap.dedent(code), RULES, unsafe=True)
    assert result.fixed is None
    assert [(finding.rule, finding.fixable) for finding in result.findings] == [("UL201", False)]
