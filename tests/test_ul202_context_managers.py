"""UL202 in `@contextmanager` generators: the resource yielded to the caller's `with` block and
closed after the `yield` goes into a `with` around the `yield`."""

from __future__ import annotations

import textwrap

import pytest

from tests.helpers import fixed_text, run_rules
from unleak.transforms.ul202_unmanaged_resource import UnmanagedResource

RULES = (UnmanagedResource,)


def _fix(code: str) -> str:
    return fixed_text(run_rules(textwrap.dedent(code), RULES))


CHANGED = {
    "file yielded by a contextmanager": (
        """
        from contextlib import contextmanager

        @contextmanager
        def opened(path):
            handle = open(path)  # text mode
            yield handle
            handle.close()
        """,
        """
        from contextlib import contextmanager

        @contextmanager
        def opened(path):
            with open(path) as handle:  # text mode
                yield handle
        """,
    ),
    "what a call made of the file, decorator through its module": (
        """
        import contextlib
        import csv

        @contextlib.contextmanager
        def rows(path):
            handle = open(path, newline="")
            yield csv.reader(handle)
            print("read", path)
            handle.close()
        """,
        """
        import contextlib
        import csv

        @contextlib.contextmanager
        def rows(path):
            with open(path, newline="") as handle:
                yield csv.reader(handle)
                print("read", path)
        """,
    ),
    "async client in an asynccontextmanager": (
        """
        from contextlib import asynccontextmanager as acm
        import aiohttp

        @acm
        async def client():
            session = aiohttp.ClientSession()
            yield session
            await session.close()
        """,
        """
        from contextlib import asynccontextmanager as acm
        import aiohttp

        @acm
        async def client():
            async with aiohttp.ClientSession() as session:
                yield session
        """,
    ),
}


@pytest.mark.parametrize(("before", "after"), CHANGED.values(), ids=CHANGED.keys())
def test_contextmanager_generators_get_a_with(before: str, after: str) -> None:
    assert _fix(before) == textwrap.dedent(after)
    assert _fix(after) == textwrap.dedent(after)


UNTOUCHED = {
    "a plain generator": """
        def lines(path):
            handle = open(path)
            yield handle
            handle.close()
        """,
    "a decorator of the same name that is not contextlib's": """
        def contextmanager(function):
            return function

        @contextmanager
        def opened(path):
            handle = open(path)
            yield handle
            handle.close()
        """,
    "yielded and closed in another function": """
        from contextlib import contextmanager

        @contextmanager
        def opened(path):
            handle = open(path)
            yield handle
            finish(handle)

        def finish(handle):
            handle.close()
        """,
    "already closed in a finally": """
        from contextlib import contextmanager

        @contextmanager
        def opened(path):
            handle = open(path)
            try:
                yield handle
            finally:
                handle.close()
        """,
    "the value sent back is bound": """
        from contextlib import contextmanager

        @contextmanager
        def opened(path):
            handle = open(path)
            reply = yield handle
            handle.close()
        """,
    "yielded inside a container": """
        from contextlib import contextmanager

        @contextmanager
        def opened(path):
            handle = open(path)
            yield [handle]
            handle.close()
        """,
    "a nested function of a contextmanager": """
        from contextlib import contextmanager

        @contextmanager
        def opened(path):
            def inner():
                handle = open(path)
                yield handle
                handle.close()
            yield inner
        """,
}


@pytest.mark.parametrize("code", UNTOUCHED.values(), ids=UNTOUCHED.keys())
def test_leaves_alone(code: str) -> None:
    result = run_rules(textwrap.dedent(code), RULES, unsafe=True)
    assert result.fixed is None
