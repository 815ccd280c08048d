"""Runtime proof for UL101: the example crawler crashes before `unleak apply` and works after."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import ExampleCopy

RUNNING_LOOP_ERROR = "RuntimeError: asyncio.run() cannot be called from a running event loop"


def test_asyncio_run_in_a_coroutine_crashes_before_and_works_after_apply(tmp_path: Path) -> None:
    example = ExampleCopy.of("asyncio_run_in_async", "crawler.py", tmp_path)

    before = example.run()
    assert before.returncode != 0
    assert RUNNING_LOOP_ERROR in before.stderr
    assert before.stdout == ""

    example.apply_fixes()
    source = example.program.read_text(encoding="utf-8")
    assert "        pages.append(await fetch(path))  # runs inside crawl()'s event loop\n" in source
    assert '    title = (await fetch("/")).title()  # a method call on the result\n' in source
    assert "asyncio.run(fetch" not in source
    assert "    report = asyncio.run(crawl(sorted(SITE)))" in source, "main() keeps the program's one event loop"

    after = example.run()
    assert after.returncode == 0, after.stderr
    assert after.stdout == "title=Home pages=['home', 'about us', 'we are hiring']\n"
    assert "never awaited" not in after.stderr
