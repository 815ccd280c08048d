"""Runtime proof for UL301's Django form: check-then-create crashes concurrent requests before `unleak apply`, not after."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import ExampleCopy


def test_django_requests_crash_before_and_share_one_row_after_apply(tmp_path: Path) -> None:
    example = ExampleCopy.of("django_get_or_create", "tags.py", tmp_path)

    before = example.run()
    assert before.returncode == 1, before.stderr
    assert before.stdout == "3 of 4 requests crashed with IntegrityError\ntag rows: 1\n"

    example.apply_fixes("--unsafe")
    assert '    Tag.objects.get_or_create(name=name, defaults={"color": lined_up("red")})\n' in example.program.read_text(encoding="utf-8")

    after = example.run()
    assert after.returncode == 0, after.stderr
    assert after.stdout == "all 4 requests got the tag\ntag rows: 1\n"
