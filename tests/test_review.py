"""`unleak apply --interactive`, typed at through a real pseudo-terminal (pexpect).

Each test starts `python -m unleak apply -i` on a pty in a fresh project folder, waits for each
question, types the answer, and then reads the files: exactly the accepted fixes are written.
"""

from __future__ import annotations

import io
import itertools
import os
import shutil
import sys
from pathlib import Path

import pexpect
import pytest
from typer.testing import CliRunner

from unleak.cli import app
from unleak.engine.findings import Edit, FileResult, Finding
from unleak.engine.runner import Mode, run
from unleak.output import review
from unleak.settings import Overrides, SettingsResolver
from tests.helpers import EXAMPLES
from tests.test_output_formats import NESTED  # UL202's fix contains UL401's

PROMPT = "Apply? [y]es, [n]o, [a]ll in this file, [d]one with this file, [q]uit, [?] help "

# Three fixes: UL101 (removes the import, awaits), then two bare `except:` (UL401).
THREE_FIXES = (
    "import asyncio\n"
    "\n"
    "async def f():\n"
    "    asyncio.run(g())\n"
    "    try:\n"
    "        x()\n"
    "    except:\n"
    "        pass\n"
    "    try:\n"
    "        y()\n"
    "    except:\n"
    "        pass\n"
)
# Two UL101 fixes; the import they make stale is removed by the first one's edits.
SHARED_IMPORT = "import asyncio\n\n\nasync def f():\n    asyncio.run(g())\n\n\nasync def h():\n    asyncio.run(g())\n"
# UL102's fix is unsafe (not made without --unsafe); the bare `except:` below is fixable.
UNSAFE_AND_FIXABLE = (
    "import asyncio\n"
    "\n"
    "def notify_all(users):\n"
    "    for user in users:\n"
    "        asyncio.run(notify(user))\n"
    "\n"
    "try:\n"
    "    risky()\n"
    "except:\n"
    "    pass\n"
)


@pytest.fixture(autouse=True)
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")  # a project: the cache is used
    return tmp_path


class Session:
    """`unleak apply -i` on a pseudo-terminal."""

    def __init__(self, *args: str, colour: bool = False) -> None:
        env = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
        if not colour:
            env["NO_COLOR"] = "1"
        self.child = pexpect.spawn(
            sys.executable, ["-m", "unleak", "apply", "-i", *args], env=env, encoding="utf-8", timeout=120
        )
        self.seen: list[str] = []

    def answer(self, *replies: str) -> None:
        """Wait for each question in turn and type the reply."""
        for reply in replies:
            self.child.expect_exact(PROMPT)
            self.seen.append(self.child.before)
            self.child.sendline(reply)

    def finish(self) -> tuple[int, str]:
        """The exit status and everything printed after the last answer."""
        self.child.expect(pexpect.EOF)
        self.child.close()
        return self.child.exitstatus, self.child.before


def write(name: str, text: str) -> None:
    Path(name).write_text(text)


def read(name: str) -> str:
    return Path(name).read_text()


def test_accepted_fixes_are_written_and_the_rejected_neighbour_is_not() -> None:
    write("a.py", THREE_FIXES)
    session = Session("a.py")
    session.answer("y", "n", "y")
    status, tail = session.finish()
    assert status == 0
    assert read("a.py") == (
        "async def f():\n"
        "    await g()\n"
        "    try:\n"
        "        x()\n"
        "    except:\n"  # declined; its neighbours above and below were accepted
        "        pass\n"
        "    try:\n"
        "        y()\n"
        "    except Exception:\n"
        "        pass\n"
    )
    assert "1 files written; fixes: UL101 1, UL401 1" in tail


def test_each_question_shows_the_file_rule_and_the_fix_as_a_hunk() -> None:
    write("a.py", THREE_FIXES)
    session = Session("a.py")
    session.answer("n", "n", "n")
    status, _ = session.finish()
    first, second, third = session.seen
    assert "a.py:4:5: UL101 asyncio-run-in-async: `asyncio.run()` inside an async function" in first
    assert "(fix 1/3 in this file)" in first
    assert "@@ -1,7 +1,5 @@\r\n-import asyncio\r\n-\r\n async def f():\r\n-    asyncio.run(g())\r\n+    await g()\r\n" in first
    assert "a.py:7:5: UL401 bare-except: " in second and "-    except:\r\n+    except Exception:\r\n" in second
    assert "@@ -8,5 +8,5 @@" in third, "each hunk holds only its own fix"
    assert status == 0 and read("a.py") == THREE_FIXES, "all declined: the file is not written"


