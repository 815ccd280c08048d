"""Runtime proof for issue 14's loop lifecycles (UL106, UL104 with UL102, UL102 on generators):
each example really leaks or fails before `unleak apply --unsafe`, and works after.

Each test copies its example folder to tmp_path and runs the program and the real
`python -m unleak apply --unsafe` in subprocesses, with real asyncio; the apply must change the
module with the bug, and a second apply nothing (`ExampleCopy.apply_fixes`).
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers import ExampleCopy


def _apply_fixes_to(example: ExampleCopy, module: str) -> str:
    """`unleak apply --unsafe` the example's folder, which must change `module`; its new source."""
    fixed = ExampleCopy(example.folder, example.folder / module)
    fixed.apply_fixes("--unsafe")
    return fixed.program.read_text(encoding="utf-8")


def test_a_get_or_create_fallback_leaks_a_loop_per_worker_thread_before_and_none_after(tmp_path: Path) -> None:
    example = ExampleCopy.of("loop_fallback_task", "worker.py", tmp_path)

    before = example.run()
    assert before.returncode == 1, before.stderr
    assert before.stdout == "50 tasks done, 50 event loops left open\n"

    source = _apply_fixes_to(example, "tasks.py")
    assert "    def run_async(self, coro):\n        return asyncio.run(coro)\n" in source
    assert "new_event_loop" not in source

    after = example.run()
    assert after.returncode == 0, after.stdout + after.stderr
    assert after.stdout == "50 tasks done, 0 event loops left open\n"


def test_a_loop_per_round_leaks_every_round_before_and_one_closed_loop_runs_them_after(tmp_path: Path) -> None:
    example = ExampleCopy.of("loop_per_round", "main.py", tmp_path)

    before = example.run()
    assert before.returncode == 1, before.stderr
    assert before.stdout == "best 0.3: 20 event loops created, 20 left open\n"

    source = _apply_fixes_to(example, "optimizer.py")
    assert "        best = await score_round(round_number, best)\n" in source
    assert "    return asyncio.run(_optimize_async(rounds))\n" in source

    after = example.run()
    assert after.returncode == 0, after.stdout + after.stderr
    assert after.stdout == "best 0.3: 1 event loops created, 0 left open\n"


def test_a_generator_s_semaphore_fails_on_the_second_item_before_and_not_after(tmp_path: Path) -> None:
    example = ExampleCopy.of("generator_per_item", "main.py", tmp_path)

    before = example.run()
    assert before.returncode == 1, before.stderr
    assert before.stdout == "/a#0 /a#1 /a#2\n"
    assert "is bound to a different event loop" in before.stderr

    source = _apply_fixes_to(example, "loader.py")
    assert "                yield loop.run_until_complete(self._aload(url))\n" in source
    assert "        finally:\n            loop.close()\n" in source

    after = example.run()
    assert after.returncode == 0, after.stdout + after.stderr
    assert after.stdout == "/a#0 /a#1 /a#2\n/b#0 /b#1 /b#2\n/c#0 /c#1 /c#2\n"
