"""Runtime proof for UL301: check-then-insert races on a real SQLite file before `unleak apply`, not after."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import ExampleCopy


def test_seeding_workers_crash_before_and_all_start_after_apply(tmp_path: Path) -> None:
    seeding = ExampleCopy.of("seeding_race", "seed.py", tmp_path)
    tagging = ExampleCopy(seeding.folder, seeding.folder / "tags.py")

    before = seeding.run()
    assert before.returncode == 1, before.stderr
    assert before.stdout == "3 of 4 workers crashed at start-up with IntegrityError\nadmin rows: 1\n"
    before = tagging.run()
    assert before.returncode == 1, before.stderr
    assert before.stdout == "1 of 2 requests failed with IntegrityError\nnotes saved: 1, tags: 1\n"

    seeding.apply_fixes()
    assert "    try:\n        db.add(User(id=1, email=admin_email()))\n" in seeding.program.read_text(encoding="utf-8")
    assert "        with db.begin_nested():\n" in tagging.program.read_text(encoding="utf-8")

    after = seeding.run()
    assert after.returncode == 0, after.stderr
    assert after.stdout == "all 4 workers started\nadmin rows: 1\n"
    after = tagging.run()
    assert after.returncode == 0, after.stderr
    assert after.stdout == "notes saved: 2, tags: 1\n"
