"""Stage 4: run the rules over one parsed module, and apply their fixes until nothing changes.

Each pass resolves the module's metadata once and every rule visits it and reports; the
applicable fixes of all rules (safe ones, unsafe ones with `--unsafe`, none that a suppression
comment silences) then replace the reported nodes together (a fix inside another one waits for
the next pass), the imports they need are added once, and the result is verified. Passes repeat
until a whole pass changes nothing, so the output is a fixed point: running again is a no-op.
That last pass is skipped when the cheap gates (byte triggers, `ast` checks) show that no selected
rule can fire on the result: a second run would not parse it either.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor
from libcst.metadata import MetadataWrapper

from unleak.knowledge.layout import without_leading_blanks
from unleak.knowledge.project import ProjectView
from unleak.rule import FixSafety, ImportSpec, Replacement, Report, Rule
from unleak.settings import Settings
from unleak.engine.suppression import Suppressions
from unleak.engine.verify import VerificationError, Verifier

# Nested fixes take one pass per level, so the bound is generous; a cycle is caught long before.
MAX_PASSES = 64


class RuleFailure(Exception):
    """A rule crashed or produced invalid code: an internal error, reported with the rule's code."""

    def __init__(self, rule: type[Rule], reason: str) -> None:
        super().__init__(f"internal error in {rule.code} ({rule.name}): {reason}; file left unchanged")


@dataclass
class Outcome:
    module: cst.Module
    fixes: Counter[str] = field(default_factory=Counter)  # rule code -> fixes applied
    remaining: list[Report] = field(default_factory=list)  # findings left for a human


def is_applicable(report: Report, settings: Settings) -> bool:
    """Whether the engine applies this report's fix under these settings."""
    if report.replacement is None:
        return False
    return report.safety is FixSafety.SAFE or (report.safety is FixSafety.UNSAFE and settings.unsafe)


def find(
    module: cst.Module, rules: tuple[type[Rule], ...], settings: Settings, project: ProjectView | None = None
) -> list[Report]:
    """Every unsuppressed finding of `rules` in `module`, without changing anything."""
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    suppressions = Suppressions.of(module.code)
    context = _Context(settings, project or ProjectView.empty(), suppressions)
    return [report for rule in rules for report in _run_rule(wrapper, rule, context)]


Widen = Callable[[str], tuple[type[Rule], ...]]  # the rules a source may make fire (its triggers)


def fix(
    module: cst.Module,
    rules: tuple[type[Rule], ...],
    settings: Settings,
    project: ProjectView | None,
    verifier: Verifier,
    widen: Widen | None = None,
) -> Outcome:
    """Apply every applicable fix until a fixed point; raise RuleFailure if a rule misbehaves.

    A fix can write what another selected rule is about (a commit inside a new `try`); `widen`
    names the rules the fixed source triggers, and those join before the fixed point is final,
    so that a second run finds nothing new to do. When it names none, and the pass left no finding
    to report, the fixed source is final without another pass."""
    outcome = Outcome(module)
    seen = {module.code}
    for _ in range(MAX_PASSES):
        outcome.remaining = []
        changed_by = _one_pass(outcome, rules, settings, project or ProjectView.empty(), verifier)
        if not changed_by:
            joining = _joining(outcome.module, module, rules, widen)
            if not joining:
                return outcome
            rules = tuple(sorted((*rules, *joining), key=lambda rule: rule.code))
            continue
        if outcome.module.code in seen:  # back to an earlier version: the fixes undo each other
            raise RuleFailure(changed_by[-1], "fixes did not settle: they undo each other")
        seen.add(outcome.module.code)
        if not outcome.remaining and widen is not None and not widen(outcome.module.code):
            return outcome
    raise RuleFailure(changed_by[-1], f"fixes did not settle after {MAX_PASSES} passes")


def _one_pass(
    outcome: Outcome, rules: tuple[type[Rule], ...], settings: Settings, project: ProjectView, verifier: Verifier
) -> list[type[Rule]]:
    """Run every rule once on one resolution of the module's metadata, then apply all their fixes
    together (a fix inside another one waits for the next pass); return the rules that changed it."""
    wrapper = MetadataWrapper(outcome.module, unsafe_skip_copy=True)
    context = _Context(settings, project, Suppressions.of(outcome.module.code))
    fixes: list[Report] = []
    for rule in rules:
        reports = _run_rule(wrapper, rule, context)
        fixing = [report for report in reports if is_applicable(report, settings)]
        outcome.remaining.extend(report for report in reports if report not in fixing)
        fixes.extend(fixing)
    if not fixes:
        return []
    applied = _apply_verified(wrapper.module, fixes, verifier)
    outcome.module = applied.module
    outcome.fixes.update(report.rule.code for report in applied.reports)
    return list(dict.fromkeys(report.rule for report in applied.reports))


