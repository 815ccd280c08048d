"""`--format json`: the findings as a JSON list; with `--edits`, each with its fix as edits.

A fix is `{"applicability": "safe" | "unsafe", "edits": [{"line", "column", "end_line",
"end_column", "content"}]}`, positions on the original file (1-based, the end exclusive), as ruff's
JSON gives them; `null` for a finding whose fix `apply` would not make under the same options.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from unleak.engine.findings import Finding


def listing(findings: list[Finding], *, with_fixes: bool) -> list[dict[str, Any]]:
    if not with_fixes:
        return [finding.as_json() for finding in findings]
    return [{**finding.as_json(), "fix": fix(finding)} for finding in findings]


def fix(finding: Finding) -> dict[str, Any] | None:
    if finding.edits is None:
        return None
    return {"applicability": finding.safety, "edits": [asdict(edit) for edit in finding.edits]}
