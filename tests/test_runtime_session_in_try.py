"""Runtime proof for UL203 on a real SQLite file database: the examples fail before `unleak apply`, not after."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import ExampleCopy


def test_failing_session_factory_surfaces_its_own_error_after_apply(tmp_path: Path) -> None:
    example = ExampleCopy.of("session_in_try", "factory_fails.py", tmp_path)

    source = example.fails_then_works_after_apply(
        failing=(
            "handler: database error, re-raising\n"
            "caller sees UnboundLocalError: cannot access local variable 'db' where it is not associated with a value\n"
            "the database error is only in __context__: OperationalError\n"
        ),
        working="caller sees the database error: OperationalError: unable to open database file\n",
    )
    assert "    db = open_session()\n    try:\n        return db.execute(" in source


def test_failed_transaction_is_rolled_back_before_the_handler_writes_after_apply(tmp_path: Path) -> None:
    example = ExampleCopy.of("session_in_try", "pending_transaction.py", tmp_path)

    source = example.fails_then_works_after_apply(
        failing=(
            "batch 1: imported ['bolt', 'nut']\n"
            "batch 2: recording the failure failed: database is locked\n"
        ),
        working=(
            "batch 1: imported ['bolt', 'nut']\n"
            "batch 2: rejected, failure recorded\n"
            "batch 3: imported ['gear']\n"
            "items: ['bolt', 'nut', 'gear']\n"
            "failures: [(2, \"invalid names ['bad name!']\")]\n"
        ),
    )
    handler = "    except ValueError as error:\n        db.rollback()\n        record_failure(batch, str(error))\n"
    assert handler in source


def test_fastapi_get_db_dependency_surfaces_the_database_error_after_apply(tmp_path: Path) -> None:
    example = ExampleCopy.of("fastapi_get_db", "app.py", tmp_path)

    source = example.fails_then_works_after_apply(
        failing=(
            "the request failed with UnboundLocalError: cannot access local variable 'db' where it is not associated with a value\n"
            "the database error is only in __context__: OperationalError\n"
        ),
        working="the request failed with the database error: OperationalError\n",
    )
    assert "def get_db():\n    db = SessionLocal()\n    try:\n        yield db\n    finally:\n        db.close()\n" in source
