"""One file through the stages: decode -> parse -> transform -> verify -> encode.

`process` is what a worker process runs; it takes and returns plain data, so it can run in a
process pool or in this process alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from unleak import registry
from unleak.engine import source, transform
from unleak.errors import UserError
from unleak.engine.findings import FileResult, Finding
from unleak.engine.parse import parse
from unleak.engine.prefilter import structurally_possible
from unleak.settings import Settings
from unleak.engine.verify import Verifier


@dataclass(frozen=True)
class Job:
    display: str
    path: Path | None  # None when the source came from stdin
    raw: bytes
    rule_codes: tuple[str, ...]  # the selected rules whose triggers occur in `raw`
    settings: Settings
    fixing: bool  # False: only report (check); True: apply fixes (diff, apply)


def process(job: Job) -> FileResult:
    result = FileResult(display=job.display, path=job.path, original=job.raw)
    try:
        _process(job, result)
    except (UserError, transform.RuleFailure) as error:
        result.error = error.reason if isinstance(error, UserError) else str(error)
        result.fixed = None
    return result


def _process(job: Job, result: FileResult) -> None:
    decoded = source.decode(job.raw, job.display)
    triggered = tuple(registry.rule_by_code(code) for code in job.rule_codes)
    rules = structurally_possible(decoded.text, triggered, job.settings)
    if not rules:
        result.parsed = False
        return
    module = parse(decoded.text, job.display)
    if not job.fixing:
        reports = transform.find(module, rules, job.settings)
    else:
        outcome = transform.fix(module, rules, job.settings, Verifier(decoded.text, job.display))
        reports = outcome.remaining
        result.fixes = outcome.fixes
        if outcome.module.code != decoded.text:
            result.fixed = source.encode(outcome.module.code, decoded, job.display)
    result.findings = [Finding.from_report(report, job.display, job.settings) for report in reports]
