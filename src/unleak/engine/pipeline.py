"""One file through the stages: decode -> parse -> transform -> verify -> encode.

`process` is what a worker process runs; it takes and returns plain data, so it can run in a
process pool or in this process alike. The project indexes reach a worker once, through
`install_indexes`, not with every job. This module imports LibCST and the rules a file needs:
the parent process imports it only when it processes a file itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

from unleak import registry
from unleak.engine import edits, source, transform
from unleak.errors import UserError
from unleak.engine.findings import FileResult, Finding
from unleak.engine.jobs import Job
from unleak.engine.parse import parse
from unleak.engine.prefilter import possible_in_tree, quick_parse, triggered_rules
from unleak.rule import Rule
from unleak.engine.verify import Verifier
from unleak.knowledge.declarations import module_facts
from unleak.knowledge.project import ProjectIndex, ProjectView


_indexes: dict[str, ProjectIndex] = {}


def install_indexes(indexes: dict[str, ProjectIndex]) -> None:
    """Make the run's project indexes (by root) available to `process` in this process."""
    _indexes.clear()
    _indexes.update(indexes)


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
    tree = quick_parse(decoded.text)
    project = _project_view(job, tree)
    result.project_answers = project.used  # filled in as the rules ask
    rules = possible_in_tree(tree, triggered, job.settings, project)
    if not rules:
        result.parsed = False
        return
    module = parse(decoded.text, job.display)
    if not job.fixing:
        reports = transform.find(module, rules, job.settings, project)
    else:
        outcome = transform.fix(module, rules, job.settings, project, Verifier(decoded.text, job.display), _widen(job, project))
        reports = outcome.remaining
        result.fixes = outcome.fixes
        if outcome.module.code != decoded.text:
            result.fixed = source.encode(outcome.module.code, decoded, job.display)
    result.findings = [Finding.from_report(report, job.display, job.settings) for report in reports]
    if job.proposing:
        verifier = Verifier(decoded.text, job.display)
        widen = _widen(job, project)
        result.findings = edits.proposed(result.findings, reports, module, rules, job.settings, project, verifier, widen)


def _widen(job: Job, project: ProjectView) -> transform.Widen:
    """The selected rules a fixed source triggers (bytes, then the `ast` checks)."""
    selected = tuple(registry.rule_by_code(code) for code in job.selected)

    def triggered_by(code: str) -> tuple[type[Rule], ...]:
        rules = triggered_rules(code.encode("utf-8"), selected, job.settings)
        return possible_in_tree(quick_parse(code), rules, job.settings, project) if rules else ()

    return triggered_by


def _project_view(job: Job, tree: ast.Module | None) -> ProjectView:
    """The project as this file sees it: its own module-level facts, and its project's index."""
    # A source from stdin with --stdin-filename stands for that file (its relative imports too).
    stands_for = job.path or (Path(job.display) if job.project_root else None)
    path = None
    if stands_for is not None and job.project_root is not None:
        path = stands_for.absolute().relative_to(job.project_root).as_posix()
    own = module_facts(tree, path) if tree is not None else ProjectView.empty().own
    index = _indexes.get(job.project_root or "") or ProjectIndex()
    return index.view(own)
