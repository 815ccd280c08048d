"""`unleak bulk` end to end, on real git repositories, each with a local bare "origin".

Each repository is a bare `NAME.git` (its origin, reached as a `file://` URL: no network) and a
checkout `NAME/` of it, as a user has. The runs go through the real command, the real engine
and the real `git`.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.test_cli import BARE, CLEAN, FIXED
from unleak.cli import app
from unleak.settings import Overrides, SettingsResolver
from unleak.workflows import bulk, scheduling
from unleak.workflows.bulk import repository_names

# UL501: a finding whose fix is unsafe (made only with --unsafe).
UNSAFE_FIX = """import os
from dataclasses import dataclass


@dataclass
class Config:
    workers: int = 10
    retries: int = 3

    @classmethod
    def from_env(cls) -> "Config":
        return cls(workers=int(os.getenv("WORKERS", "10")))
"""


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for variable in [key for key in os.environ if key.startswith("GIT_")]:
        monkeypatch.delenv(variable)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("HOME", str(tmp_path))  # no global git configuration but the one below
    git(tmp_path, "config", "--global", "user.name", "Test")
    git(tmp_path, "config", "--global", "user.email", "test@example.com")
    git(tmp_path, "config", "--global", "init.defaultBranch", "main")
    return tmp_path


def git(folder: Path, *args: str) -> str:
    completed = subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True, text=True)
    return completed.stdout.strip()


def make_repository(name: str, files: dict[str, str]) -> Path:
    """A bare origin `NAME.git` holding `files` in one commit on main, and a checkout `NAME/` of it."""
    checkout = Path(name).absolute()
    checkout.mkdir()
    git(checkout, "init", "-q")
    for relative, text in files.items():
        (checkout / relative).parent.mkdir(parents=True, exist_ok=True)
        (checkout / relative).write_text(text)
    git(checkout, "add", ".")
    git(checkout, "commit", "-qm", "initial")
    git(checkout.parent, "clone", "-q", "--bare", name, f"{name}.git")
    git(checkout, "remote", "add", "origin", str(checkout.parent / f"{name}.git"))
    git(checkout, "fetch", "-q", "origin")
    return checkout


def url_of(name: str) -> str:
    return (Path(f"{name}.git").absolute()).as_uri()


def unleak(*args: str) -> Result:
    return CliRunner().invoke(app, ["bulk", *args])


def report(*args: str) -> dict[str, dict]:
    """Run bulk with --report; the report's rows by repository name."""
    result = unleak(*args, "--report", "report.json")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    rows = json.loads(Path("report.json").read_text())["repositories"]
    return {row["name"]: row for row in rows}


def snapshot(checkout: Path) -> tuple[str, str, str, bytes, str]:
    """What the user sees of a checkout: branch, HEAD, status, index, the working tree's file."""
    index = (checkout / ".git" / "index").read_bytes()
    status = git(checkout, "status", "--porcelain", "--untracked-files=all")
    app_file = (checkout / "app.py").read_text()
    return git(checkout, "branch", "--show-current"), git(checkout, "rev-parse", "HEAD"), status, index, app_file


# --- --branch ----------------------------------------------------------------------------------


def test_branch_commits_the_fixes_in_a_separate_worktree_leaving_the_checkout_untouched() -> None:
    checkout = make_repository("service", {"app.py": BARE, "lib/ok.py": CLEAN})
    (checkout / "notes.txt").write_text("untracked, the user's\n")  # untracked files do not block
    before = snapshot(checkout)

    result = unleak("service", "--branch", "unleak/fixes")

    assert result.exit_code == 0, result.output
    assert snapshot(checkout) == before, "working tree, index and current branch are untouched"
    assert git(checkout, "show", "unleak/fixes:app.py") + "\n" == FIXED
    assert git(checkout, "rev-parse", "unleak/fixes^") == before[1], "the branch starts from HEAD"
    assert git(checkout, "log", "-1", "--format=%B", "unleak/fixes") == "unleak: 1 fix\n\nUL401 bare-except: 1\n\nFiles:\n  app.py"
    assert git(checkout, "diff", "--name-only", "HEAD", "unleak/fixes") == "app.py"
    assert len(git(checkout, "worktree", "list").splitlines()) == 1, "the temporary worktree is gone"
    assert "changed" in result.stdout


