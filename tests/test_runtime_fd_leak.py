"""Runtime proof for UL202: the importer in examples/fd_leak leaks descriptors before `unleak apply`, none after.

The test copies the folder to tmp_path and runs the real program and the real
`python -m unleak apply` in subprocesses; the timeouts are a backstop (the program takes well
under a second).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fd_leak"
TIMEOUT_SECONDS = 30


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts descriptors in /proc/self/fd (Linux)")
def test_importer_leaks_descriptors_until_unleak_apply(tmp_path: Path) -> None:
    folder = Path(shutil.copytree(EXAMPLE, tmp_path / "fd_leak", ignore=shutil.ignore_patterns("__pycache__")))
    program = folder / "importer.py"
    original = program.read_text(encoding="utf-8")

    before = _run("importer.py", cwd=folder)
    assert before.returncode == 1, before.stdout + before.stderr
    assert "imported 30 files, 10 failed" in before.stdout
    assert "10 descriptors leaked" in before.stdout

    applied = _run("-m", "unleak", "apply", str(folder), cwd=folder)
    assert applied.returncode == 0, applied.stderr
    fixed = program.read_text(encoding="utf-8")
    assert fixed != original
    assert "with open(path, encoding=\"utf-8\") as handle:" in fixed
    assert "handle.close()" not in fixed

    after = _run("importer.py", cwd=folder)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "imported 30 files, 10 failed" in after.stdout
    assert "0 descriptors leaked" in after.stdout

    again = _run("-m", "unleak", "apply", str(folder), cwd=folder)
    assert again.returncode == 0, again.stderr
    assert program.read_text(encoding="utf-8") == fixed
