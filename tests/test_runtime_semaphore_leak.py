"""Runtime proof for UL201: the example worker pool runs out of slots before `unleak apply`, not after."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import ExampleCopy


def test_leaked_semaphore_slots_hang_the_pool_before_and_not_after_apply(tmp_path: Path) -> None:
    example = ExampleCopy.of("semaphore_leak", "pool.py", tmp_path)

    source = example.fails_then_works_after_apply(
        failing=(
            "job 1 failed, carrying on\n"
            "job 2 failed, carrying on\n"
            "job 3 never got a slot (1.0 s): the pool leaked its slots\n"
        ),
        working=(
            "job 1 failed, carrying on\n"
            "job 2 failed, carrying on\n"
            "job 3 done\n"
            "job 4 done\n"
            "all jobs handled\n"
        ),
    )
    assert "    async with slots:\n        kind, number = job.split(\":\")\n" in source
    assert "    await slots.acquire()\n" not in source and "    slots.release()\n" not in source
