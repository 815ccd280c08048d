"""Every rule's embedded examples (the ones `unleak explain` prints) hold, through the real engine."""

from __future__ import annotations

import pytest

from tests.helpers import fixed_text, run_rules
from unleak import registry
from unleak.output.explain import documentation
from unleak.engine.prefilter import structurally_possible, triggered_rules
from unleak.rule import FixSafety, Invalid, Rule, Valid
from unleak.settings import Settings

RULES = registry.all_rules()
INVALID_CASES = [pytest.param(rule, case, id=f"{rule.code}-invalid-{i}") for rule in RULES for i, case in enumerate(rule.INVALID)]
VALID_CASES = [pytest.param(rule, case, id=f"{rule.code}-valid-{i}") for rule in RULES for i, case in enumerate(rule.VALID)]


@pytest.mark.parametrize(("rule", "case"), INVALID_CASES)
def test_invalid_example_is_flagged_and_fixed_exactly(rule: type[Rule], case: Invalid) -> None:
    found = run_rules(case.code, (rule,), fixing=False)
    assert [finding.rule for finding in found.findings] != [], "the rule must report this example"
    assert {finding.rule for finding in found.findings} == {rule.code}
    fixed = run_rules(case.code, (rule,), unsafe=case.unsafe)
    assert fixed_text(fixed) == (case.fixed if case.fixed is not None else case.code)


@pytest.mark.parametrize(("rule", "case"), INVALID_CASES)
def test_fixed_example_is_a_fixed_point(rule: type[Rule], case: Invalid) -> None:
    once = fixed_text(run_rules(case.code, (rule,), unsafe=case.unsafe))
    twice = run_rules(once, (rule,), unsafe=case.unsafe)
    assert twice.fixed is None and twice.error is None


UNSAFE_CASES = [param for param in INVALID_CASES if param.values[1].unsafe]


@pytest.mark.parametrize(("rule", "case"), UNSAFE_CASES)
def test_unsafe_fixes_wait_for_the_flag(rule: type[Rule], case: Invalid) -> None:
    assert run_rules(case.code, (rule,)).fixed is None


@pytest.mark.parametrize(("rule", "case"), VALID_CASES)
def test_valid_example_is_left_alone(rule: type[Rule], case: Valid) -> None:
    result = run_rules(case.code, (rule,), unsafe=True)
    assert result.error is None
    assert result.findings == []
    assert result.fixed is None


@pytest.mark.parametrize("rule", RULES, ids=[rule.code for rule in RULES])
def test_rule_is_documented_and_has_examples(rule: type[Rule]) -> None:
    docs = documentation(rule)
    for section in ("## What it does", "## Why is this bad?", "## Example", "## Use instead", "## Fix safety"):
        assert section in docs, f"{rule.code} docs lack {section}"
    assert rule.VALID and rule.INVALID
    assert rule.trigger, "a rule without a trigger would parse every file"
    if rule.safety is FixSafety.DETECT:
        assert all(case.fixed is None for case in rule.INVALID)


@pytest.mark.parametrize(("rule", "case"), INVALID_CASES)
def test_prefilter_lets_every_invalid_example_through(rule: type[Rule], case: Invalid) -> None:
    assert triggered_rules(case.code.encode(), (rule,), Settings()) == (rule,)
    assert structurally_possible(case.code, (rule,), Settings()) == (rule,)
