"""Runtime proof for UL202: the importer in examples/fd_leak leaks descriptors before `unleak apply`, none after."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import ExampleCopy


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts descriptors in /proc/self/fd (Linux)")
def test_importer_leaks_descriptors_until_unleak_apply(tmp_path: Path) -> None:
    example = ExampleCopy.of("fd_leak", "importer.py", tmp_path)

    before = example.run()
    assert before.returncode == 1, before.stdout + before.stderr
    assert "imported 30 files, 10 failed" in before.stdout
    assert "10 descriptors leaked" in before.stdout

    example.apply_fixes()
    fixed = example.program.read_text(encoding="utf-8")
    assert "with open(path, encoding=\"utf-8\") as handle:" in fixed
    assert "handle.close()" not in fixed

    after = example.run()
    assert after.returncode == 0, after.stdout + after.stderr
    assert "imported 30 files, 10 failed" in after.stdout
    assert "0 descriptors leaked" in after.stdout