def test_hunks_are_coloured_on_a_terminal() -> None:
    write("a.py", THREE_FIXES)
    session = Session("a.py", colour=True)
    session.answer("d")
    session.finish()
    assert "\x1b[31m-    asyncio.run(g())\x1b[0m" in session.seen[0]
    assert "\x1b[32m+    await g()\x1b[0m" in session.seen[0]


def test_quit_in_the_middle_keeps_earlier_files_and_writes_nothing_further() -> None:
    for name in ("a.py", "b.py", "c.py"):
        write(name, THREE_FIXES)
    session = Session(".")
    session.answer("a", "y", "q")  # a.py: all; b.py: the first fix, then quit
    status, tail = session.finish()
    assert status == 0
    assert read("a.py") == THREE_FIXES.replace("import asyncio\n\n", "").replace(
        "asyncio.run(g())", "await g()"
    ).replace("except:", "except Exception:")
    assert read("b.py") == THREE_FIXES, "quit before b.py's last decision: b.py is not written"
    assert read("c.py") == THREE_FIXES
    assert "c.py" not in "".join(session.seen) + tail, "nothing is asked or listed after q"
    assert "1 files written; fixes: UL101 1, UL401 2 (quit)" in tail


def test_ctrl_c_at_a_question_exits_130_naming_the_files_written() -> None:
    write("a.py", THREE_FIXES)
    write("b.py", THREE_FIXES)
    session = Session(".")
    session.answer("a")
    session.child.expect_exact(PROMPT)
    session.child.sendintr()
    status, tail = session.finish()
    assert status == 130
    assert "unleak: interrupted; 1 files written:\r\n  a.py\r\n" in tail
    assert read("a.py") != THREE_FIXES and read("b.py") == THREE_FIXES


def test_all_and_done_act_on_the_rest_of_the_file_only() -> None:
    write("a.py", THREE_FIXES)
    write("b.py", THREE_FIXES)
    session = Session(".")
    session.answer("n", "a", "y", "d")  # a.py: not the first, the others; b.py: the first, none after
    status, _ = session.finish()
    assert status == 0
    assert read("a.py") == THREE_FIXES.replace("except:", "except Exception:")
    assert read("b.py") == THREE_FIXES.replace("import asyncio\n\n", "").replace("asyncio.run(g())", "await g()")
    assert len(session.seen) == 4


def test_help_and_unknown_answers_ask_again() -> None:
    write("a.py", THREE_FIXES)
    session = Session("a.py")
    session.answer("?", "maybe", "d")
    session.finish()
    assert "q - quit; write nothing further" in session.seen[1]
    assert "d - do not apply this fix or any later fix in the file" in session.seen[2]
    assert read("a.py") == THREE_FIXES


def test_an_import_two_fixes_share_stays_while_a_declined_fix_still_uses_it() -> None:
    write("a.py", SHARED_IMPORT)
    session = Session("a.py")
    session.answer("y", "n")
    assert session.finish()[0] == 0
    assert read("a.py") == SHARED_IMPORT.replace("asyncio.run(g())", "await g()", 1)


def as_apply_writes(text: str) -> str:
    """What plain `unleak apply` makes of `text` (in a file of its own)."""
    write("twin.py", text)
    assert CliRunner().invoke(app, ["apply", "twin.py"]).exit_code == 0
    return read("twin.py")


def test_accepting_every_fix_writes_what_apply_writes() -> None:
    write("a.py", SHARED_IMPORT)
    session = Session("a.py")
    session.answer("y", "y")
    assert session.finish()[0] == 0
    assert read("a.py") == as_apply_writes(SHARED_IMPORT)


