"""UL203 session-created-in-try: cases beyond the embedded examples, and generated variants."""

from __future__ import annotations

import ast
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import fixed_text, run_rules
from unleak.transforms.ul203_session_created_in_try import SessionCreatedInTry

RULES = (SessionCreatedInTry,)


def _fix(code: str) -> str:
    return fixed_text(run_rules(textwrap.dedent(code), RULES))


def _codes(code: str) -> list[str]:
    return [finding.rule for finding in run_rules(textwrap.dedent(code), RULES, fixing=False).findings]


CHANGED = {
    "comments kept, several handlers, re-raising and rolling-back ones left alone": (
        """
        from sqlalchemy.orm import sessionmaker

        SessionLocal = sessionmaker(bind=engine)

        def save(item):
            # write the item
            try:  # one transaction
                # a fresh session
                db = SessionLocal()  # from the pool

                db.add(item)
                db.commit()
            except KeyError:
                # say it and move on
                log("missing key")
            except ValueError:
                log("bad value")
                raise
            except TypeError:
                log("bad type")
                db.rollback()
            except Exception as error:
                return error
            finally:
                db.close()
        """,
        """
        from sqlalchemy.orm import sessionmaker

        SessionLocal = sessionmaker(bind=engine)

        def save(item):
            # write the item
            # a fresh session
            db = SessionLocal()  # from the pool
            try:  # one transaction
                db.add(item)
                db.commit()
            except KeyError:
                db.rollback()
                # say it and move on
                log("missing key")
            except ValueError:
                log("bad value")
                raise
            except TypeError:
                log("bad type")
                db.rollback()
            except Exception as error:
                db.rollback()
                return error
            finally:
                db.close()
        """,
    ),
    "async session by name, awaited close and rollback": (
        """
        async def handle(event):
            try:
                session = AsyncSessionLocal()
                session.add(Event(event))
                await session.commit()
            except Exception:
                pass
            finally:
                await session.close()
        """,
        """
        async def handle(event):
            session = AsyncSessionLocal()
            try:
                session.add(Event(event))
                await session.commit()
            except Exception:
                await session.rollback()
            finally:
                await session.close()
        """,
    ),
    "Session class through an alias, no handlers: only the move": (
        """
        from sqlalchemy.orm import Session as OrmSession

        def count(engine):
            try:
                db = OrmSession(engine)
                return count_rows(db)
            finally:
                db.close()
        """,
        """
        from sqlalchemy.orm import Session as OrmSession

        def count(engine):
            db = OrmSession(engine)
            try:
                return count_rows(db)
            finally:
                db.close()
        """,
    ),
    "annotated creation at module level": (
        """
        try:
            db: Session = get_session()
            db.execute(MIGRATION)
        except OperationalError:
            print("skipped")
        finally:
            db.close()
        """,
        """
        db: Session = get_session()
        try:
            db.execute(MIGRATION)
        except OperationalError:
            db.rollback()
            print("skipped")
        finally:
            db.close()
        """,
    ),
    "session created before the try, handler raising on one path only": (
        """
        def sync(rows):
            db = SessionLocal()
            log("syncing")
            try:
                db.add_all(rows)
                db.commit()
            except Exception as error:
                if fatal(error):
                    raise
            finally:
                db.close()
        """,
        """
        def sync(rows):
            db = SessionLocal()
            log("syncing")
            try:
                db.add_all(rows)
                db.commit()
            except Exception as error:
                db.rollback()
                if fatal(error):
                    raise
            finally:
                db.close()
        """,
    ),
    "nested in an if, in a handler of another try": (
        """
        def job(flag):
            try:
                prepare()
            except Exception:
                if flag:
                    try:
                        db = SessionLocal()
                        db.merge(Failure())
                        db.commit()
                    except Exception: note()
                    finally:
                        db.close()
        """,
        """
        def job(flag):
            try:
                prepare()
            except Exception:
                if flag:
                    db = SessionLocal()
                    try:
                        db.merge(Failure())
                        db.commit()
                    except Exception: db.rollback(); note()
                    finally:
                        db.close()
        """,
    ),
    "used after the try, with an else clause": (
        """
        def rename(user_id, name):
            try:
                db = SessionLocal()
                user = db.get(User, user_id)
                user.name = name
                db.commit()
            except LookupError:
                return None
            else:
                audit(user)
            finally:
                db.close()
            return db.info
        """,
        """
        def rename(user_id, name):
            db = SessionLocal()
            try:
                user = db.get(User, user_id)
                user.name = name
                db.commit()
            except LookupError:
                db.rollback()
                return None
            else:
                audit(user)
            finally:
                db.close()
            return db.info
        """,
    ),
    "a lone pass is replaced, a commented one kept": (
        """
        def save(item):
            db = SessionLocal()
            try:
                db.add(item)
                db.commit()
            except KeyError: pass
            except ValueError:
                pass  # expected
            finally:
                db.close()
        """,
        """
        def save(item):
            db = SessionLocal()
            try:
                db.add(item)
                db.commit()
            except KeyError: db.rollback()
            except ValueError:
                db.rollback()
                pass  # expected
            finally:
                db.close()
        """,
    ),
    "in a loop without handlers the move is safe": (
        """
        def drain(queue):
            while queue:
                try:
                    db = SessionLocal()
                    db.execute(queue.pop())
                    db.commit()
                finally:
                    db.close()
        """,
        """
        def drain(queue):
            while queue:
                db = SessionLocal()
                try:
                    db.execute(queue.pop())
                    db.commit()
                finally:
                    db.close()
        """,
    ),
}


