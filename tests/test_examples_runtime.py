"""Runtime proof: each program in examples/ shows its bug, `unleak apply` fixes it, and it then works.

Each test copies one example folder to a temporary folder and runs the real program and the real
`python -m unleak apply` in subprocesses, as a user would.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers import ExampleCopy

def assert_value_error_survived(output: str) -> None:
    assert "worker: swallowed ValueError(" in output
    assert output.index("swallowed ValueError(") < output.index("worker: resize:3 -> 300px"), output


def test_bare_except_worker_stops_on_cancel_after_fix(tmp_path: Path) -> None:
    example = ExampleCopy.of("bare_except_worker", "worker.py", tmp_path)

    before = example.run()
    assert before.returncode == 1, before.stdout + before.stderr
    assert "worker: swallowed CancelledError()" in before.stdout
    assert "main: worker ignored cancellation" in before.stdout
    assert_value_error_survived(before.stdout)

    example.apply_fixes()

    after = example.run()
    assert after.returncode == 0, after.stdout + after.stderr
    assert after.stdout.rstrip().endswith("main: clean shutdown")
    assert "CancelledError" not in after.stdout
    assert_value_error_survived(after.stdout)


def test_error_log_has_traceback_after_fix(tmp_path: Path) -> None:
    example = ExampleCopy.of("error_log", "prices.py", tmp_path)

    before = example.run()
    assert before.returncode == 0, before.stderr
    assert "ERROR skipping tea: not enough values to unpack" in before.stderr
    assert "Traceback" not in before.stderr
    assert "in parse_cents" not in before.stderr

    example.apply_fixes()

    after = example.run()
    assert after.returncode == 0, after.stderr
    assert "ERROR skipping tea: not enough values to unpack" in after.stderr
    assert "Traceback (most recent call last):" in after.stderr
    assert "in parse_cents" in after.stderr
    assert after.stdout == before.stdout, "the fix changes the log only"


def test_configured_resource_pair_leaves_no_browser_context_open(tmp_path: Path) -> None:
    """Seed 000 #3 through the example's own pyproject.toml pair: get_browser/cleanup -> browser_context."""
    example = ExampleCopy.of("browser_contexts", "scraper.py", tmp_path)

    before = example.run()
    assert before.returncode == 1, before.stdout + before.stderr
    assert "2 browser contexts left open" in before.stdout

    example.apply_fixes()
    assert "async with manager.browser_context(headless=True) as ctx:" in example.program.read_text()

    after = example.run()
    assert after.returncode == 0, after.stdout + after.stderr
    assert after.stdout.count("failed: cannot load") == 2
    assert "0 browser contexts left open" in after.stdout
