"""Runtime proof for UL202 (a file lent to `json.dump`) and UL205 (`json.dump(x, open(p, "w"))`):
on a full disk (`/dev/full`) the writer in examples/disk_full leaks descriptors before `unleak
apply`, none after."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import ExampleCopy

OUTCOME = "saved 6 jobs, 6 failed (No space left on device), 15 files written"


@pytest.mark.skipif(
    not (Path("/proc/self/fd").is_dir() and Path("/dev/full").exists()),
    reason="counts descriptors in /proc/self/fd and fills /dev/full (Linux)",
)
def test_writer_leaks_descriptors_on_a_full_disk_until_unleak_apply(tmp_path: Path) -> None:
    example = ExampleCopy.of("disk_full", "snapshots.py", tmp_path)

    before = example.run()
    assert before.returncode == 1, before.stdout + before.stderr
    assert OUTCOME in before.stdout
    assert "6 descriptors leaked" in before.stdout

    example.apply_fixes()
    fixed = example.program.read_text(encoding="utf-8")
    assert 'with open(path, "w", encoding="utf-8") as handle:\n        json.dump(state, handle, indent=2)' in fixed
    assert 'with open(path, "w", encoding="utf-8") as f:\n        json.dump(summary, f)' in fixed
    assert "handle.close()" not in fixed

    after = example.run()
    assert after.returncode == 0, after.stdout + after.stderr
    assert OUTCOME in after.stdout
    assert "0 descriptors leaked" in after.stdout
