"""LibCST is imported only where a file needs it: the registry reads each rule's declarations
from its module's source, and the pipeline runs (and imports) only where a file is processed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from unleak import registry
from unleak.settings import ResourcePair, Settings

BARE = "try:\n    risky()\nexcept:\n    handle()\n"


def unleak_importing(folder: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `unleak` in a fresh interpreter under `-X importtime`: its output, and the modules it imported."""
    command = [sys.executable, "-X", "importtime", "-m", "unleak", *args]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=120)
    imported = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return done, imported


def libcst_modules(imported: set[str]) -> set[str]:
    return {module for module in imported if module == "libcst" or module.startswith("libcst.")}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[tool.unleak]\n")
    for name in ("one", "two", "three"):
        (tmp_path / f"{name}.py").write_text(f"def {name}():\n    return {name!r}\n")
    return tmp_path


def test_a_run_where_no_file_passes_the_prefilter_never_imports_libcst(project: Path) -> None:
    done, imported = unleak_importing(project, "check", ".", "--jobs", "2", "--no-cache")
    assert done.returncode == 0, done.stderr
    assert "unleak.registry" in imported, "the run's imports are listed"
    assert libcst_modules(imported) == set()


def test_a_fully_cached_run_never_imports_libcst_and_prints_the_same(project: Path) -> None:
    (project / "worker.py").write_text(BARE)
    (project / "loops.py").write_text("import asyncio\n\nasync def main():\n    asyncio.run(work())\n")
    first, _ = unleak_importing(project, "check", ".", "--jobs", "2")
    second, imported_second = unleak_importing(project, "check", ".", "--jobs", "2")
    assert "UL401" in first.stdout and "UL101" in first.stdout, first.stderr
    assert second.stdout == first.stdout and second.returncode == first.returncode == 1
    assert libcst_modules(imported_second) == set()


def test_a_run_that_parses_still_finds_and_fixes(project: Path) -> None:
    (project / "worker.py").write_text(BARE)
    (project / "other.py").write_text(BARE.replace("risky", "other"))
    done, _ = unleak_importing(project, "apply", ".", "--jobs", "2")
    assert done.returncode == 0, done.stderr
    assert (project / "worker.py").read_text() == BARE.replace("except:", "except Exception:")
    assert (project / "other.py").read_text() == BARE.replace("risky", "other").replace("except:", "except Exception:")


@pytest.mark.parametrize("rule", registry.all_rules(), ids=lambda rule: rule.code)
def test_each_rule_s_entry_is_what_its_class_declares(rule: type) -> None:
    entry = registry.entry_by_code(rule.code)
    assert isinstance(entry, registry.RuleEntry)
    assert (entry.name, entry.trigger, entry.uses_project, entry.trigger_reads) == (
        rule.name, rule.trigger, rule.uses_project, rule.trigger_reads,
    )  # fmt: skip
    assert entry.trigger_for(Settings()) == rule.trigger_for(Settings())
    assert entry.load() is rule


def test_the_entries_are_every_rule() -> None:
    assert [entry.code for entry in registry.entries()] == [rule.code for rule in registry.all_rules()]


def test_a_trigger_that_reads_the_settings_comes_from_the_rule_itself() -> None:
    configured = Settings(resources=(ResourcePair("get_browser", "cleanup", "browser_context"),))
    entry = registry.entry_by_code("UL202")
    assert entry.trigger_for(configured) == registry.rule_by_code("UL202").trigger_for(configured) != entry.trigger


@pytest.mark.parametrize(
    "declaration",
    ['trigger = (rb"a" + rb"b",)', 'trigger = TRIGGERS', "uses_project = bool(1)"],
)
def test_a_declaration_that_is_not_a_literal_is_an_error(tmp_path: Path, declaration: str) -> None:
    module = tmp_path / "ul999_computed.py"
    module.write_text(
        textwrap.dedent(
            f"""
            class Computed(Rule):
                code = "UL999"
                name = "computed"
                {declaration}

                def visit_Name(self, node):
                    pass
            """
        )
    )
    with pytest.raises(registry.UnreadableRule, match="not a literal"):
        registry.described(module, "ul999_computed")


def test_a_declaration_after_the_first_method_is_an_error(tmp_path: Path) -> None:
    module = tmp_path / "ul999_late.py"
    module.write_text('class Late(Rule):\n    code = "UL999"\n\n    def f(self):\n        pass\n\n    name = "late"\n    trigger = ()\n')
    with pytest.raises(registry.UnreadableRule, match="name, trigger must be literals"):
        registry.described(module, "ul999_late")
