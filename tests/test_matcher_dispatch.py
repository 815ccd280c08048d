"""Rules try, on each node, only the matchers that can match its class (`unleak.matcher_dispatch`).

What a user sees must not change: every rule example, and generated programs, give the same
findings and fixes with the dispatch and with LibCST's own way of trying every matcher.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m
import pytest
from hypothesis import HealthCheck, given, settings

from tests.test_properties import Program, programs
from tests.test_slicing import RULES, example_cases, run, seen
from unleak import matcher_dispatch
from unleak import rule as rule_module
from unleak.rule import FixSafety, Rule


def switch_to_the_libcst_way(patcher: pytest.MonkeyPatch) -> None:
    """Rules made from here on try every matcher on every node, as LibCST does."""
    patcher.setattr(rule_module, "_DECORATED_METHODS", {})
    patcher.setattr(matcher_dispatch, "allows_dispatch", lambda visitor: False)


def both_ways(code: str, monkeypatch: pytest.MonkeyPatch, *, unsafe: bool) -> tuple[object, object]:
    dispatched = [seen(run(code, fixing=fixing, unsafe=unsafe)) for fixing in (False, True)]
    with monkeypatch.context() as patched:
        switch_to_the_libcst_way(patched)
        tried_everywhere = [seen(run(code, fixing=fixing, unsafe=unsafe)) for fixing in (False, True)]
    return dispatched, tried_everywhere


@pytest.mark.parametrize(("rule", "code", "unsafe"), list(example_cases()))
def test_every_rule_example_gives_what_trying_every_matcher_gives(
    rule: type[Rule], code: str, unsafe: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    dispatched, tried_everywhere = both_ways(code, monkeypatch, unsafe=unsafe)
    assert dispatched == tried_everywhere


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(program=programs())
def test_generated_programs_give_what_trying_every_matcher_gives(program: Program, monkeypatch: pytest.MonkeyPatch) -> None:
    dispatched, tried_everywhere = both_ways(program.text, monkeypatch, unsafe=True)
    assert dispatched == tried_everywhere


def test_every_rule_is_dispatched() -> None:
    assert all(rule()._dispatching for rule in RULES)


def test_the_libcst_way_really_switches_the_dispatch_off(monkeypatch: pytest.MonkeyPatch) -> None:
    switch_to_the_libcst_way(monkeypatch)
    assert not any(rule()._dispatching for rule in RULES)


class _Probe(Rule):
    code, name, safety, summary, trigger = "UL990", "probe", FixSafety.DETECT, "a call", ()


class _InsideOnly(_Probe):
    @m.call_if_inside(m.FunctionDef())
    @m.visit(m.Call())
    def flag(self, node: cst.Call) -> None:
        self.report(node)


class _ByAttribute(_Probe):
    def visit_Call_args(self, node: cst.Call) -> None:
        self.report(node)


@pytest.mark.parametrize("visitor", [_InsideOnly, _ByAttribute])
def test_a_rule_using_call_if_inside_or_attribute_methods_is_visited_the_libcst_way(visitor: type[Rule]) -> None:
    assert not visitor()._dispatching
    wrapper = cst.MetadataWrapper(cst.parse_module("print(1)\n\ndef f():\n    g()\n"))
    found = visitor()
    wrapper.visit(found)
    expected_lines = [4] if visitor is _InsideOnly else [1, 4]
    assert [report.position.start.line for report in found.reports] == expected_lines


@pytest.mark.parametrize(
    ("matcher", "names"),
    [
        (m.Call(), {"Call"}),
        (m.Call() | m.Name("error"), {"Call", "Name"}),
        (m.Attribute | m.Name, {"Attribute", "Name"}),
        (m.OneOf(m.Call(), m.MatchIfTrue(lambda node: True)), None),
        (~m.Call(), None),
        (m.AllOf(m.Call(), m.Call(func=m.Name())), None),
        (m.SaveMatchedNode(m.Call(), "call"), None),
        (m.MatchIfTrue(lambda node: True), None),
    ],
)
def test_the_classes_a_matcher_can_match(matcher: object, names: set[str] | None) -> None:
    assert matcher_dispatch.class_names(matcher) == (frozenset(names) if names is not None else None)
