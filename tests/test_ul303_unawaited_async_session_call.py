"""UL303 unawaited-async-session-call: cases beyond the embedded examples, and generated variants."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.helpers import fixed_text, run_rules
from unleak.cli import app
from unleak.knowledge.project import ProjectView
from unleak.settings import Settings
from unleak.transforms.ul303_unawaited_async_session_call import COROUTINE_METHODS, UnawaitedAsyncSessionCall

RULES = (UnawaitedAsyncSessionCall,)


def fixed(code: str) -> str:
    return fixed_text(run_rules(textwrap.dedent(code).lstrip("\n"), RULES))


FIXES = [
    pytest.param(
        """
        async def delete_item(item_id: int, db: Annotated[AsyncSession, Depends(get_db)]):
            item = await db.get(Item, item_id)
            db.delete(item)
            db.commit()
        """,
        """
        async def delete_item(item_id: int, db: Annotated[AsyncSession, Depends(get_db)]):
            item = await db.get(Item, item_id)
            await db.delete(item)
            await db.commit()
        """,
        id="fastapi-annotated-dependency",
    ),
    pytest.param(
        """
        from app.db import AsyncSessionLocal

        async def purge(ids):
            async with AsyncSessionLocal() as session:
                result = session.execute(select(Item).where(Item.id.in_(ids)))
                for item in result.scalars():
                    session.delete(item)
                session.commit()
        """,
        """
        from app.db import AsyncSessionLocal

        async def purge(ids):
            async with AsyncSessionLocal() as session:
                result = await session.execute(select(Item).where(Item.id.in_(ids)))
                for item in result.scalars():
                    await session.delete(item)
                await session.commit()
        """,
        id="async-with-a-named-factory-and-a-result-used-as-receiver",
    ),
    pytest.param(
        """
        from sqlalchemy.ext.asyncio import AsyncSession as AS

        async def touch(engine, user):
            session = AS(engine)
            session.refresh(user)
            count = session.scalar(select(func.count())).real
            session.close()
        """,
        """
        from sqlalchemy.ext.asyncio import AsyncSession as AS

        async def touch(engine, user):
            session = AS(engine)
            await session.refresh(user)
            count = (await session.scalar(select(func.count()))).real
            await session.close()
        """,
        id="async-session-class-by-qualified-name",
    ),
    pytest.param(
        """
        async def save(session: "sqlalchemy.ext.asyncio.AsyncSession", user):
            session.add(user)
            session.flush()
        """,
        """
        async def save(session: "sqlalchemy.ext.asyncio.AsyncSession", user):
            session.add(user)
            await session.flush()
        """,
        id="string-annotation-and-add-left-alone",
    ),
]


@pytest.mark.parametrize(("before", "after"), FIXES)
def test_fixes_exactly(before: str, after: str) -> None:
    expected = textwrap.dedent(after).lstrip("\n")
    assert fixed(before) == expected
    assert fixed(expected) == expected


LEFT_ALONE = [
    pytest.param("async def f(session: AsyncSession, x):\n    session.add(x)\n    session.add_all([x])\n    session.expunge(x)\n", id="add-is-not-a-coroutine"),
    pytest.param("async def f(session: Session, x):\n    session.delete(x)\n    session.commit()\n", id="sync-session-annotation"),
    pytest.param("async def f(x):\n    with SessionLocal() as session:\n        session.commit()\n", id="sync-with"),
    pytest.param(
        "from sqlalchemy.orm import sessionmaker\n\nSessionLocal = sessionmaker()\n\n\nasync def f():\n    session = SessionLocal()\n    session.commit()\n",
        id="sync-factory-in-the-module",
    ),
    pytest.param("async def f():\n    session = SessionLocal()\n    session.commit()\n", id="named-factory-without-async-with"),
    pytest.param("async def f(session: AsyncSession):\n    def later():\n        session.commit()\n", id="nested-sync-function"),
    pytest.param("async def f(session: AsyncSession):\n    await asyncio.gather(session.commit())\n    asyncio.create_task(session.close())\n", id="coroutine-passed-on"),
    pytest.param("async def f(session: AsyncSession):\n    return session.commit()\n", id="coroutine-returned"),
    pytest.param("async def f(session: AsyncSession):\n    pending = session.commit()\n    await pending\n", id="coroutine-stored-and-awaited"),
    pytest.param("async def f(self):\n    self.session.commit()\n", id="attribute-receiver"),
    pytest.param("async def f(session: AsyncSession, other):\n    if other:\n        session = other\n    session.commit()\n", id="rebound-to-something-unknown"),
    pytest.param("async def f(session: AsyncSession):\n    await session.commit()\n    (await session.execute(q)).scalars()\n", id="already-awaited"),
    pytest.param("async def f(cache: AsyncSession):\n    g = lambda: cache.close()\n", id="lambda"),
    pytest.param("def f(session: AsyncSession):\n    session.commit()\n", id="sync-def"),
    pytest.param("async def f(url):\n    async with aiohttp.ClientSession() as session:\n        session.close()\n", id="http-client-session"),
    pytest.param("async def f(session: AsyncSession, k):\n    row = session.get(M, k)\n    return row\n", id="assigned-only-returned"),
    pytest.param("async def f(session: AsyncSession, k):\n    row = session.get(M, k)\n    if not row:\n        log(row)\n", id="assigned-and-passed-on"),
    pytest.param("async def f(session: AsyncSession, k):\n    row = session.get(M, k)\n    if row == other:\n        pass\n", id="assigned-compared-otherwise"),
    pytest.param("async def f():\n    for db in get_async_db():\n        db.commit()\n", id="sync-for"),
    pytest.param("async def f():\n    async for db in stream():\n        db.commit()\n", id="async-for-not-a-session-factory"),
    pytest.param("async def f():\n    async for db in get_db():\n        db.commit()\n", id="async-for-may-yield-a-sync-session"),
]


@pytest.mark.parametrize("code", LEFT_ALONE)
def test_leaves_alone(code: str) -> None:
    result = run_rules(code, RULES)
    assert result.findings == [] and fixed_text(result) == code


def test_async_sessionmaker_from_another_module_is_known_through_the_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("pyproject.toml").write_text("[tool.unleak]\n")
    Path("app").mkdir()
    Path("app/__init__.py").write_text("")
    Path("app/database.py").write_text(
        "from sqlalchemy.ext.asyncio import async_sessionmaker\nfrom sqlalchemy.orm import sessionmaker\n\n"
        "make = async_sessionmaker(engine)\nmake_sync = sessionmaker(engine)\n"
    )
    jobs = Path("app/jobs.py")
    jobs.write_text(
        "from app.database import make, make_sync\n\n\nasync def run(item):\n"
        "    session = make()\n    session.delete(item)\n    other = make_sync()\n    other.commit()\n"
    )
    result = CliRunner().invoke(app, ["apply", "--select", "UL303", "."])
    assert result.exit_code == 0, result.output
    assert jobs.read_text().endswith("    await session.delete(item)\n    other = make_sync()\n    other.commit()\n")


@pytest.mark.parametrize(
    ("code", "possible"),
    [
        ("async def f(s):\n    s.commit()\n", True),
        ("async def f(s):\n    x = s.execute(q).all()\n", True),
        ("async def f(s):\n    await s.commit()\n", False),
        ("def f(s):\n    s.commit()\n", False),
        ("async def f(s):\n    s.add(x)\n", False),
        ("async def f(s):\n    def g():\n        s.commit()\n", False),
    ],
)
def test_could_fire_needs_an_unawaited_coroutine_method_in_an_async_def(code: str, possible: bool) -> None:
    assert UnawaitedAsyncSessionCall.could_fire(ast.parse(code)) is possible


@pytest.mark.parametrize(
    ("code", "possible"),
    [
        ("async def f(s: AsyncSession):\n    s.get(User, 1)\n", True),
        ("async def f(s: 'AsyncSession'):\n    s.close()\n", True),
        ("async def f():\n    async with factory() as s:\n        s.commit()\n", True),
        ("async def f():\n    s = factory()\n    s.flush()\n", True),
        ("async def f():\n    s.commit()\n", True),  # bound outside the function: may be one
        ("async def f(data: dict):\n    data.get(key)\n", False),
        ("async def f():\n    data = {}\n    data.get(key)\n", False),
        ("async def f():\n    row = await fetch()\n    row.get(key)\n", False),
    ],
)
def test_could_fire_needs_a_receiver_that_may_be_an_async_session(code: str, possible: bool) -> None:
    """dict's `get` and a stream's `close` are everywhere in async code: the gate lets through
    only a name bound in a way `_binds_async_session` could accept."""
    assert UnawaitedAsyncSessionCall.could_fire(ast.parse(code)) is possible


@pytest.mark.parametrize(
    ("code", "possible"),
    [
        ("async def f(s: AsyncSession):\n    log(s.get(M, 1))\n", False),  # the coroutine is passed on
        ("async def f(s: AsyncSession):\n    a = b = s.get(M, 1)\n", False),
        ("async def f(s: AsyncSession):\n    row = s.get(M, 1)\n", True),
        ("async def f(s: AsyncSession):\n    s.info = {}\n    s.commit()\n", True),  # not a binding of `s`
        ("async def f(s: AsyncSession):\n    s += 1\n    s.commit()\n", False),
        ("async def f():\n    with SessionLocal() as s:\n        s.commit()\n", False),
        ("async def f():\n    async with pool.acquire() as s:\n        s.execute(q)\n", True),  # any project: `pool.acquire` may be a factory
        ("async def f():\n    async with AsyncSessionLocal() as s:\n        s.execute(q)\n", True),
        ("async def f():\n    a, s = make()\n    s.flush()\n", False),
        ("async def f():\n    for s in sessions():\n        s.flush()\n", False),
        ("async def f():\n    async for s in stream():\n        s.flush()\n", True),  # any project
        ("from aiohttp import web\n\nasync def f():\n    web.get(url)\n", False),
        ("NAMES = {}\n\nasync def f():\n    NAMES.get(key)\n", False),
        ("async def outer(s: AsyncSession):\n    async def inner():\n        s.commit()\n", True),
        ("async def outer(s: dict):\n    async def inner():\n        s.get(k)\n", False),
        ("async def f(s: AsyncSession):\n    [t.commit() for t in others]\n    s.commit()\n", True),
    ],
)
def test_could_fire_asks_what_the_visitor_asks(code: str, possible: bool) -> None:
    """Where the coroutine goes, how every binding in the frame makes the name, and for a name
    the frame does not bind, how the module binds it."""
    assert UnawaitedAsyncSessionCall.could_fire(ast.parse(code)) is possible


@pytest.mark.parametrize(
    ("code", "possible"),
    [
        ("async def f():\n    s = make()\n    s.flush()\n", False),
        ("async def f():\n    async with aiohttp.ClientSession() as s:\n        s.get(url)\n", False),
        ("async def f():\n    async with pool.acquire() as s:\n        s.execute(q)\n", False),
        ("async def f():\n    async for s in stream():\n        s.flush()\n", False),
        ("async def f():\n    async for s in get_async_db():\n        s.flush()\n", True),
        ("from sqlalchemy.ext.asyncio import AsyncSession as AS\n\nasync def f(e):\n    s = AS(e)\n    s.close()\n", True),
    ],
)
def test_could_fire_in_asks_the_project_about_factories(code: str, possible: bool) -> None:
    """An empty index knows no factory: only the class and the names the visitor takes alone pass."""
    assert UnawaitedAsyncSessionCall.could_fire_in(ast.parse(code), Settings(), ProjectView.empty()) is possible


@st.composite
def programs(draw: st.DrawFn) -> tuple[str, int]:
    binding = draw(st.sampled_from(("param", "async-with")))
    methods = draw(st.lists(st.sampled_from(sorted(COROUTINE_METHODS - {"connection"})), min_size=1, max_size=4))
    awaited = [draw(st.booleans()) for _ in methods]
    lines = [f"{'await ' if done else ''}session.{method}(x)" for method, done in zip(methods, awaited)]
    lines.insert(draw(st.integers(0, len(lines))), "session.add(x)")
    if binding == "param":
        code = "async def work(session: AsyncSession, x):\n" + "".join(f"    {line}\n" for line in lines)
    else:
        code = "async def work(x):\n    async with AsyncSessionLocal() as session:\n" + "".join(f"        {line}\n" for line in lines)
    return code, awaited.count(False)


@settings(max_examples=40, deadline=None)
@given(programs())
def test_generated_variants_compile_are_idempotent_and_await_every_coroutine(program: tuple[str, int]) -> None:
    code, missing = program
    result = fixed(code)
    tree = ast.parse(result)
    compile(tree, "example.py", "exec")
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)]
    awaited = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Await)}
    assert all((id(call) in awaited) == (call.func.attr != "add") for call in calls)
    assert result.count("await ") == code.count("await ") + missing
    assert fixed(result) == result


def test_the_written_out_trigger_names_every_coroutine_method() -> None:
    import re

    from unleak.transforms.ul303_unawaited_async_session_call import COROUTINE_METHODS, UnawaitedAsyncSessionCall

    called = re.compile(UnawaitedAsyncSessionCall.trigger[1])
    assert all(called.search(f"session.{name}(x)".encode()) for name in COROUTINE_METHODS)
    assert not called.search(b"session.add(x)")


def test_a_row_tested_for_none_and_returned_is_awaited() -> None:
    """A coroutine is always true and never None: `if not obj:` means the code expects the row."""
    code = (
        "async def read(_id: int, db: AsyncSession = Depends(get_db)):\n    obj = db.get(Item, _id)\n"
        "    if not obj:\n        raise NotFound()\n    if obj is None:\n        raise NotFound()\n"
        "    check(obj.owner)\n    return obj\n"
    )
    assert fixed(code) == code.replace("obj = db.get(Item, _id)", "obj = await db.get(Item, _id)")


def test_async_for_over_a_session_generator_binds_an_async_session() -> None:
    code = "async def hook(user):\n    async for db in get_async_db():\n        db.add(user)\n        db.commit()\n"
    assert fixed(code) == code.replace("        db.commit()", "        await db.commit()")