def test_branch_message_replaces_the_first_line() -> None:
    checkout = make_repository("service", {"app.py": BARE})
    assert unleak("service", "--branch", "fix", "--message", "Catch Exception, not everything").exit_code == 0
    assert git(checkout, "log", "-1", "--format=%s", "fix") == "Catch Exception, not everything"
    assert "UL401 bare-except: 1" in git(checkout, "log", "-1", "--format=%b", "fix")


def test_push_from_a_url_clone_puts_the_branch_on_origin() -> None:
    checkout = make_repository("service", {"app.py": BARE})

    rows = report(url_of("service"), "--branch", "unleak/fixes", "--push")

    origin = Path("service.git").absolute()
    assert rows["service"]["status"] == "changed"
    assert git(origin, "show", "unleak/fixes:app.py") + "\n" == FIXED
    assert git(origin, "rev-parse", "unleak/fixes") == rows["service"]["commit"]
    assert git(origin, "rev-parse", "unleak/fixes^") == git(checkout, "rev-parse", "HEAD")


def test_a_bare_repository_folder_is_cloned_and_pushed_to_like_a_url() -> None:
    make_repository("service", {"app.py": BARE})
    origin = Path("service.git").absolute()

    result = unleak("service.git", "--branch", "unleak/fixes", "--push")

    assert result.exit_code == 0, result.output
    assert git(origin, "show", "unleak/fixes:app.py") + "\n" == FIXED
    assert unleak("service.git", "--branch", "other").exit_code == 2, "its branch would be lost without --push"


def test_push_from_a_local_checkout_pushes_to_its_origin() -> None:
    make_repository("service", {"app.py": BARE})
    assert unleak("service", "--branch", "unleak/fixes", "--push").exit_code == 0
    assert git(Path("service.git").absolute(), "show", "unleak/fixes:app.py") + "\n" == FIXED


def test_a_url_with_branch_but_no_push_is_refused_before_any_work() -> None:
    make_repository("service", {"app.py": BARE})
    result = unleak(url_of("service"), "--branch", "fix")
    assert result.exit_code == 2
    assert "needs --push" in result.output


def test_existing_branch_and_uncommitted_changes_skip_the_repository_and_the_others_go_on() -> None:
    taken = make_repository("taken", {"app.py": BARE})
    git(taken, "branch", "fix")
    dirty = make_repository("dirty", {"app.py": BARE})
    (dirty / "app.py").write_text(BARE + "x = 1\n")
    on_origin = make_repository("on-origin", {"app.py": BARE})
    git(on_origin, "push", "-q", "origin", "HEAD:refs/heads/fix")
    make_repository("fine", {"app.py": BARE})

    rows = report("taken", "dirty", url_of("on-origin"), "fine", "--branch", "fix", "--push")

    assert {name: row["status"] for name, row in rows.items()} == {
        "taken": "skipped", "dirty": "skipped", "on-origin": "skipped", "fine": "changed",
    }
    assert rows["taken"]["reason"] == "branch fix exists already"
    assert rows["on-origin"]["reason"] == "branch fix exists already"
    assert rows["dirty"]["reason"] == "uncommitted changes in the working tree"
    assert (dirty / "app.py").read_text() == BARE + "x = 1\n"
    assert git(taken, "rev-parse", "fix") == git(taken, "rev-parse", "HEAD"), "the existing branch is left alone"


def test_a_clean_repository_gets_no_branch() -> None:
    checkout = make_repository("tidy", {"app.py": CLEAN})
    rows = report("tidy", "--branch", "fix")
    assert rows["tidy"]["status"] == "clean"
    assert git(checkout, "branch", "--list", "fix") == ""


# --- --patch-dir -------------------------------------------------------------------------------


def test_patch_dir_writes_patches_that_git_apply_turns_into_the_fixes() -> None:
    first = make_repository("first", {"app.py": BARE, "pkg/mod.py": "x = 1\n" + BARE})
    make_repository("tidy", {"app.py": CLEAN})

    result = unleak("first", url_of("tidy"), "--patch-dir", "patches")

    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in Path("patches").iterdir()) == ["first.patch"], "no patch for a clean repository"
    assert (first / "app.py").read_text() == BARE, "the checkout is untouched"
    git(first, "apply", str(Path("patches/first.patch").absolute()))
    assert (first / "app.py").read_text() == FIXED
    assert (first / "pkg/mod.py").read_text() == "x = 1\n" + FIXED


# --- --check -----------------------------------------------------------------------------------


