"""UL206 handler-without-rollback: must-change cases (exact output) and must-not cases."""

from __future__ import annotations

import ast
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import fixed_text, run_rules
from unleak.transforms.ul206_handler_without_rollback import HandlerWithoutRollback

RULES = (HandlerWithoutRollback,)


def fixed(code: str, *, unsafe: bool = False) -> str:
    return fixed_text(run_rules(textwrap.dedent(code).lstrip("\n"), RULES, unsafe=unsafe))


def messages(code: str) -> list[str]:
    result = run_rules(textwrap.dedent(code).lstrip("\n"), RULES, fixing=False)
    return [finding.message for finding in result.findings]


def test_every_swallowing_handler_of_a_tuple_of_database_errors_gets_the_rollback() -> None:
    code = """
        import sqlalchemy.exc as sa_exc

        def save(session, row):
            try:
                session.add(row)
                session.flush()
            except (sa_exc.IntegrityError, sa_exc.DataError) as error:
                log.warning("bad row: %s", error)
            except sa_exc.OperationalError:
                return retry_later(row)
    """
    assert fixed(code) == textwrap.dedent("""
        import sqlalchemy.exc as sa_exc

        def save(session, row):
            try:
                session.add(row)
                session.flush()
            except (sa_exc.IntegrityError, sa_exc.DataError) as error:
                session.rollback()
                log.warning("bad row: %s", error)
            except sa_exc.OperationalError:
                session.rollback()
                return retry_later(row)
    """).lstrip("\n")


def test_a_one_line_handler_and_self_db() -> None:
    code = """
        from sqlalchemy.exc import IntegrityError

        class Store:
            def put(self, row):
                try:
                    self.db.add(row); self.db.commit()
                except IntegrityError: return False
                return True
    """
    assert "except IntegrityError: self.db.rollback(); return False" in fixed(code)


def test_a_broad_handler_is_fixed_only_with_unsafe() -> None:
    code = """
        def save(db, row):
            try:
                db.add(row)
                db.commit()
            except (ValueError, Exception):
                return None
    """
    assert fixed(code) == textwrap.dedent(code).lstrip("\n")
    assert "    except (ValueError, Exception):\n        db.rollback()\n        return None\n" in fixed(code, unsafe=True)


def test_the_fix_is_idempotent() -> None:
    code = """
        from sqlalchemy.exc import IntegrityError

        def save(db, row):
            try:
                db.add(row)
                db.commit()
            except IntegrityError:
                pass
    """
    once = fixed(code)
    assert once.endswith("    except IntegrityError:\n        db.rollback()\n")
    assert fixed(once) == once


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(
            """
            def save(session, row):
                try:
                    session.add(row)
                    session.commit()
                except Exception:
                    cleanup()
                    raise RuntimeError("save failed")
            """,
            id="handler re-raises",
        ),
        pytest.param(
            """
            def save(session, row):
                try:
                    session.add(row)
                    session.commit()
                except Exception:
                    if session.is_active:
                        session.rollback()
            """,
            id="handler rolls back (conditionally)",
        ),
        pytest.param(
            """
            def save(client, row):
                try:
                    client.commit(row)
                except Exception:
                    return None
            """,
            id="a commit on something not named or used like a session",
        ),
        pytest.param(
            """
            def save(session, row):
                try:
                    def later():
                        session.add(row)
                        session.commit()
                    schedule(later)
                except Exception:
                    return None
            """,
            id="the commit runs in a nested function",
        ),
        pytest.param(
            """
            def save(SessionLocal, row):
                with SessionLocal() as db:
                    try:
                        db.add(row)
                        db.commit()
                    except Exception:
                        log.exception("failed")
            """,
            id="leaving the with block closes the session",
        ),
        pytest.param(
            """
            from sqlalchemy.exc import SQLAlchemyError

            def commit(db):
                try:
                    db.commit()
                except Exception as error:
                    if isinstance(error, SQLAlchemyError):
                        raise DatabaseDown() from error
                    else:
                        raise Unexpected() from error
            """,
            id="every path of the handler raises",
        ),
        pytest.param(
            """
            async def add(data):
                try:
                    async with SessionLocal() as session:
                        session.add(Row(**data))
                        await session.commit()
                except Exception:
                    log.exception("failed")
                    return None
            """,
            id="the session's with block inside the try closed it first",
        ),
        pytest.param(
            """
            from metapub import MetaPubError

            def attach(db, item):
                try:
                    item.url = find_pdf(item)
                    db.commit()
                except (MetaPubError, KeyError):
                    item.url = None
            """,
            id="the handler catches only errors a commit does not raise",
        ),
        pytest.param(
            """
            def report(session):
                try:
                    return session.execute(QUERY).all()
                except Exception:
                    return []
            """,
            id="the try only reads",
        ),
    ],
)
def test_must_not_fire(code: str) -> None:
    assert messages(code) == []