@pytest.mark.parametrize(("before", "after"), CHANGED.values(), ids=CHANGED.keys())
def test_rewrites_exactly_and_is_idempotent(before: str, after: str) -> None:
    fixed = _fix(before)
    assert fixed == textwrap.dedent(after)
    again = run_rules(fixed, RULES)
    assert again.fixed is None and again.findings == []


REPORTED_ONLY = {
    "handler uses the session": """
        def save(item):
            try:
                db = SessionLocal()
                db.add(item)
                db.commit()
            except IntegrityError:
                db.commit()
            finally:
                db.close()
        """,
    "creation shares its line": """
        def save(item):
            try:
                db = SessionLocal(); db.add(item)
                db.commit()
            finally:
                db.close()
        """,
    "the try only creates the session": """
        from sqlalchemy.orm import Session

        def touch(engine):
            try:
                db = Session(engine)
            except Exception:
                log("no database")
            finally:
                db.close()
        """,
    "a for loop with handlers": """
        def run(jobs):
            for job in jobs:
                try:
                    db = SessionLocal()
                    db.execute(job)
                except Exception:
                    continue
                finally:
                    db.close()
        """,
}


@pytest.mark.parametrize("code", REPORTED_ONLY.values(), ids=REPORTED_ONLY.keys())
def test_reported_without_a_fix(code: str) -> None:
    assert _codes(code) == ["UL203"]
    assert run_rules(textwrap.dedent(code), RULES).fixed is None


UNTOUCHED = {
    "a session-like name that never runs a transaction": """
        def load():
            try:
                s = get_session()
                return process(s)
            except Exception:
                return None
            finally:
                s.close()
        """,
    "aiohttp client session": """
        import aiohttp

        async def fetch(url):
            try:
                session = aiohttp.ClientSession()
                return await (await session.get(url)).text()
            except Exception:
                return ""
            finally:
                await session.close()
        """,
    "name assigned twice": """
        def save(item):
            db = None
            try:
                db = SessionLocal()
                db.add(item)
            except Exception:
                log("failed")
            finally:
                db.close()
        """,
    "finally closes something else": """
        def save(item):
            try:
                db = SessionLocal()
                db.add(item)
            except Exception:
                log("failed")
            finally:
                other.close()
        """,
    "close guarded in finally": """
        def save(item):
            try:
                db = SessionLocal()
                db.add(item)
            except Exception:
                log("failed")
            finally:
                if db is not None:
                    db.close()
        """,
    "no finally": """
        def save(item):
            try:
                db = SessionLocal()
                db.add(item)
                db.close()
            except Exception:
                log("failed")
        """,
    "with statement": """
        def save(item):
            try:
                with SessionLocal() as db:
                    db.add(item)
                    db.commit()
            except Exception:
                log("failed")
        """,
    "created before, no handlers": """
        def save(item):
            db = SessionLocal()
            try:
                db.add(item)
                db.commit()
            finally:
                db.close()
        """,
    "created before, handler re-raises something else": """
        def save(item):
            db = SessionLocal()
            try:
                db.add(item)
                db.commit()
            except Exception as error:
                raise SaveError(item) from error
            finally:
                db.close()
        """,
    "creation is not the try's first statement": """
        def save(item):
            try:
                log("saving")
                db = SessionLocal()
                db.add(item)
            finally:
                db.close()
        """,
    "async kind closed without await": """
        from sqlalchemy.ext.asyncio import AsyncSession

        def save(engine, item):
            try:
                db = AsyncSession(engine)
                db.add(item)
            except Exception:
                pass
            finally:
                db.close()
        """,
    "created in another block": """
        def save(item, flag):
            if flag:
                db = SessionLocal()
            try:
                db.add(item)
            except Exception:
                pass
            finally:
                db.close()
        """,
    "the session is a different name than the closed one": """
        def save(item):
            try:
                db = SessionLocal()
                db.add(item)
            except Exception:
                pass
            finally:
                session.close()
        """,
}


