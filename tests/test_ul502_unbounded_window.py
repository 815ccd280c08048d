"""UL502 unbounded-window: cases beyond the embedded examples."""

from __future__ import annotations

import textwrap

import pytest

from tests.helpers import run_rules
from unleak.transforms.ul502_unbounded_window import UnboundedWindow

RULES = (UnboundedWindow,)


def findings(code: str) -> list[tuple[int, str]]:
    result = run_rules(textwrap.dedent(code).lstrip("\n"), RULES, unsafe=True)
    assert result.error is None, result.error
    assert result.fixed is None, "UL502 only reports"
    return [(finding.line, finding.message) for finding in result.findings]


def window(creation: str, prune: str = "while self.hits and self.hits[0] < now - 60:") -> str:
    return f"""
        import collections
        import time
        from collections import deque

        class Limiter:
            def __init__(self, limit=60):
                self.limit = limit
                self.hits = {creation}

            def hit(self):
                now = time.monotonic()
                self.hits.append(now)

            def prune(self, now):
                {prune}
                    self.hits.popleft()
        """


@pytest.mark.parametrize("creation", ["deque()", "collections.deque()", "deque([])", "deque(maxlen=None)", "deque((), None)"])
def test_unbounded_creations_are_reported_at_the_deque(creation: str) -> None:
    assert findings(window(creation)) == [
        (
            8,
            "`self.hits` is a sliding window in a `deque()` without `maxlen`: only the code that prunes it bounds it, "
            "and when that code stops running it grows without limit; use `deque(maxlen=...)` or another bounded structure",
        )
    ]


@pytest.mark.parametrize("creation", ["deque(maxlen=limit)", "deque([], limit)", "collections.deque((), maxlen=1000)", "[]"])
def test_bounded_or_other_containers_are_left_alone(creation: str) -> None:
    assert findings(window(creation)) == []


@pytest.mark.parametrize(
    "prune",
    [
        "while self.hits and self.hits[0] < now - 60:",
        "while len(self.hits) > self.limit:",
        "if now - self.hits[0] >= 60:",
        "if time.time() - self.started > 60:",
    ],
)
def test_pruning_by_time_or_size_is_a_window(prune: str) -> None:
    assert len(findings(window("deque()", prune))) == 1


@pytest.mark.parametrize(
    "prune",
    [
        "while self.hits:",
        "if len(self.hits) > 0:",
        "while 0 < len(self.hits):",
        "if self.count > 10:",  # a comparison, but of neither the window nor the clock
        "for _ in range(3):",
    ],
)
def test_popping_while_not_empty_is_a_queue(prune: str) -> None:
    assert findings(window("deque()", prune)) == []


def test_one_unconditional_pop_makes_it_a_queue() -> None:
    code = window("deque()") + textwrap.indent(
        textwrap.dedent(
            """
            def oldest(self):
                return self.hits.popleft()
            """
        ),
        " " * 12,
    )
    assert findings(code) == []


def test_a_later_reassignment_with_maxlen_bounds_it() -> None:
    code = window("deque()") + textwrap.indent(
        textwrap.dedent(
            """
            def reset(self):
                self.hits = deque(maxlen=self.limit)
            """
        ),
        " " * 12,
    )
    assert findings(code) == []


def test_a_reassignment_to_none_or_another_unbounded_deque_does_not_hide_it() -> None:
    code = window("deque()") + textwrap.indent(
        textwrap.dedent(
            """
            def close(self):
                self.hits = None

            def compact(self, cutoff):
                self.hits = deque(t for t in self.hits if t >= cutoff)
            """
        ),
        " " * 12,
    )
    assert [line for line, _ in findings(code)] == [8]


def test_never_appended_or_never_pruned_is_not_a_window() -> None:
    never_appended = window("deque()").replace("self.hits.append(now)", "self.last = now")
    never_pruned = window("deque()").replace("self.hits.popleft()", "self.hits.clear()")
    assert findings(never_appended) == []
    assert findings(never_pruned) == []


def test_self_is_resolved_not_guessed() -> None:
    code = """
        from collections import deque

        class Limiter:
            def __init__(self):
                self.hits = deque()

            def hit(self, now):
                self.hits.append(now)

            @staticmethod
            def prune(self, now):
                while self.hits and self.hits[0] < now - 60:
                    self.hits.popleft()

        class Other:
            def prune(other, limiter, now):
                while limiter.hits and limiter.hits[0] < now - 60:
                    limiter.hits.popleft()
        """
    # the pruning is not in an instance method of the class that owns the deque: nothing proves a window
    assert findings(code) == []


def test_a_deque_that_is_not_collections_deque_is_ignored() -> None:
    assert findings(window("deque()").replace("from collections import deque", "from mylib import deque")) == []


def test_windows_of_a_nested_class_and_a_closure_are_found() -> None:
    code = """
        import time
        from collections import deque

        class Outer:
            class Window:
                def __init__(self):
                    self.stamps = deque()

                def add(self):
                    self.stamps.extend([time.monotonic()])

                def start_pruning(self, loop):
                    def prune():
                        while self.stamps and time.monotonic() - self.stamps[0] > 5:
                            self.stamps.popleft()
                    loop.call_later(5, prune)
        """
    assert [line for line, _ in findings(code)] == [7]
