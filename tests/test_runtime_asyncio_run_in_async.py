"""Runtime proof for UL101: the example crawler crashes before `unleak apply` and works after."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "asyncio_run_in_async"
RUNNING_LOOP_ERROR = "RuntimeError: asyncio.run() cannot be called from a running event loop"


def _run_crawler(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(folder / "crawler.py")], cwd=folder, capture_output=True, text=True, timeout=30
    )


def _apply(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "unleak", "apply", str(folder)], cwd=folder, capture_output=True, text=True, timeout=120
    )


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_asyncio_run_in_a_coroutine_crashes_before_and_works_after_apply(tmp_path: Path) -> None:
    copy = tmp_path / "asyncio_run_in_async"
    shutil.copytree(EXAMPLE, copy)

    before = _run_crawler(copy)
    assert before.returncode != 0
    assert RUNNING_LOOP_ERROR in before.stderr
    assert before.stdout == ""

    applied = _apply(copy)
    assert applied.returncode == 0, applied.stderr
    source = (copy / "crawler.py").read_text(encoding="utf-8")
    assert "        pages.append(await fetch(path))  # runs inside crawl()'s event loop\n" in source
    assert '    title = (await fetch("/")).title()  # a method call on the result\n' in source
    assert "asyncio.run(fetch" not in source
    assert "    report = asyncio.run(crawl(sorted(SITE)))" in source, "main() keeps the program's one event loop"

    after = _run_crawler(copy)
    assert after.returncode == 0, after.stderr
    assert after.stdout == "title=Home pages=['home', 'about us', 'we are hiring']\n"
    assert "never awaited" not in after.stderr

    fixed = _snapshot(copy)
    again = _apply(copy)
    assert again.returncode == 0, again.stderr
    assert _snapshot(copy) == fixed, "a second apply must change nothing"
