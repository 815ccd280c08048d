"""`unleak rules` and `unleak explain`: the rules' own docs and examples, as text or JSON."""

from __future__ import annotations

import inspect
import textwrap
from typing import Any

from unleak.rule import Rule


def documentation(rule: type[Rule]) -> str:
    """The rule module's docstring: What it does / Why is this bad? / Example / Use instead / Fix safety."""
    module = inspect.getmodule(rule)
    return inspect.cleandoc(module.__doc__ or "") if module else ""


def rules_table(rules: tuple[type[Rule], ...]) -> str:
    rows = [("CODE", "NAME", "FIX", "SUMMARY")] + [(r.code, r.name, r.safety.value, r.summary) for r in rules]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3] for row in rows
    )


def explanation(rule: type[Rule]) -> str:
    parts = [f"{rule.code} {rule.name} (fix: {rule.safety.value})", "", rule.summary, "", documentation(rule)]
    for number, case in enumerate(rule.INVALID, start=1):
        parts += ["", f"## Flagged, case {number}" + (" (unsafe fix, with --unsafe)" if case.unsafe else ""), ""]
        parts.append(_indent(case.code))
        if case.fixed is not None:
            parts += ["becomes:", "", _indent(case.fixed)]
        else:
            parts += ["(reported; no automatic fix)"]
    for number, valid_case in enumerate(rule.VALID, start=1):
        parts += ["", f"## Left alone, case {number}", "", _indent(valid_case.code)]
    return "\n".join(parts).rstrip() + "\n"


def _indent(code: str) -> str:
    return textwrap.indent(code.strip("\n"), "    ") + "\n"


def rule_json(rule: type[Rule]) -> dict[str, Any]:
    """One rule for `unleak rules --format json`: code, name, fix safety (safe, unsafe, detect), summary."""
    return {"code": rule.code, "name": rule.name, "safety": rule.safety.value, "summary": rule.summary}


def explanation_json(rule: type[Rule]) -> dict[str, Any]:
    """`unleak explain --format json`: the rule, its documentation, and its examples (fixed: None = report only)."""
    flagged = [{"code": case.code, "fixed": case.fixed, "unsafe": case.unsafe} for case in rule.INVALID]
    return {
        **rule_json(rule),
        "documentation": documentation(rule),
        "flagged": flagged,
        "left_alone": [case.code for case in rule.VALID],
    }
