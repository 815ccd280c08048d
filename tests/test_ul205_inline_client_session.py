"""UL205 on an aiohttp client session made for one call and dropped, never closed."""

from __future__ import annotations

import textwrap

import pytest

from tests.helpers import fixed_text, run_rules
from unleak.transforms.ul205_resource_never_closed import ResourceNeverClosed

RULES = (ResourceNeverClosed,)


def _fix(code: str) -> str:
    return fixed_text(run_rules(textwrap.dedent(code), RULES, unsafe=True))


CHANGED = {
    "response read, text returned": (
        """
        import aiohttp

        async def page(url):
            log(url)
            reply = await aiohttp.ClientSession().get(url)
            body = await reply.text()
            return body
        """,
        """
        import aiohttp

        async def page(url):
            log(url)
            async with aiohttp.ClientSession() as session:
                reply = await session.get(url)
                body = await reply.text()
                return body
        """,
    ),
    "a statement of its own, name taken": (
        """
        from aiohttp import ClientSession

        async def ping(url, session):
            # fire and forget
            await ClientSession().post(url, data=session)
        """,
        """
        from aiohttp import ClientSession

        async def ping(url, session):
            # fire and forget
            async with ClientSession() as client_session:
                await client_session.post(url, data=session)
        """,
    ),
}


@pytest.mark.parametrize(("before", "after"), CHANGED.values(), ids=CHANGED.keys())
def test_inline_session_gets_an_async_with_unsafely(before: str, after: str) -> None:
    result = run_rules(textwrap.dedent(before), RULES)
    assert result.fixed is None
    assert [(finding.rule, finding.safety) for finding in result.findings] == [("UL205", "unsafe")]
    assert _fix(before) == textwrap.dedent(after)
    assert _fix(after) == textwrap.dedent(after)


REPORTED_ONLY = {
    "the response is returned": """
        import aiohttp

        async def page(url):
            return await aiohttp.ClientSession().get(url)
        """,
    "the response is returned later": """
        import aiohttp

        async def page(url):
            reply = await aiohttp.ClientSession().get(url)
            log(reply.status)
            return reply
        """,
}


@pytest.mark.parametrize("code", REPORTED_ONLY.values(), ids=REPORTED_ONLY.keys())
def test_handed_out_responses_are_reported_without_a_fix(code: str) -> None:
    result = run_rules(textwrap.dedent(code), RULES, unsafe=True)
    assert result.fixed is None
    assert [(finding.rule, finding.fixable) for finding in result.findings] == [("UL205", False)]


UNTOUCHED = {
    "sync code": """
        import aiohttp

        def page(url):
            return aiohttp.ClientSession().get(url)
        """,
    "bound to a name (UL202's)": """
        import aiohttp

        async def page(url):
            session = aiohttp.ClientSession()
            reply = await session.get(url)
            return await reply.text()
        """,
    "closed at once": """
        import aiohttp

        async def noop():
            await aiohttp.ClientSession().close()
        """,
    "already managed": """
        import aiohttp

        async def page(url):
            async with aiohttp.ClientSession() as session:
                return await (await session.get(url)).text()
        """,
    "another ClientSession": """
        class ClientSession:
            def get(self, url):
                return url

        async def page(url):
            reply = ClientSession().get(url)
            return reply
        """,
    "made only on one branch": """
        import aiohttp

        async def page(url, session):
            reply = await (session or aiohttp.ClientSession()).get(url)
            return await reply.text()
        """,
}


@pytest.mark.parametrize("code", UNTOUCHED.values(), ids=UNTOUCHED.keys())
def test_leaves_alone(code: str) -> None:
    result = run_rules(textwrap.dedent(code), RULES, unsafe=True)
    assert result.fixed is None and not result.findings
