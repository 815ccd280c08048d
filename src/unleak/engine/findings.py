"""What leaves a worker: plain, picklable findings and per-file results (no CST nodes)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unleak.settings import Settings

if TYPE_CHECKING:
    from unleak.rule import Report


@dataclass(frozen=True)
class Edit:
    """Replace the original text from (line, column) up to (end_line, end_column) with `content`.

    Positions are 1-based, columns count characters (as in findings); the end is exclusive, and
    an insertion has end == start.
    """

    line: int
    column: int
    end_line: int
    end_column: int
    content: str


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    column: int  # 1-based, as ruff prints it
    end_line: int
    end_column: int
    rule: str
    name: str
    message: str
    fixable: bool  # the rule offers a fix (see `safety` for whether it runs by default)
    safety: str  # safe | unsafe | detect
    applicable: bool  # the fix runs under the current settings (`[*]` in text output)
    # What `apply` would change for this finding, on the original text (`check` with edits only;
    # None otherwise, and for a fix that does not run). See `unleak.engine.edits`.
    edits: tuple[Edit, ...] | None = None

    @classmethod
    def from_report(cls, report: Report, path: str, settings: Settings) -> Finding:
        from unleak.engine.transform import is_applicable  # in the worker, where LibCST is loaded already

        start, end = report.position.start, report.position.end
        return cls(
            path=path,
            line=start.line,
            column=start.column + 1,
            end_line=end.line,
            end_column=end.column + 1,
            rule=report.rule.code,
            name=report.rule.name,
            message=report.message,
            fixable=report.replacement is not None,
            safety=report.safety.value,
            applicable=is_applicable(report, settings),
        )

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["applicable"], data["edits"]
        return data


@dataclass
class FileResult:
    display: str  # the path as shown to the user
    path: Path | None  # where to write; None for stdin
    original: bytes
    fixed: bytes | None = None  # None: nothing to change
    findings: list[Finding] = field(default_factory=list)
    fixes: Counter[str] = field(default_factory=Counter)
    error: str | None = None  # one line, without the "path: error: " prefix
    parsed: bool = True  # False when the prefilter skipped the file
    # What the file's rules asked the project index, with the answers: (question, name) -> answer.
    project_answers: dict[tuple[str, str], str] = field(default_factory=dict)
