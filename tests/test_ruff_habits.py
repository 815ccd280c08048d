"""What a user of ruff expects: its default excludes, a clean Ctrl-C, rules and explain as JSON."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from unleak import registry
from unleak.cli import app
from tests.test_cli import BARE, FIXED

RUFF_DEFAULT_EXCLUDES = (
    ".venv", "venv", "site-packages", ".tox", ".nox", ".eggs", "build", "dist", "node_modules", "__pypackages__",
    "_build", "buck-out", ".git", ".hg", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints",
)


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def unleak(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def write(path: str, text: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)


# --- default excludes ------------------------------------------------------------------------------


def flagged_paths(*args: str) -> list[str]:
    result = unleak("check", *args)
    return sorted(line.split(":")[0] for line in result.stdout.splitlines())


@pytest.mark.parametrize("folder", RUFF_DEFAULT_EXCLUDES)
def test_ruffs_default_excludes_are_skipped_at_any_depth(folder: str) -> None:
    write("app.py", BARE)
    write(f"{folder}/lib.py", BARE)
    write(f"src/pkg/{folder}/lib.py", BARE)
    assert flagged_paths(".") == ["app.py"]


def test_a_venv_folder_without_pyvenv_cfg_is_skipped_and_any_folder_with_one() -> None:
    write("venv/lib/mod.py", BARE)
    write("env3/pyvenv.cfg", "home = /usr/bin\n")
    write("env3/lib/mod.py", BARE)
    write("app.py", BARE)
    assert flagged_paths(".") == ["app.py"]


def test_look_alikes_of_the_excluded_names_are_walked() -> None:
    for path in ("venvs_tools/a.py", "my_build/b.py", "distribution/c.py", "builder/d.py", "tox/e.py"):
        write(path, BARE)
    assert flagged_paths(".") == ["builder/d.py", "distribution/c.py", "my_build/b.py", "tox/e.py", "venvs_tools/a.py"]


def test_an_excluded_folder_named_on_the_command_line_is_walked() -> None:
    write("build/gen.py", BARE)
    assert flagged_paths("build") == ["build/gen.py"]


# --- Ctrl-C during apply ---------------------------------------------------------------------------


def test_ctrl_c_during_apply_leaves_each_file_old_or_new_and_names_the_new_ones(tmp_path: Path) -> None:
    names = [f"m{number:04}.py" for number in range(150)]
    for name in names:
        write(name, BARE)
    process = subprocess.Popen(
        [sys.executable, "-m", "unleak", "apply", "--no-cache", "--jobs", "2", "."],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    first = tmp_path / names[0]  # files are written in path order
    deadline = time.monotonic() + 300
    while first.read_text() == BARE and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.0005)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    contents = {name: (tmp_path / name).read_text() for name in names}
    written = sorted(name for name, text in contents.items() if text == FIXED)
    assert process.returncode == 130, stderr
    assert all(text in (BARE, FIXED) for text in contents.values()), "a file is old or new, never half-written"
    assert 0 < len(written) < len(names), "the signal came while files were being written"
    assert not [path for path in os.listdir(tmp_path) if path.endswith(".unleak")], "no temporary file is left"
    assert f"unleak: interrupted; {len(written)} files written:" in stderr
    listed = [line.strip() for line in stderr.splitlines() if line.startswith("  ")]
    assert listed == written


# --- rules and explain as JSON ---------------------------------------------------------------------


def test_rules_as_json_lists_every_rule() -> None:
    result = unleak("rules", "--format", "json")
    assert result.exit_code == 0
    rules = json.loads(result.stdout)
    assert [rule["code"] for rule in rules] == [rule.code for rule in registry.all_rules()]
    assert {"code": "UL401", "name": "bare-except", "safety": "safe"}.items() <= next(
        rule for rule in rules if rule["code"] == "UL401"
    ).items()


def test_explain_as_json_gives_the_docs_and_the_examples() -> None:
    result = unleak("explain", "bare-except", "--format", "json")
    assert result.exit_code == 0
    explained = json.loads(result.stdout)
    rule = registry.find_rule("UL401")
    assert rule is not None
    assert explained["code"] == "UL401" and explained["summary"] == rule.summary
    assert "## Why is this bad?" in explained["documentation"]
    assert explained["flagged"][0] == {"code": rule.INVALID[0].code, "fixed": rule.INVALID[0].fixed, "unsafe": False}
    assert explained["left_alone"] == [case.code for case in rule.VALID]


def test_explain_as_json_of_an_unknown_rule_is_an_error() -> None:
    result = unleak("explain", "UL999", "--format", "json")
    assert result.exit_code == 2 and result.stdout == ""