@pytest.mark.parametrize("code", UNTOUCHED.values(), ids=UNTOUCHED.keys())
def test_leaves_alone(code: str) -> None:
    result = run_rules(textwrap.dedent(code), RULES)
    assert result.error is None
    assert result.findings == [] and result.fixed is None


def test_could_fire_needs_a_try_closing_a_created_name() -> None:
    assert SessionCreatedInTry.could_fire(ast.parse("try:\n    db = SessionLocal()\nfinally:\n    db.close()\n"))
    assert SessionCreatedInTry.could_fire(
        ast.parse("db = SessionLocal()\ntry:\n    db.add(x)\nexcept E:\n    pass\nfinally:\n    db.close()\n")
    )
    lone = "db = SessionLocal()\ntry:\n    db.add(x)\nfinally:\n    db.close()\n"
    assert not SessionCreatedInTry.could_fire(ast.parse(lone))
    assert not SessionCreatedInTry.could_fire(ast.parse("try:\n    db = SessionLocal()\nfinally:\n    other.close()\n"))
    late = "try:\n    x()\n    db = SessionLocal()\nfinally:\n    db.close()\n"
    assert not SessionCreatedInTry.could_fire(ast.parse(late))


def test_could_fire_needs_a_session_like_call_or_an_orm_import() -> None:
    other = "try:\n    f = open_fixture(p)\n    f.read()\nfinally:\n    f.close()\n"
    assert not SessionCreatedInTry.could_fire(ast.parse(other))
    assert SessionCreatedInTry.could_fire(ast.parse("from sqlalchemy.orm import Session as S\n" + other))
    assert SessionCreatedInTry.could_fire(ast.parse("import sqlmodel\n" + other))
    assert SessionCreatedInTry.could_fire(ast.parse(other.replace("open_fixture", "get_db_session")))


def test_does_not_conflict_with_ul202() -> None:
    from unleak.transforms.ul202_unmanaged_resource import UnmanagedResource

    code = CHANGED["session created before the try, handler raising on one path only"]
    both = run_rules(textwrap.dedent(code[0]), (UnmanagedResource, SessionCreatedInTry))
    assert fixed_text(both) == textwrap.dedent(code[1])


# --- generated variants ------------------------------------------------------------------------

FACTORIES = {
    "SessionLocal()": ("from sqlalchemy.orm import sessionmaker\n\nSessionLocal = sessionmaker()\n\n", False),
    "get_session()": ("", False),
    "Session(engine)": ("from sqlalchemy.orm import Session\n\n", False),
    "make_session_factory()": ("", False),
    "AsyncSessionLocal()": ("", True),
    "AsyncSession(engine)": ("from sqlalchemy.ext.asyncio import AsyncSession\n\n", True),
}
HANDLERS = {  # body -> whether the rule leaves it alone
    "log('failed')": False,
    "return None": False,
    "pass": False,
    "log('failed')\nraise": True,
    "raise Wrapped() from None": True,
    "{name}.rollback()\nlog('failed')": True,
    "if fatal():\n    raise\nlog('failed')": False,
}
UNRELATED = textwrap.dedent(
    """\
    def unrelated(db):
        try:
            db.add(1)
        except Exception:
            pass
        finally:
            db.close()
    """
)


