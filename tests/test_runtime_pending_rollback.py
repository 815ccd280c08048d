"""Runtime proof for UL206 on a real SQLite file database: the next call fails before `unleak apply`, not after."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import ExampleCopy


def test_swallowed_commit_failure_no_longer_poisons_the_session_after_apply(tmp_path: Path) -> None:
    example = ExampleCopy.of("pending_rollback", "service.py", tmp_path)

    source = example.fails_then_works_after_apply(
        failing=(
            "create 'urgent': ok\n"
            "create 'urgent': already exists\n"
            "create 'billing': PendingRollbackError: the session still holds the failed transaction\n"
        ),
        working="create 'urgent': ok\ncreate 'urgent': already exists\ncreate 'billing': ok\ntags: 2\n",
    )
    assert "        except IntegrityError:\n            self.session.rollback()\n            print(" in source
