"""Runtime proof for UL202's try/finally kinds: the sqlite3 reports in examples/sqlite_reports
leak a connection per failed query before `unleak apply`, none after."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import ExampleCopy

OUTCOME = "counted users=2 orders=3 invoices=4 orders=3 users=2; 3 failed (no such table: refunds;"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts descriptors in /proc/self/fd (Linux)")
def test_reports_leak_connections_until_unleak_apply(tmp_path: Path) -> None:
    example = ExampleCopy.of("sqlite_reports", "reports.py", tmp_path)

    before = example.run()
    assert before.returncode == 1, before.stdout + before.stderr
    assert OUTCOME in before.stdout
    assert "3 descriptors leaked" in before.stdout

    example.apply_fixes()
    fixed = example.program.read_text(encoding="utf-8")
    assert "    conn = sqlite3.connect(path)\n    try:\n        cur = conn.cursor()\n        try:\n" in fixed
    assert "        finally:\n            cur.close()\n    finally:\n        conn.close()\n" in fixed
    assert "    cur.close()\n    conn.close()\n" not in fixed  # the closes by hand are gone

    after = example.run()
    assert after.returncode == 0, after.stdout + after.stderr
    assert OUTCOME in after.stdout
    assert "0 descriptors leaked" in after.stdout
