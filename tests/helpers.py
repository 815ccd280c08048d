"""Shared test helpers: run the real pipeline on a source string, the way the CLI does."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from unleak import registry
from unleak.engine.findings import FileResult
from unleak.engine.pipeline import Job, process
from unleak.engine.prefilter import triggered_rules
from unleak.rule import Rule
from unleak.settings import Settings


def run_rules(
    code: str, rules: tuple[type[Rule], ...] | None = None, *, fixing: bool = True, unsafe: bool = False
) -> FileResult:
    """Process `code` (as file `example.py`) through prefilter, parse, transform and verify."""
    raw = code.encode("utf-8")
    chosen = rules if rules is not None else registry.all_rules()
    settings = Settings(unsafe=unsafe)
    codes = tuple(rule.code for rule in triggered_rules(raw, chosen, settings))
    return process(Job("example.py", None, raw, codes, settings, fixing))


def fixed_text(result: FileResult) -> str:
    assert result.error is None, result.error
    return (result.fixed if result.fixed is not None else result.original).decode("utf-8")


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT_SECONDS = 60  # a backstop only: each program stops itself within a second or two


@dataclass(frozen=True)
class ExampleCopy:
    """A copy of one `examples/` folder, with the program to run in it (runtime proof)."""

    folder: Path
    program: Path

    @classmethod
    def of(cls, example: str, program: str, tmp_path: Path) -> ExampleCopy:
        folder = Path(shutil.copytree(EXAMPLES / example, tmp_path / example, ignore=shutil.ignore_patterns("__pycache__")))
        return cls(folder, folder / program)

    def run(self) -> subprocess.CompletedProcess[str]:
        return _run([sys.executable, str(self.program)], cwd=self.folder)

    def apply_fixes(self, *flags: str) -> None:
        """`unleak apply` the folder: it must change the program, and a second run nothing at all."""
        original = self.program.read_bytes()
        self._apply(flags)
        fixed = self._snapshot()
        assert self.program.read_bytes() != original, f"unleak apply left {self.program.name} unchanged"
        self._apply(flags)
        assert self._snapshot() == fixed, "a second unleak apply changed the folder again"

    def fails_then_works_after_apply(self, failing: str, working: str) -> str:
        """The program fails (exit 1) printing `failing`; after `unleak apply` it works (exit 0)
        printing `working`. Returns the fixed program's source, for what the fix wrote."""
        before = self.run()
        assert before.returncode == 1, before.stderr
        assert before.stdout == failing
        self.apply_fixes()
        after = self.run()
        assert after.returncode == 0, after.stderr
        assert after.stdout == working
        return self.program.read_text(encoding="utf-8")

    def _apply(self, flags: tuple[str, ...]) -> None:
        result = _run([sys.executable, "-m", "unleak", "apply", *flags, str(self.folder)], cwd=self.folder)
        assert result.returncode == 0, result.stderr

    def _snapshot(self) -> dict[str, bytes]:
        return {str(path.relative_to(self.folder)): path.read_bytes() for path in sorted(self.folder.rglob("*")) if path.is_file()}


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
