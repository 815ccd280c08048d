"""Runtime proof for UL303: an un-awaited `AsyncSession.delete()` deletes nothing before `unleak apply`, and the row after."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import ExampleCopy


def test_expired_tokens_stay_before_and_go_after_apply(tmp_path: Path) -> None:
    example = ExampleCopy.of("unawaited_delete", "cleanup.py", tmp_path)

    before = example.run()
    assert before.returncode == 1, before.stderr
    assert before.stdout == "removing 3 expired tokens\nexpired tokens left: 3\n"

    example.apply_fixes()
    assert "        await session.delete(token)\n" in example.program.read_text(encoding="utf-8")

    after = example.run()
    assert after.returncode == 0, after.stderr
    assert after.stdout == "removing 3 expired tokens\nexpired tokens left: 0\n"