def test_a_session_expression_that_is_not_a_name_is_reported_without_a_fix() -> None:
    code = """
        def save(row):
            try:
                get_session().add(row)
                get_session().commit()
            except Exception:
                return None
    """
    assert messages(code) == [
        "`except` handler leaves the session's failed transaction open: roll it back first:"
        " `get_session().rollback()` (not fixed: roll back by hand)"
    ]
    assert fixed(code, unsafe=True) == textwrap.dedent(code).lstrip("\n")


# --- generated variants: names, spellings of the error, handler shapes, comments ----------------

SESSIONS = st.sampled_from(["session", "db", "db_session", "self.session", "self.db"])
ERRORS = st.sampled_from(
    [
        ("from sqlalchemy.exc import IntegrityError", "IntegrityError"),
        ("from sqlalchemy.exc import IntegrityError as Duplicate", "Duplicate"),
        ("from sqlalchemy import exc", "exc.SQLAlchemyError"),
        ("import sqlalchemy", "sqlalchemy.exc.OperationalError"),
        ("import sqlalchemy.exc as sa_exc", "(sa_exc.IntegrityError, sa_exc.DataError)"),
    ]
)
HANDLER_BODIES = st.sampled_from(["pass", "return None", "log.exception('failed')\n{i}return False", "status = 'failed'\n{i}{s}.commit()"])
COMMENTS = st.sampled_from(["", "  # keep going", "  # unleak: ignore[UL401]"])


@settings(max_examples=40, deadline=None)
@given(SESSIONS, ERRORS, HANDLER_BODIES, COMMENTS, st.booleans(), st.booleans())
def test_generated_variants_compile_roll_back_once_and_are_idempotent(
    session: str, error: tuple[str, str], handler_body: str, comment: str, is_async: bool, in_class: bool
) -> None:
    imports, caught = error
    awaited = "await " if is_async else ""
    indent = "        " if in_class or session.startswith("self.") else "    "
    owner = indent[:-4]
    header = f"{owner}{'async ' if is_async else ''}def save({'self, ' if owner else ''}{'' if session.startswith('self.') else session + ', '}row):"
    body = handler_body.replace("{i}", indent + "    ").replace("{s}.commit()", f"{awaited}{session}.commit()")
    lines = [
        imports,
        "",
        *(["class Repository:"] if owner else []),
        header,
        f"{indent}try:",
        f"{indent}    {session}.add(row)",
        f"{indent}    {awaited}{session}.commit(){comment}",
        f"{indent}except {caught}:{comment}",
        f"{indent}    {body}",
        f"{indent}return row",
        "",
    ]
    code = "\n".join(lines)
    once = fixed(code)
    compile(once, "generated.py", "exec")
    rollback = f"{indent}    {awaited}{session}.rollback()\n"
    assert once.count(rollback) == 1
    assert once.replace(rollback, "", 1) == (code if body != "pass" else code.replace(f"{indent}    pass\n", ""))
    assert fixed(once) == once


@pytest.mark.parametrize(
    ("code", "possible"),
    [
        ("try:\n    db.commit()\nexcept Exception:\n    log()\n", True),
        ("try:\n    stream.flush()\nexcept Exception:\n    log()\n", False),  # not a session
        ("try:\n    conn.add(x)\n    conn.commit()\nexcept Exception:\n    log()\n", True),  # a unit of work
        ("try:\n    db.commit()\nexcept ValueError:\n    log()\n", False),  # a failed commit never lands there
        ("from x import ValueError\ntry:\n    db.commit()\nexcept ValueError:\n    log()\n", True),
        ("try:\n    db.commit()\nexcept (KeyError, IntegrityError):\n    log()\n", True),
        ("try:\n    db.commit()\nexcept Exception:\n    db.rollback()\n", False),
        ("try:\n    db.commit()\nexcept Exception:\n    (db).rollback()\n", True),  # spelled otherwise: LibCST tells
        ("try:\n    db.commit()\nexcept Exception:\n    other.rollback()\n", True),
        ("try:\n    db.commit()\nexcept Exception:\n    if x:\n        raise\n", False),
        ("try:\n    db.commit()\nexcept Exception:\n    def later():\n        raise\n", True),
        ("try:\n    db.commit()\nexcept Exception:\n    log()\nfinally:\n    db.close()\n", False),
        ("try:\n    with make() as db:\n        db.commit()\nexcept Exception:\n    log()\n", False),
        ("try:\n    with make() as (db):\n        db.commit()\nexcept Exception:\n    log()\n", True),
        ("try:\n    self.db.commit()\nexcept Exception:\n    self.db.rollback()\n    other.db.commit()\n", False),
    ],
)
def test_could_fire_asks_what_the_visitor_asks(code: str, possible: bool) -> None:
    """A session written in the `try`, a handler that may see its failed commit and neither rolls
    it back nor raises, no `close()` in the `finally`, no `with` inside opening it."""
    assert HandlerWithoutRollback.could_fire(ast.parse(code)) is possible