def test_a_fix_nested_in_another_comes_with_it_and_is_named() -> None:
    write("a.py", NESTED)
    session = Session("a.py")
    session.answer("y")
    status, tail = session.finish()
    assert status == 0 and len(session.seen) == 1, "one question: the inner fix has no edits of its own"
    assert "a.py:2:5: UL202 unmanaged-resource: " in session.seen[0]
    assert "  also fixes UL401 bare-except at line 5 (nested in this fix)" in session.seen[0]
    assert "fixes: UL202 1, UL401 1" in tail
    assert read("a.py") == as_apply_writes(NESTED)


def test_findings_without_a_fix_are_listed_after_the_files_fixes() -> None:
    write("a.py", UNSAFE_AND_FIXABLE)
    write("b.py", THREE_FIXES)
    session = Session(".")
    session.answer("y", "q")
    session.finish()
    assert "UL102" not in session.seen[0], "only the fixes are asked about"
    assert "a.py:3:1: UL102 " in session.seen[1] and "(unsafe fix available with --unsafe)" in session.seen[1]
    assert session.seen[1].index("UL102") < session.seen[1].index("b.py:4:5: UL101")
    assert read("a.py") == UNSAFE_AND_FIXABLE.replace("except:", "except Exception:")


def test_the_cache_never_keeps_a_partial_review_as_the_fix() -> None:
    write("a.py", THREE_FIXES)
    assert CliRunner().invoke(app, ["diff", "a.py"]).exit_code == 1  # fills the cache for the original
    session = Session("a.py")
    session.answer("y", "n", "n")
    assert session.finish()[0] == 0
    cached, uncached = (CliRunner().invoke(app, ["diff", "a.py", *flags]) for flags in ([], ["--no-cache"]))
    assert cached.stdout == uncached.stdout
    assert "+    except Exception:" in cached.stdout, "the declined fixes are still proposed"


def test_interactive_is_refused_outside_apply_and_for_stdin() -> None:
    for args in (["check", "-i", "."], ["apply", "-i", "-"], ["apply", "-i", "--format", "json", "."]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and "--interactive" in result.output


# --- the review without a terminal: a subset that does not verify ------------------------------


def typed(*replies: str) -> review.Terminal:
    """A terminal whose user types `replies`, then ends the input."""
    left = list(replies)

    def read_line() -> str:
        if not left:
            raise EOFError
        return left.pop(0) + "\n"

    return review.Terminal(sys.stdout, read_line, colour=False)


def finding(line: int, edits: tuple[Edit, ...]) -> Finding:
    return Finding("a.py", line, 1, line, 6, "UL401", "bare-except", "message", True, "safe", True, edits)


def test_a_subset_that_does_not_verify_leaves_the_file_unchanged() -> None:
    original = "x = (1,\n     2)\n"
    Path("a.py").write_text(original)
    # Two edits that only make sense together: each alone leaves a bracket open.
    opened, closed = Edit(1, 5, 1, 6, "["), Edit(2, 7, 2, 8, "]")
    result = FileResult("a.py", Path("a.py"), original.encode(), findings=[finding(1, (opened,)), finding(2, (closed,))])
    done = review.review([result], typed("y", "n"))
    assert done.written == [] and len(done.errors) == 1
    assert done.errors[0].startswith("a.py: error: the accepted fixes: the result does not parse: ")
    assert done.errors[0].endswith("; file left unchanged")
    assert read("a.py") == original
    both = review.review([result], typed("y", "y"))
    assert both.written == ["a.py"] and read("a.py") == "x = [1,\n     2]\n"


@pytest.mark.parametrize("pattern", ["yn", "ny"])
def test_every_other_fix_of_the_example_apps_gives_files_that_compile(pattern: str) -> None:
    shutil.copytree(EXAMPLES, "examples", ignore=shutil.ignore_patterns("__pycache__"))
    outcome = run(Mode.CHECK_WITH_EDITS, [Path("examples")], SettingsResolver(Overrides(unsafe=True), None), 1)
    answers = itertools.cycle(pattern)
    done = review.review(outcome.results, review.Terminal(io.StringIO(), lambda: next(answers) + "\n", colour=False))
    assert done.errors == [] and len(done.written) >= 5 and sum(done.fixes.values()) >= 8
    for path in Path("examples").rglob("*.py"):
        compile(path.read_text(), str(path), "exec")