def test_check_reports_only_and_exits_1_on_findings() -> None:
    checkout = make_repository("service", {"app.py": BARE, "config.py": UNSAFE_FIX})
    make_repository("tidy", {"app.py": CLEAN})
    before = snapshot(checkout)

    result = unleak("service", "tidy", "--check", "--report", "report.json")

    assert result.exit_code == 1
    assert snapshot(checkout) == before
    assert git(checkout, "branch", "--list") == "* main"
    rows = {row["name"]: row for row in json.loads(Path("report.json").read_text())["repositories"]}
    assert rows["service"]["status"] == "changed"  # what apply would change
    assert rows["service"]["fixes"] == {"UL401": 1}
    assert rows["service"]["findings_left"] == 1  # UL501's fix is unsafe
    assert rows["tidy"]["status"] == "clean"


def test_check_exits_0_when_every_repository_is_clean() -> None:
    make_repository("tidy", {"app.py": CLEAN})
    assert unleak("tidy", "--check").exit_code == 0


# --- each repository's own configuration -------------------------------------------------------


def test_each_repository_runs_with_its_own_pyproject_and_the_flags_on_top() -> None:
    make_repository("ignores", {"app.py": BARE, "pyproject.toml": '[tool.unleak]\nignore = ["UL401"]\n'})
    make_repository("unsafe", {"config.py": UNSAFE_FIX, "pyproject.toml": "[tool.unleak]\nunsafe = true\n"})
    make_repository("plain", {"app.py": BARE, "config.py": UNSAFE_FIX})

    rows = report("ignores", "unsafe", "plain", "--patch-dir", "patches")

    assert rows["ignores"]["status"] == "clean"
    assert rows["unsafe"]["fixes"] == {"UL501": 1}
    assert rows["plain"]["fixes"] == {"UL401": 1}
    assert rows["plain"]["findings_left"] == 1
    assert report("plain", "--check", "--select", "UL501", "--unsafe")["plain"]["fixes"] == {"UL501": 1}


def test_settings_resolver_rooted_in_a_repository_does_not_read_a_pyproject_above_it(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.unleak]\nignore = ["UL401"]\n')
    (tmp_path / "repo" / "src").mkdir(parents=True)
    rooted = SettingsResolver(Overrides(), root=tmp_path / "repo").for_folder(tmp_path / "repo" / "src")
    unrooted = SettingsResolver(Overrides()).for_folder(tmp_path / "repo" / "src")
    assert (rooted.ignore, rooted.root) == ((), (tmp_path / "repo").absolute())
    assert unrooted.ignore == ("UL401",)


# --- isolation, summary, report, exit codes ----------------------------------------------------


def test_failing_repositories_are_reported_and_the_others_go_on() -> None:
    make_repository("good", {"app.py": BARE})
    badconfig = make_repository("badconfig", {"app.py": BARE, "pyproject.toml": "[tool.unleak]\nselect = 1\n"})
    Path("plain-folder").mkdir()
    make_repository("broken", {"app.py": BARE, "old.py": "try:\n    x()\nexcept:\n    print 'python 2'\n"})

    result = unleak(
        "good", "plain-folder", "missing", "badconfig", "broken", (Path("nowhere.git").absolute()).as_uri(),
        "--patch-dir", "patches", "--report", "report.json",
    )

    assert result.exit_code == 2
    rows = {row["name"]: row for row in json.loads(Path("report.json").read_text())["repositories"]}
    assert list(rows) == ["good", "plain-folder", "missing", "badconfig", "broken", "nowhere"], "in the order given"
    assert {name: row["status"] for name, row in rows.items()} == {
        "good": "changed", "plain-folder": "failed", "missing": "failed",
        "badconfig": "failed", "broken": "changed", "nowhere": "failed",
    }
    assert rows["plain-folder"]["reason"] == "not a git repository"
    assert rows["missing"]["reason"] == "no such folder"
    assert "'tool.unleak.select' must be a list of strings" in rows["badconfig"]["reason"]
    assert len(git(badconfig, "worktree", "list").splitlines()) == 1, "the worktree is removed after a failure too"
    assert rows["nowhere"]["reason"].endswith("nowhere.git' does not appear to be a git repository")
    assert len(rows["broken"]["errors"]) == 1 and rows["broken"]["errors"][0].startswith("old.py: ")
    assert json.loads(Path("report.json").read_text())["totals"] == {"changed": 2, "clean": 0, "skipped": 0, "failed": 4}
    assert Path("patches/good.patch").is_file() and Path("patches/broken.patch").is_file()
    assert f"broken: error: {rows['broken']['errors'][0]}" in result.stdout


