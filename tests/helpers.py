"""Shared test helpers: run the real pipeline on a source string, the way the CLI does."""

from __future__ import annotations

from unleak import registry
from unleak.findings import FileResult
from unleak.pipeline import Job, process
from unleak.prefilter import triggered_rules
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
