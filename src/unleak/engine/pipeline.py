"""One file through the stages: decode -> parse -> transform -> verify -> encode.

`process` is what a worker process runs; it takes and returns plain data, so it can run in a
process pool or in this process alike. The project indexes reach a worker once, through
`install_indexes`, not with every job. This module imports LibCST and the rules a file needs:
the parent process imports it only when it processes a file itself.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from functools import cache
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from unleak import registry
from unleak.engine import edits, slicing, source, transform
from unleak.errors import UserError
from unleak.engine.findings import FileResult, Finding
from unleak.engine.jobs import Job
from unleak.engine.parse import parse
from unleak.engine.prefilter import possible_in_tree, quick_parse, triggered_rules
from unleak.rule import Report, Rule
from unleak.engine.verify import Verifier
from unleak.knowledge.declarations import module_facts
from unleak.knowledge.project import ProjectIndex, ProjectView

if TYPE_CHECKING:
    import libcst as cst


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
    ran = _run_sliced(job, decoded.text, tree, rules, project) or _run(job, decoded.text, rules, project)
    reports, module = ran.reports, ran.module
    if ran.fixes is not None:
        result.fixes = ran.fixes
        if ran.fixed != decoded.text:
            result.fixed = source.encode(ran.fixed, decoded, job.display)
    result.findings = [Finding.from_report(report, job.display, job.settings) for report in reports]
    if job.proposing:
        verifier = Verifier(decoded.text, job.display)
        widen = _widen(job, project)
        result.findings = edits.proposed(result.findings, reports, module, rules, job.settings, project, verifier, widen)


@dataclass
class _Ran:
    """What the rules made of a file: their findings, and when fixing, their fixes and the new text."""

    module: cst.Module  # what LibCST parsed: the file, or its slice
    reports: list[Report]
    fixes: Counter[str] | None = None
    fixed: str = ""


def _run_sliced(
    job: Job, text: str, tree: ast.Module | None, rules: tuple[type[Rule], ...], project: ProjectView
) -> _Ran | None:
    """The run on the slice of `text` where the rules can fire; None: run the whole module.
    Proposed edits are a line diff of the whole file: they never come from a slice."""
    sliced = None if job.proposing else slicing.plan(text, tree, rules, job.settings, project)
    if sliced is None:
        return None
    try:
        return _run(job, text, rules, project, sliced)
    except slicing.Fallback:
        return None


def _run(
    job: Job, text: str, rules: tuple[type[Rule], ...], project: ProjectView, sliced: slicing.Slice | None = None
) -> _Ran:
    """The rules run on `text`, or on its slice; a slice that cannot stand for the module raises
    Fallback (see `engine.slicing`)."""
    verifier = Verifier(text, job.display)
    if sliced is None:
        return _run_on(job, parse(text, job.display), rules, project, verifier, _widen(job, project))
    try:
        widen = slicing.sliced_widen(_widen(job, project), sliced, rules)
        seeing_dropped_names = replace(project, names_outside_slice=cache(sliced.dropped_names))
        ran = _run_on(job, parse(sliced.text, job.display), rules, seeing_dropped_names, verifier, widen)
        if ran.fixes is not None:
            ran.fixed = sliced.verified(ran.fixed, verifier)
        return ran
    except (UserError, transform.RuleFailure) as error:
        raise slicing.Fallback(str(error)) from error


def _run_on(
    job: Job, module: cst.Module, rules: tuple[type[Rule], ...], project: ProjectView, verifier: Verifier, widen: transform.Widen | None
) -> _Ran:
    if not job.fixing:
        return _Ran(module, transform.find(module, rules, job.settings, project))
    outcome = transform.fix(module, rules, job.settings, project, verifier, widen)
    return _Ran(module, outcome.remaining, outcome.fixes, outcome.module.code)


def _widen(job: Job, project: ProjectView) -> transform.Widen:
    """The selected rules a fixed source triggers (bytes, then the `ast` checks), the job's own
    among them (a job may name only those)."""
    selected = tuple(registry.rule_by_code(code) for code in dict.fromkeys((*job.rule_codes, *job.selected)))

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
