"""Runtime proof for UL201: the example worker pool runs out of slots before `unleak apply`, not after."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "semaphore_leak"


def _run_pool(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(folder / "pool.py")], cwd=folder, capture_output=True, text=True, timeout=30
    )


def _apply(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "unleak", "apply", str(folder)], cwd=folder, capture_output=True, text=True, timeout=120
    )


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_leaked_semaphore_slots_hang_the_pool_before_and_not_after_apply(tmp_path: Path) -> None:
    copy = tmp_path / "semaphore_leak"
    shutil.copytree(EXAMPLE, copy)

    before = _run_pool(copy)
    assert before.returncode == 1, before.stderr
    assert before.stdout == (
        "job 1 failed, carrying on\n"
        "job 2 failed, carrying on\n"
        "job 3 never got a slot (1.0 s): the pool leaked its slots\n"
    )

    applied = _apply(copy)
    assert applied.returncode == 0, applied.stderr
    source = (copy / "pool.py").read_text(encoding="utf-8")
    assert "    async with slots:\n        kind, number = job.split(\":\")\n" in source
    assert "    await slots.acquire()\n" not in source and "    slots.release()\n" not in source

    after = _run_pool(copy)
    assert after.returncode == 0, after.stderr
    assert after.stdout == (
        "job 1 failed, carrying on\n"
        "job 2 failed, carrying on\n"
        "job 3 done\n"
        "job 4 done\n"
        "all jobs handled\n"
    )

    fixed = _snapshot(copy)
    again = _apply(copy)
    assert again.returncode == 0, again.stderr
    assert _snapshot(copy) == fixed, "a second apply must change nothing"
