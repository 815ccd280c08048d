"""Stage 8: what the user reads: findings as text, errors, the apply summary (other formats:
`unleak.output.formats`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from unleak.engine.findings import FileResult, Finding


def error_lines(results: Iterable[FileResult]) -> list[str]:
    return [f"{result.display}: error: {result.error}" for result in results if result.error]


_UNSAFE_HINT = "unsafe fix available with --unsafe"


def finding_line(finding: Finding) -> str:
    mark = " [*]" if finding.applicable else ""
    hint = f" ({_UNSAFE_HINT})" if finding.fixable and not finding.applicable else ""
    return f"{finding.path}:{finding.line}:{finding.column}: {finding.rule} {finding.message}{mark}{hint}"


def fix_note(finding: Finding) -> str:
    """What a reader can do about a finding's fix, in words ("" when there is no fix)."""
    if finding.applicable:
        return "fixed by `unleak apply`"
    return _UNSAFE_HINT if finding.fixable else ""


def findings_of(results: Iterable[FileResult]) -> list[Finding]:
    return [finding for result in results for finding in result.findings]


def fix_counts(results: Iterable[FileResult]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for result in results:
        if result.fixed is not None and not result.error:
            counts.update(result.fixes)
    return counts


def summary(scanned: int, skipped: int, results: list[FileResult]) -> dict[str, object]:
    """The numbers `unleak apply` ends with."""
    return {
        "files_scanned": scanned,
        "skipped_by_prefilter": skipped,
        "changed": sum(1 for result in results if result.fixed is not None and not result.error),
        "fixes": dict(sorted(fix_counts(results).items())),
        "left_for_a_human": len(findings_of(results)),
        "errors": sum(1 for result in results if result.error),
    }


def per_rule(fixes: dict[str, int]) -> str:
    """Fix counts as `UL101 2, UL401 1` (by code), or `none`."""
    return ", ".join(f"{code} {count}" for code, count in sorted(fixes.items())) or "none"


def summary_text(numbers: dict[str, object]) -> str:
    fixes = numbers["fixes"]
    assert isinstance(fixes, dict)
    return (
        f"unleak: {numbers['files_scanned']} files scanned, {numbers['skipped_by_prefilter']} skipped by the "
        f"prefilter, {numbers['changed']} changed; fixes: {per_rule(fixes)}; "
        f"{numbers['left_for_a_human']} findings left for a human; {numbers['errors']} errors"
    )