@st.composite
def programs(draw: st.DrawFn) -> tuple[str, str, bool, int]:
    factory = draw(st.sampled_from(sorted(FACTORIES)))
    header, asynchronous = FACTORIES[factory]
    name = draw(st.sampled_from(("db", "session", "s", "database_session")))
    wait = "await " if asynchronous else ""
    inside = draw(st.booleans())
    uses = [f"{name}.add(Item({i}))" for i in range(draw(st.integers(1, 2)))] + [f"{wait}{name}.commit()"]
    if draw(st.booleans()):
        uses.insert(draw(st.integers(0, len(uses))), "# a comment between statements")
    bodies = draw(st.lists(st.sampled_from(sorted(HANDLERS)), min_size=0 if inside else 1, max_size=3))
    exceptions = ("KeyError", "ValueError", "Exception")
    handlers = [
        f"except {exceptions[i]}:\n" + textwrap.indent(body.replace("{name}.", f"{wait}{name}."), "    ")
        for i, body in enumerate(bodies)
    ]
    creation = f"{name} = {factory}" + ("  # the session" if draw(st.booleans()) else "")
    statement = "\n".join(
        [
            *([] if inside else [creation]),
            "try:",
            *([textwrap.indent(creation, "    ")] if inside else []),
            textwrap.indent("\n".join(uses), "    "),
            *handlers,
            "finally:",
            f"    {wait}{name}.close()",
        ]
    )
    for level in range(draw(st.integers(0, 2))):
        statement = f"if flag{level}:\n" + textwrap.indent(statement, "    ")
    prefix = "async def" if asynchronous else "def"
    code = f"{header}{prefix} work(engine, flag0, flag1):\n" + textwrap.indent(statement, "    ") + "\n\n\n" + UNRELATED
    needs_rollback = sum(not HANDLERS[body] for body in bodies)
    return code, name, inside, needs_rollback


@settings(max_examples=40, deadline=None)
@given(programs())
def test_generated_variants_compile_are_idempotent_and_leave_other_code_alone(
    program: tuple[str, str, bool, int],
) -> None:
    code, name, inside, needs_rollback = program
    fixed = fixed_text(run_rules(code, RULES))
    compile(fixed, "generated.py", "exec")
    assert fixed.endswith(UNRELATED)
    assert fixed.count(f"{name}.rollback()") == code.count(f"{name}.rollback()") + needs_rollback
    changes = inside or needs_rollback > 0
    assert (fixed != code) == changes
    if inside:
        assert ast.dump(ast.parse(fixed).body[-2]).count("Try(") == 1
        assert f"{name} = " in fixed.split("try:")[0]
    again = run_rules(fixed, RULES)
    assert again.fixed is None and again.findings == []


# --- the FastAPI dependency: a session known by its name and yielded -----------------------------


def test_a_yielding_dependency_with_db_none_first_is_left_alone() -> None:
    code = (
        "def get_db():\n"
        "    db = None\n"
        "    try:\n"
        "        db = SessionLocal()\n"
        "        yield db\n"
        "    finally:\n"
        "        if db:\n"
        "            db.close()\n"
    )
    result = run_rules(code, (SessionCreatedInTry,))
    assert result.findings == [] and result.fixed is None


def test_a_yielded_http_client_session_is_not_a_database_session() -> None:
    code = (
        "from aiohttp import ClientSession\n"
        "\n"
        "async def client():\n"
        "    try:\n"
        "        session = ClientSession()\n"
        "        yield session\n"
        "    except Exception:\n"
        "        log.exception('client failed')\n"
        "    finally:\n"
        "        await session.close()\n"
    )
    result = run_rules(code, (SessionCreatedInTry,))
    assert result.findings == [] and result.fixed is None


_BEFORE_THE_TRY = "db = SessionLocal()\ntry:\n    db.add(x)\n    db.commit()\n{handlers}finally:\n    db.close()\n"


@pytest.mark.parametrize(
    ("handlers", "possible"),
    [
        ("except E:\n    log()\n", True),
        ("except E:\n    db.rollback()\n", False),
        ("except E:\n    db.rollback()\n    raise\n", False),
        ("except E:\n    log()\n    raise\n", False),
        ("except E:\n    if x:\n        raise\n", True),  # not among the handler's own statements
        ("except E:\n    other.rollback()\n", True),
        ("except E:\n    [db.rollback() for db in dbs]\n", True),  # another `db`
        ("except E:\n    def later():\n        db.rollback()\n", True),
        ("except E:\n    db.rollback()\nexcept F:\n    log()\n", True),
    ],
)
def test_could_fire_needs_a_handler_that_may_leave_an_earlier_session_open(handlers: str, possible: bool) -> None:
    """Created before the `try`, the session is reported only for a handler `_handler_verdict`
    does not find fine: one that neither rolls it back nor re-raises."""
    assert SessionCreatedInTry.could_fire(ast.parse(_BEFORE_THE_TRY.format(handlers=handlers))) is possible