def test_an_internal_error_fails_only_its_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    make_repository("service", {"app.py": BARE})

    def broken_engine(task: bulk.Task, worktree: Path) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(bulk, "_run_engine", broken_engine)
    task = bulk.Task(str(Path("service").absolute()), "service", bulk.Action.CHECK, Overrides())
    result = bulk.run_repository(task)
    assert (result.status, result.reason) == (bulk.Status.FAILED, "internal error: RuntimeError: boom")


def test_a_lost_worker_process_fails_only_its_repository() -> None:
    lost: Future[bulk.RepositoryResult] = Future()
    lost.set_exception(BrokenProcessPool("a child process terminated abruptly"))
    task = bulk.Task("/x/service", "service", bulk.Action.CHECK, Overrides())
    result = scheduling._result_of(lost, task)
    assert result.status is bulk.Status.FAILED
    assert result.reason == "internal error: the worker failed: BrokenProcessPool: a child process terminated abruptly"


def test_summary_table_has_a_row_per_repository_with_every_column() -> None:
    make_repository("service", {"app.py": BARE, "config.py": UNSAFE_FIX})
    result = unleak("service", "--check")
    header = next(line for line in result.stdout.splitlines() if "repo" in line)
    for column in ("repo", "status", "files changed", "fixes", "findings left", "errors", "seconds"):
        assert column in header
    row = next(line for line in result.stdout.splitlines() if "service" in line)
    assert [cell.strip() for cell in row.strip("│ ").split("│")][:6] == ["service", "changed", "1", "UL401 1", "1", "0"]


def test_from_file_reads_one_repository_a_line_with_comments() -> None:
    make_repository("one", {"app.py": BARE})
    make_repository("two", {"app.py": CLEAN})
    Path("repos.txt").write_text(f"# the fleet\none\n\n{url_of('two')}\n")
    assert list(report("--from-file", "repos.txt", "--check")) == ["one", "two"]


@pytest.mark.parametrize(
    ("flags", "complaint"),
    [
        ((), "choose one of --branch NAME, --patch-dir DIR and --check"),
        (("--check", "--patch-dir", "p"), "choose one of"),
        (("--check", "--push"), "--push and --message go with --branch"),
        (("--branch", "bad..name"), "not a valid branch name"),
        (("--check", "--select", "UL999"), "UL999"),
    ],
)
def test_bad_flags_stop_before_any_work(flags: tuple[str, ...], complaint: str) -> None:
    make_repository("service", {"app.py": BARE})
    result = unleak("service", *flags)
    assert result.exit_code == 2
    assert complaint in result.output
    assert not Path("patches").exists()


def test_no_repository_is_a_usage_error() -> None:
    result = unleak("--check")
    assert result.exit_code == 2
    assert "no repository given" in result.output


def test_repository_names_are_short_and_unique() -> None:
    names = repository_names(["/a/api", "file:///srv/git/api.git", "git@host:org/web.git", "https://h/x/web/"])
    assert names == ["api", "api-2", "web", "web-2"]


# --- progress on a terminal --------------------------------------------------------------------


def test_progress_bar_over_repositories_on_a_terminal() -> None:
    make_repository("one", {"app.py": BARE})
    make_repository("two", {"app.py": CLEAN})
    environment = {key: value for key, value in os.environ.items() if key != "CI"}
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "unleak", "bulk", "one", "two", "--check"],
        stdout=subprocess.PIPE, stderr=terminal, env=environment,
    )
    os.close(terminal)
    drawn = _read_all(controller, process)
    assert process.wait(timeout=120) == 1
    assert "━" in drawn and "2/2" in drawn, "a bar with the count of repositories done"


def _read_all(descriptor: int, process: subprocess.Popen[bytes]) -> str:
    chunks = []
    while True:
        ready, _, _ = select.select([descriptor], [], [], 120)
        try:
            chunk = os.read(descriptor, 4096) if ready else b""
        except OSError:  # the terminal's other end is closed: the process is done
            chunk = b""
        if not chunk:
            break
        chunks.append(chunk)
    assert process.stdout is not None
    process.stdout.read()
    return b"".join(chunks).decode("utf-8", "replace")