def _apply_verified(module: cst.Module, fixes: list[Report], verifier: Verifier) -> _Applied:
    """The module with `fixes` applied and verified; RuleFailure names the rule to blame."""
    try:
        applied = _apply(module, fixes)
        return replace(applied, module=verifier.verified_module(applied.module.code))
    except Exception as error:
        raise _blame(module, fixes, verifier, error) from None


def _blame(module: cst.Module, fixes: list[Report], verifier: Verifier, error: Exception) -> RuleFailure:
    """The failure of the first rule whose fixes fail on their own (else of the first rule)."""
    rules = list(dict.fromkeys(report.rule for report in fixes))
    if len(rules) > 1:
        for rule in rules:
            try:
                verifier.verified_module(_apply(module, [fix for fix in fixes if fix.rule is rule]).module.code)
            except Exception as own_error:
                return _failure(rule, own_error)
    return _failure(rules[0], error)


def _failure(rule: type[Rule], error: Exception) -> RuleFailure:
    if isinstance(error, VerificationError):
        return RuleFailure(rule, str(error))
    # a replacement that does not fit its place in the tree
    return RuleFailure(rule, f"its fix could not be applied: {type(error).__name__}: {error}")


def _joining(fixed: cst.Module, original: cst.Module, rules: tuple[type[Rule], ...], widen: Widen | None) -> list[type[Rule]]:
    """The rules the fixed source triggers that have not run on it yet."""
    if widen is None or fixed.code == original.code:
        return []
    return [rule for rule in widen(fixed.code) if rule not in rules]


@dataclass(frozen=True)
class _Context:
    """What every rule of a pass is run with."""

    settings: Settings
    project: ProjectView
    suppressions: Suppressions


def _run_rule(wrapper: MetadataWrapper, rule: type[Rule], context: _Context) -> list[Report]:
    visitor = rule.for_file(context.settings, context.project)
    try:
        wrapper.visit(visitor)
    except Exception as error:  # a bug in the rule must not take the other files down
        raise RuleFailure(rule, f"crashed with {type(error).__name__}: {error}") from error
    return [report for report in visitor.reports if not context.suppressions.silences(report)]


@dataclass(frozen=True)
class _Applied:
    module: cst.Module
    reports: list[Report]  # the fixes applied (a fix nested in another one is not, this time)


def _apply(module: cst.Module, fixes: list[Report]) -> _Applied:
    """Replace each fixed node; a fix nested inside another one waits for the next pass."""
    replacer = _Replacer(fixes)
    new_module = module.visit(replacer)
    imports = _sorted({spec for report in replacer.applied for spec in report.imports})
    if imports:
        context = CodemodContext()
        for spec in imports:
            AddImportsVisitor.add_needed_import(context, spec.module, spec.name, spec.alias)
        new_module = AddImportsVisitor(context).transform_module(new_module)
    stale = _sorted({spec for report in replacer.applied for spec in report.stale_imports})
    if stale:
        context = CodemodContext()
        for spec in stale:  # LibCST removes each only where nothing refers to it any more
            RemoveImportsVisitor.remove_unused_import(context, spec.module, spec.name, spec.alias)
        new_module = _no_new_blank_lines_on_top(module, RemoveImportsVisitor(context).transform_module(new_module))
    return _Applied(new_module, replacer.applied)


def _no_new_blank_lines_on_top(before: cst.Module, after: cst.Module) -> cst.Module:
    """An import removed from the top of a module leaves the blank line under it on top: drop it."""
    if not after.body or _blank_lines_on_top(after.code) <= _blank_lines_on_top(before.code):
        return after
    first, *rest = after.body
    return after.with_changes(body=[first.with_changes(leading_lines=without_leading_blanks(first.leading_lines)), *rest])


def _blank_lines_on_top(code: str) -> int:
    return len(code) - len(code.lstrip("\r\n"))


def _sorted(specs: set[ImportSpec]) -> list[ImportSpec]:
    """In a fixed order, so that the output does not depend on set iteration."""
    return sorted(specs, key=lambda spec: (spec.module, spec.name or "", spec.alias or ""))


class _Replacer(cst.CSTTransformer):
    def __init__(self, fixes: list[Report]) -> None:
        super().__init__()
        self._by_node = {id(report.node): report for report in fixes}
        self.applied: list[Report] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        report = self._by_node.get(id(node))
        if report is None:
            return True
        self.applied.append(report)
        return False  # the replacement was computed from this node: don't edit inside it

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> Replacement:
        report = self._by_node.get(id(original_node))
        if report is None or report.replacement is None:
            return updated_node
        return report.replacement
