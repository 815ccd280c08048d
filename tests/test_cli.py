"""The `unleak` command end to end: every command, exit code, and the promises about files.

Each test runs in a fresh folder (the current directory), with the real engine and real files.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from unleak.engine import runner
from unleak.cli import app

BARE = "try:\n    risky()\nexcept:\n    pass\n"
FIXED = "try:\n    risky()\nexcept Exception:\n    pass\n"
CLEAN = "def f():\n    return 1\n"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return tmp_path


def unleak(*args: str, stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=stdin)


def write(path: str, text: str | bytes) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        text = text.encode("utf-8")
    target.write_bytes(text)
    return target


# --- check -------------------------------------------------------------------------------------


def test_check_lists_findings_with_fixable_mark_and_exits_1() -> None:
    write("app.py", BARE)
    result = unleak("check", "app.py")
    assert result.exit_code == 1
    assert result.stdout.startswith("app.py:3:1: UL401 ")
    assert result.stdout.rstrip().endswith("[*]")
    assert Path("app.py").read_text() == BARE, "check never writes"


def test_check_exits_0_on_clean_code() -> None:
    write("app.py", CLEAN)
    result = unleak("check", ".")
    assert (result.exit_code, result.stdout) == (0, "")


def test_check_json_has_every_field() -> None:
    write("app.py", BARE)
    result = unleak("check", "--format", "json", "app.py")
    assert result.exit_code == 1
    [finding] = json.loads(result.stdout)
    assert finding == {
        "path": "app.py",
        "line": 3,
        "column": 1,
        "end_line": 4,
        "end_column": 9,
        "rule": "UL401",
        "name": "bare-except",
        "message": finding["message"],
        "fixable": True,
        "safety": "safe",
    }
    assert "KeyboardInterrupt" in finding["message"]


def test_default_path_is_the_current_folder() -> None:
    write("pkg/app.py", BARE)
    assert unleak("check").stdout.startswith("pkg/app.py:3:1: UL401")


# --- diff --------------------------------------------------------------------------------------


def test_diff_shows_a_git_style_patch_and_writes_nothing() -> None:
    write("app.py", BARE)
    result = unleak("diff")
    assert result.exit_code == 1
    assert result.stdout == (
        "--- a/app.py\n+++ b/app.py\n@@ -1,4 +1,4 @@\n try:\n     risky()\n-except:\n+except Exception:\n     pass\n"
    )
    assert Path("app.py").read_text() == BARE


def test_diff_exits_0_when_nothing_changes() -> None:
    write("app.py", CLEAN)
    assert (unleak("diff").exit_code, unleak("diff").stdout) == (0, "")


SAMPLES = {
    "plain.py": BARE.encode(),
    "crlf.py": BARE.replace("\n", "\r\n").encode(),
    "latin1.py": "# -*- coding: latin-1 -*-\nname = 'café'\n".encode("latin-1") + BARE.encode() + b"s = '\xe9t\xe9'\n",
    "bom.py": b"\xef\xbb\xbf" + BARE.encode(),
    "no_final_newline.py": BARE.rstrip("\n").encode(),
    "sub dir/first_line.py": b"try: x()\nexcept: pass",
}


def test_git_apply_of_the_diff_gives_exactly_what_apply_writes(in_tmp: Path) -> None:
    for name, data in SAMPLES.items():
        write(f"via_patch/{name}", data)
    shutil.copytree("via_patch", "via_apply")
    patch = unleak("diff", "via_patch").stdout_bytes
    subprocess.run(["git", "init", "-q"], check=True)
    subprocess.run(["git", "apply", "--whitespace=nowarn", "-"], input=patch, check=True)
    assert unleak("apply", "via_apply").exit_code == 0
    for name in SAMPLES:
        assert Path("via_patch", name).read_bytes() == Path("via_apply", name).read_bytes(), name
        assert Path("via_apply", name).read_bytes() != SAMPLES[name], f"{name} was not fixed"


def test_patch_p1_applies_the_diff_too() -> None:
    write("app.py", SAMPLES["crlf.py"])
    patch = unleak("diff").stdout_bytes
    if shutil.which("patch") is None:
        pytest.skip("no patch(1) on this machine")
    subprocess.run(["patch", "-p1", "--binary", "-s"], input=patch, check=True)
    assert Path("app.py").read_bytes() == FIXED.replace("\n", "\r\n").encode()


def test_diff_is_coloured_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    write("app.py", BARE)
    assert b"\x1b[" not in unleak("diff").stdout_bytes
    monkeypatch.setattr("unleak.cli._stdout_is_terminal", lambda: True)
    assert b"\x1b[31m-except:" in unleak("diff").stdout_bytes
    monkeypatch.setenv("NO_COLOR", "1")
    assert b"\x1b[" not in unleak("diff").stdout_bytes


# --- apply -------------------------------------------------------------------------------------


def test_apply_writes_fixes_and_summarises_on_stderr() -> None:
    write("app.py", BARE)
    write("clean.py", CLEAN)
    result = unleak("apply")
    assert result.exit_code == 0
    assert Path("app.py").read_text() == FIXED
    assert result.stdout == ""
    assert "2 files scanned, 1 skipped by the prefilter, 1 changed; fixes: UL401 1" in result.stderr
    assert "0 errors" in result.stderr


def test_prefilter_skips_files_where_the_pattern_is_only_text() -> None:
    write("quoted.py", 'HELP = """Never write try: ... except: pass"""\n')  # passes the byte trigger only
    write("real.py", BARE)
    result = unleak("apply")
    assert "2 files scanned, 1 skipped by the prefilter, 1 changed" in result.stderr
    assert Path("quoted.py").read_text() == 'HELP = """Never write try: ... except: pass"""\n'


def test_second_apply_changes_nothing() -> None:
    write("app.py", BARE)
    unleak("apply")
    before = Path("app.py").read_bytes()
    result = unleak("apply")
    assert Path("app.py").read_bytes() == before
    assert "0 changed" in result.stderr
    assert unleak("diff").exit_code == 0


def test_apply_json_summary() -> None:
    write("app.py", BARE)
    result = unleak("apply", "--format", "json")
    summary = json.loads(result.stderr)
    assert summary["changed"] == 1 and summary["fixes"] == {"UL401": 1} and summary["findings"] == []


def test_apply_keeps_permissions_and_symlinks() -> None:
    target = write("real.py", BARE)
    target.chmod(0o751)
    os.symlink("real.py", "link.py")
    assert unleak("apply", "link.py").exit_code == 0
    assert Path("link.py").is_symlink()
    assert target.read_text() == FIXED
    assert stat.S_IMODE(target.stat().st_mode) == 0o751


def test_crlf_and_latin1_keep_every_byte_outside_the_fix() -> None:
    write("crlf.py", SAMPLES["crlf.py"])
    write("latin1.py", SAMPLES["latin1.py"])
    unleak("apply")
    assert Path("crlf.py").read_bytes() == FIXED.replace("\n", "\r\n").encode()
    assert Path("latin1.py").read_bytes() == SAMPLES["latin1.py"].replace(b"except:", b"except Exception:")


def test_file_changed_on_disk_after_reading_is_not_clobbered(monkeypatch: pytest.MonkeyPatch) -> None:
    write("app.py", BARE)
    real_execute = runner.execute

    def execute_then_someone_edits(*args: object, **kwargs: object) -> list:
        results = real_execute(*args, **kwargs)
        Path("app.py").write_text(BARE + "edited = True\n")
        return results

    monkeypatch.setattr(runner, "execute", execute_then_someone_edits)
    result = unleak("apply", "--jobs", "1")
    assert result.exit_code == 2
    assert "app.py: error: changed on disk since it was read; not written" in result.stderr
    assert Path("app.py").read_text() == BARE + "edited = True\n"


# --- errors ------------------------------------------------------------------------------------


def test_syntax_error_is_reported_untouched_and_the_rest_is_fixed() -> None:
    write("a_good.py", BARE)
    write("broken.py", "def f(:\n    pass\nexcept:\n")
    write("z_good.py", BARE)
    result = unleak("apply")
    assert result.exit_code == 2
    assert Path("broken.py").read_text() == "def f(:\n    pass\nexcept:\n"
    assert Path("a_good.py").read_text() == FIXED and Path("z_good.py").read_text() == FIXED
    [line] = [line for line in result.stderr.splitlines() if "broken.py" in line]
    assert line.startswith("broken.py: error: syntax error") and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["check", "diff", "apply"])
def test_every_command_exits_2_on_bad_files_but_processes_the_others(command: str) -> None:
    write("good.py", BARE)
    write("undecodable.py", b"x = '\xff\xfe'\nexcept:\n")
    write("notes.txt", "hello")
    result = unleak(command, ".", "undecodable.py", "notes.txt", "missing.py")
    assert result.exit_code == 2
    assert "undecodable.py: error: cannot decode as utf-8" in result.stderr
    assert "notes.txt: error: not a Python file" in result.stderr
    assert "missing.py: error: no such file or directory" in result.stderr
    assert "Traceback" not in result.stderr
    good_file_handled = {
        "check": "good.py:3:1: UL401" in result.stdout,
        "diff": "+except Exception:" in result.stdout,
        "apply": Path("good.py").read_text() == FIXED,
    }
    assert good_file_handled[command]


def test_unreadable_file_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    write("secret.py", BARE)
    write("open.py", BARE)
    real_read_bytes = Path.read_bytes

    def read_bytes(path: Path) -> bytes:  # chmod 000 does not stop root, so refuse like the OS would
        if path.name == "secret.py":
            raise PermissionError(13, "Permission denied")
        return real_read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    result = unleak("check", "--jobs", "1")
    assert result.exit_code == 2
    assert "secret.py: error: cannot read: Permission denied" in result.stderr
    assert result.stdout.startswith("open.py:3:1: UL401")


def test_a_rule_that_breaks_code_is_an_internal_error_and_the_file_is_untouched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import libcst as cst

    from unleak import registry
    from unleak.rule import FixSafety, Rule

    class Breaks(Rule):
        code, name, safety, summary, trigger = "UL900", "breaks", FixSafety.SAFE, "breaks code", (rb"pass",)

        def visit_Pass(self, node: cst.Pass) -> None:
            self.report(node, fix=cst.Return())  # `return` outside a function does not compile

    monkeypatch.setattr(registry, "all_rules", lambda: (Breaks,))
    write("app.py", "pass\n")
    result = unleak("apply", "--jobs", "1")
    assert result.exit_code == 2
    assert "app.py: error: internal error in UL900 (breaks)" in result.stderr
    assert Path("app.py").read_text() == "pass\n"


def test_a_breaking_fix_is_blamed_on_its_rule_when_another_rule_fixes_in_the_same_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import libcst as cst

    from unleak import registry
    from unleak.rule import FixSafety, Rule
    from unleak.transforms.ul401_bare_except import BareExcept

    class Breaks(Rule):
        code, name, safety, summary, trigger = "UL900", "breaks", FixSafety.SAFE, "breaks code", (rb"pass",)

        def visit_Pass(self, node: cst.Pass) -> None:
            self.report(node, fix=cst.Return())  # `return` outside a function does not compile

    monkeypatch.setattr(registry, "all_rules", lambda: (BareExcept, Breaks))
    both = "try:\n    risky()\nexcept:\n    handle()\npass\n"  # two fixes, neither inside the other
    write("app.py", both)
    result = unleak("apply", "--jobs", "1")
    assert result.exit_code == 2
    assert "app.py: error: internal error in UL900 (breaks)" in result.stderr
    assert Path("app.py").read_text() == both


def test_a_rule_that_a_fix_comes_to_trigger_runs_before_the_fixed_point_is_final(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import libcst as cst

    from unleak import registry
    from unleak.rule import FixSafety, Rule

    def renaming(code: str, old: str, new: str) -> type[Rule]:
        class Renames(Rule):
            name, safety, summary, trigger = f"{old}-to-{new}", FixSafety.SAFE, "rename", (old.encode(),)

            def visit_Name(self, node: cst.Name) -> None:
                if node.value == old:
                    self.report(node, fix=cst.Name(new))

        Renames.code = code
        return Renames

    first, second = renaming("UL901", "alpha", "beta"), renaming("UL902", "beta", "gamma")
    monkeypatch.setattr(registry, "all_rules", lambda: (first, second))
    write("app.py", "alpha\n")  # only UL901's trigger occurs in it
    assert unleak("apply", "--jobs", "1").exit_code == 0
    assert Path("app.py").read_text() == "gamma\n", "UL902 ran on UL901's output in the same run"
    assert unleak("diff", "--jobs", "1").exit_code == 0, "a second run changes nothing"


def test_fixes_that_never_settle_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    import libcst as cst

    from unleak import registry
    from unleak.rule import FixSafety, Rule

    class Flips(Rule):  # its trigger covers both names it fires on, as a rule's must
        code, name, safety, summary, trigger = "UL901", "flips", FixSafety.SAFE, "flips", (rb"[xy]",)

        def visit_Name(self, node: cst.Name) -> None:
            self.report(node, fix=cst.Name("y" if node.value == "x" else "x"))

    monkeypatch.setattr(registry, "all_rules", lambda: (Flips,))
    write("app.py", "x\n")
    result = unleak("apply", "--jobs", "1")
    assert result.exit_code == 2 and "did not settle" in result.stderr
    assert Path("app.py").read_text() == "x\n"


def test_deeply_nested_fixes_still_settle() -> None:
    nested = "".join(f"{' ' * depth}try: pass\n{' ' * depth}except:\n" for depth in range(12)) + " " * 12 + "pass\n"
    write("app.py", nested)
    result = unleak("apply", "--jobs", "1")
    assert result.exit_code == 0, result.stderr
    assert Path("app.py").read_text() == nested.replace("except:", "except Exception:")


# --- stdin -------------------------------------------------------------------------------------


def test_stdin_apply_writes_fixed_source_to_stdout() -> None:
    result = unleak("apply", "-", stdin=BARE.encode())
    assert (result.exit_code, result.stdout) == (0, FIXED)


def test_stdin_check_and_diff_use_the_stdin_filename() -> None:
    checked = unleak("check", "-", "--stdin-filename", "svc/app.py", stdin=BARE.encode())
    assert checked.exit_code == 1 and checked.stdout.startswith("svc/app.py:3:1: UL401")
    diffed = unleak("diff", "-", "--stdin-filename", "svc/app.py", stdin=BARE.encode())
    assert diffed.exit_code == 1 and diffed.stdout.startswith("--- a/svc/app.py\n+++ b/svc/app.py\n")


def test_stdin_filename_selects_per_file_ignores() -> None:
    write("pyproject.toml", '[tool.unleak]\nper-file-ignores = { "tests/*" = ["UL401"] }\n')
    result = unleak("apply", "-", "--stdin-filename", "tests/test_x.py", stdin=BARE.encode())
    assert result.stdout == BARE


def test_stdin_syntax_error_exits_2_and_gives_the_source_back() -> None:
    broken = b"try:\n    x(\nexcept:\n    pass\n"
    result = unleak("apply", "-", stdin=broken)
    assert result.exit_code == 2 and result.stderr.startswith("-: error: syntax error")
    assert result.stdout_bytes == broken


# --- configuration -----------------------------------------------------------------------------


def test_config_select_ignore_and_flags_override() -> None:
    write("app.py", BARE)
    write("pyproject.toml", '[tool.unleak]\nignore = ["bare-except"]\n')
    assert unleak("check").exit_code == 0
    assert unleak("check", "--ignore", "UL402").exit_code == 1  # flag replaces the file's list


def test_per_file_ignores_and_exclude_are_relative_to_the_config() -> None:
    write("pyproject.toml", '[tool.unleak]\nexclude = ["generated/"]\nper-file-ignores = { "legacy/*.py" = ["UL4"] }\n')
    write("generated/a.py", BARE)
    write("legacy/b.py", BARE)
    write("src/c.py", BARE)
    result = unleak("check")
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == ["src/c.py"]


def test_nearest_pyproject_wins() -> None:
    write("pyproject.toml", '[tool.unleak]\nselect = ["UL4"]\n')
    write("svc/pyproject.toml", '[tool.unleak]\nignore = ["UL401"]\n')
    write("svc/app.py", BARE)
    write("lib/app.py", BARE)
    assert [line.split(":")[0] for line in unleak("check").stdout.splitlines()] == ["lib/app.py"]


def test_config_flag_names_the_file() -> None:
    write("custom.toml", '[tool.unleak]\nignore = ["UL401"]\n')
    write("app.py", BARE)
    assert unleak("check", "--config", "custom.toml").exit_code == 0


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("colour = true", "pyproject.toml: error: unknown key 'tool.unleak.colour'"),
        ('select = "UL4"', "pyproject.toml: error: 'tool.unleak.select' must be a list of strings"),
        ('unsafe = "yes"', "pyproject.toml: error: 'tool.unleak.unsafe' must be true or false"),
        ('select = ["UL9"]', "pyproject.toml: error: unknown rule selector 'UL9' in 'select'"),
        (
            '[[tool.unleak.resources]]\nacquire = "get_browser"\nrelease = "cleanup"',
            "pyproject.toml: error: 'tool.unleak.resources[0]' is missing the key 'context'",
        ),
        (
            '[[tool.unleak.resources]]\nacquire = "a"\nrelease = "b"\ncontext = "c"\nasync = true',
            "pyproject.toml: error: unknown key 'async' in 'tool.unleak.resources[0]'",
        ),
    ],
)
def test_bad_config_is_a_one_line_error(table: str, message: str) -> None:
    write("pyproject.toml", f"[tool.unleak]\n{table}\n")
    write("app.py", BARE)
    result = unleak("check")
    assert result.exit_code == 2
    assert result.stderr.strip().endswith(message)
    assert len(result.stderr.strip().splitlines()) == 1


def test_resources_table_is_parsed() -> None:
    from unleak.settings import Overrides, ResourcePair, SettingsResolver

    write("pyproject.toml", '[[tool.unleak.resources]]\nacquire = "get_browser"\nrelease = "cleanup"\ncontext = "browser_context"\n')
    settings = SettingsResolver(Overrides()).for_path(Path("app.py"))
    assert settings.resources == (ResourcePair("get_browser", "cleanup", "browser_context"),)


def test_unknown_selector_on_the_command_line() -> None:
    result = unleak("check", "--select", "UL401,nope")
    assert result.exit_code == 2 and result.stderr.strip() == "--select: error: unknown rule selector 'nope' in 'select'"


def test_invalid_toml_is_reported() -> None:
    write("pyproject.toml", "[tool.unleak\n")
    write("app.py", BARE)
    result = unleak("check")
    assert result.exit_code == 2 and "pyproject.toml: error: invalid TOML" in result.stderr


# --- discovery ---------------------------------------------------------------------------------


def test_gitignore_hidden_folders_and_virtualenvs_are_skipped_but_named_files_are_not() -> None:
    subprocess.run(["git", "init", "-q"], check=True)
    write(".gitignore", "ignored_dir/\nskip_me.py\n")
    write("ignored_dir/a.py", BARE)
    write("skip_me.py", BARE)
    write("nested/.gitignore", "*.py\n!keep.py\n")
    write("nested/dropped.py", BARE)
    write("nested/keep.py", BARE)
    write(".hidden/a.py", BARE)
    write("venv/pyvenv.cfg", "home = /usr\n")
    write("venv/lib/a.py", BARE)
    write("__pycache__/a.py", BARE)
    write("build/a.py", BARE)
    write("kept.py", BARE)
    write("stubs/kept.pyi", "try: x()\nexcept: pass\n")
    found = sorted(line.split(":")[0] for line in unleak("check").stdout.splitlines())
    assert found == ["kept.py", "nested/keep.py", "stubs/kept.pyi"]
    assert unleak("check", "skip_me.py").stdout.startswith("skip_me.py:3:1")


def test_exclude_flag_is_repeatable() -> None:
    write("a/x.py", BARE)
    write("b/x.py", BARE)
    write("c/x.py", BARE)
    found = unleak("check", "--exclude", "a/", "--exclude", "b/*.py").stdout
    assert [line.split(":")[0] for line in found.splitlines()] == ["c/x.py"]


def test_a_python_script_without_suffix_named_on_the_command_line() -> None:
    write("tool", "#!/usr/bin/env python3\n" + BARE)
    assert unleak("check", "tool").stdout.startswith("tool:4:1: UL401")


# --- parallelism -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["check", "diff", "apply"])
def test_jobs_1_and_jobs_2_print_the_same(command: str) -> None:
    for index in range(12):
        write(f"pkg{index % 3}/mod{index}.py", BARE * (index % 4 + 1))
    write("pkg1/broken.py", "except:\n  def (\n")
    shutil.copytree(".", "../copy", dirs_exist_ok=True)
    serial = unleak(command, "--jobs", "1")
    os.chdir("../copy")
    parallel = unleak(command, "--jobs", "2")
    assert (serial.exit_code, serial.stdout, serial.stderr) == (parallel.exit_code, parallel.stdout, parallel.stderr)
    assert serial.exit_code == 2


# --- suppression -------------------------------------------------------------------------------


def test_suppression_comments() -> None:
    source = (
        "try:\n    a()\nexcept:  # unleak: ignore\n    pass\n"
        "try:\n    b()\nexcept:  # unleak: ignore[UL401]\n    pass\n"
        "try:\n    c()\nexcept:  # unleak: ignore[bare-except]\n    pass\n"
        "try:\n    d()\nexcept:  # unleak: ignore[UL402]\n    pass\n"
        "s = '# unleak: ignore'\n"
        "try:\n    e()\nexcept:\n    pass\n"
    )
    write("app.py", source)
    result = unleak("check", "--select", "UL401")
    assert [line.split(":")[1] for line in result.stdout.splitlines()] == ["15", "20"]
    unleak("apply")
    assert Path("app.py").read_text().count("except Exception:") == 2


# --- rules and explain -------------------------------------------------------------------------


def test_rules_lists_every_rule() -> None:
    result = unleak("rules")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].split() == ["CODE", "NAME", "FIX", "SUMMARY"]
    assert any(line.split()[:3] == ["UL401", "bare-except", "safe"] for line in result.stdout.splitlines())


@pytest.mark.parametrize("name", ["UL401", "ul401", "bare-except"])
def test_explain_shows_docs_and_examples(name: str) -> None:
    result = unleak("explain", name)
    assert result.exit_code == 0
    assert "## Why is this bad?" in result.stdout
    assert "    except Exception:" in result.stdout and "becomes:" in result.stdout


def test_explain_unknown_rule() -> None:
    result = unleak("explain", "UL999")
    assert result.exit_code == 2 and result.stderr.strip() == "UL999: error: no such rule (see `unleak rules`)"


# --- the installed console script --------------------------------------------------------------


def test_installed_console_script_runs() -> None:
    write("app.py", BARE)
    executable = Path(sys.executable).with_name("unleak")
    command = [str(executable)] if executable.exists() else [sys.executable, "-m", "unleak"]
    completed = subprocess.run([*command, "diff", "app.py"], capture_output=True, timeout=120)
    assert completed.returncode == 1
    assert completed.stdout.startswith(b"--- a/app.py\n+++ b/app.py\n")
