"""Runtime proof for UL102 and UL104: each example really fails before `unleak apply`, works after.

Each test copies its example folder to tmp_path and runs, in subprocesses with real asyncio, the
program, `python -m unleak apply` (with `--unsafe` for UL102), and the program again; a second
apply must change nothing. Timeouts are a backstop: every program finishes in about a second.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class BeforeAndAfter:
    """One example run on a copy: the program before the fix, the fixed sources, the program after."""

    folder: Path
    before: subprocess.CompletedProcess[str]
    fixed: dict[str, str]
    after: subprocess.CompletedProcess[str]

    def python(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _python(self.folder, *args)


def _python(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=folder, capture_output=True, text=True, timeout=TIMEOUT_SECONDS
    )


def _sources(folder: Path) -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(folder.glob("*.py"))}


def _apply(folder: Path, *, unsafe: bool) -> None:
    flags = ("--unsafe",) if unsafe else ()
    applied = _python(folder.parent, "-m", "unleak", "apply", *flags, str(folder))
    assert applied.returncode == 0, applied.stderr


def run_before_and_after(example: str, program: str, tmp_path: Path, *, unsafe: bool = False) -> BeforeAndAfter:
    """Copy `example`, run `program`, apply the fixes, run it again, and check a second apply is a no-op."""
    folder = Path(shutil.copytree(EXAMPLES / example, tmp_path / example, ignore=shutil.ignore_patterns("__pycache__")))
    original = _sources(folder)
    before = _python(folder, program)
    _apply(folder, unsafe=unsafe)
    fixed = _sources(folder)
    assert fixed != original, "unleak apply changed nothing"
    after = _python(folder, program)
    _apply(folder, unsafe=unsafe)
    assert _sources(folder) == fixed, "a second apply must change nothing"
    return BeforeAndAfter(folder, before, fixed, after)


def test_task_with_asyncio_run_per_item_fails_before_and_works_after_with_the_same_api(tmp_path: Path) -> None:
    run = run_before_and_after("asyncio_run_per_item", "worker.py", tmp_path, unsafe=True)

    assert run.before.returncode == 1, run.before.stderr
    assert "is bound to a different event loop" in run.before.stdout

    source = run.fixed["alerts.py"]
    assert "async def _check_all_agencies_for_recalls_async(agencies, *, dry_run):" in source
    assert "    return asyncio.run(_check_all_agencies_for_recalls_async(agencies, dry_run=dry_run))" in source
    assert source.count("asyncio.run(") == 1, "one event loop per call of the task"

    assert run.after.returncode == 0, run.after.stdout + run.after.stderr
    assert run.after.stdout == "task done: alerted 12 users\n"

    # Still the same synchronous task (the seed's `async def` would fail every line of this).
    sync_caller = textwrap.dedent(
        """
        import inspect
        from alerts import TASKS, check_all_agencies_for_recalls as task

        assert TASKS["check_all_agencies_for_recalls"] is task, "the decorator still registers it"
        assert not inspect.iscoroutinefunction(task)
        assert str(inspect.signature(task)) == "(agencies, *, dry_run=False)", inspect.signature(task)
        assert task.__doc__.startswith("Alert the users affected")
        print(task(["fda"]), task(["fda", "usda"], dry_run=True), task(agencies=[]))
        """
    )
    called = run.python("-c", sync_caller)
    assert called.returncode == 0, called.stderr
    assert called.stdout == "4 0 0\n"


def test_event_loops_left_open_by_failing_coroutines_are_closed_after(tmp_path: Path) -> None:
    run = run_before_and_after("unclosed_event_loop", "main.py", tmp_path)

    assert run.before.returncode == 1, run.before.stderr
    assert run.before.stdout == "8 event loops created, 6 left open\n"

    source = run.fixed["runners.py"]
    assert "            result[0] = asyncio.run(coro)\n" in source
    assert "    finally:\n        asyncio.set_event_loop(None)\n        loop.close()\n" in source

    assert run.after.returncode == 0, run.after.stdout + run.after.stderr
    assert run.after.stdout == "8 event loops created, 0 left open\n"
