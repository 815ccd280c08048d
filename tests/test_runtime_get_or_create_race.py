"""Runtime proof for UL301's two-statement form: concurrent get-or-create crashes before `unleak apply`, not after."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import ExampleCopy


def test_get_or_create_requests_crash_before_and_share_one_row_after_apply(tmp_path: Path) -> None:
    example = ExampleCopy.of("get_or_create_race", "tags.py", tmp_path)

    before = example.run()
    assert before.returncode == 1, before.stderr
    assert before.stdout == "1 of 4 requests got tag id 1\n3 of 4 requests got IntegrityError\ntag rows: 1\n"

    example.apply_fixes()
    assert "            db.rollback()\n            tag = db.query(Tag).filter(Tag.name == name).first()\n" in example.program.read_text(encoding="utf-8")

    after = example.run()
    assert after.returncode == 0, after.stderr
    assert after.stdout == "4 of 4 requests got tag id 1\ntag rows: 1\n"
