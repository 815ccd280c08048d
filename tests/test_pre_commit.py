"""The hooks of `.pre-commit-hooks.yaml`, end to end: `pre-commit try-repo` on a temporary git repository.

pre-commit clones this repository (a local path: no network), reads the hooks file and runs them
on the files git tracks in the temporary repository, as it would in a user's commit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import BARE, CLEAN, FIXED

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    git(folder, "init", "-q")
    return folder


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=folder, check=True, env=_environment(folder.parent))


def _environment(home: Path) -> dict[str, str]:
    """This interpreter's scripts first on PATH (`unleak`, as `language: system` runs it), no git
    variables of an outer git command, and pre-commit's cache in the test's folder."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    environment["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), environment.get("PATH", "")])
    environment["PRE_COMMIT_HOME"] = str(home / "pre-commit-cache")
    return environment


def try_repo(folder: Path, hook: str) -> subprocess.CompletedProcess[str]:
    """`pre-commit try-repo` of this repository's `hook` on every file git tracks in `folder`."""
    command = [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), hook, "--all-files", "--color", "never"]
    return subprocess.run(command, cwd=folder, env=_environment(folder.parent), capture_output=True, text=True, timeout=300)


def tracked(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).write_text(text)
    git(folder, "add", *files)


def test_unleak_is_on_the_path_the_hooks_use(tmp_path: Path) -> None:
    assert shutil.which("unleak", path=_environment(tmp_path)["PATH"]) is not None


def test_check_hook_fails_on_findings_and_changes_nothing(repository: Path) -> None:
    tracked(repository, {"app.py": BARE, "clean.py": CLEAN})
    result = try_repo(repository, "unleak")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "app.py:3:1: UL401" in result.stdout and "Failed" in result.stdout
    assert (repository / "app.py").read_text() == BARE


def test_check_hook_passes_on_clean_code_and_sees_only_tracked_python_files(repository: Path) -> None:
    tracked(repository, {"clean.py": CLEAN, "notes.txt": BARE})
    (repository / "untracked.py").write_text(BARE)  # not given to the hook by pre-commit
    result = try_repo(repository, "unleak")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Passed" in result.stdout


def test_fix_hook_fails_when_it_changed_files_then_passes(repository: Path) -> None:
    tracked(repository, {"app.py": BARE, "stub.pyi": "def f() -> None: ...\n"})
    first = try_repo(repository, "unleak-fix")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "files were modified by this hook" in first.stdout
    assert (repository / "app.py").read_text() == FIXED
    git(repository, "add", "app.py")
    again = try_repo(repository, "unleak-fix")
    assert again.returncode == 0 and "Passed" in again.stdout, again.stdout + again.stderr
    assert try_repo(repository, "unleak").returncode == 0
