"""Rule objects after the first of their class are set up from a per-class cache (unleak.rule):
they must be the very same visitors LibCST's own set-up makes."""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m
import pytest

from unleak import registry
from unleak.rule import Rule


def _methods(found: dict[m.BaseMatcherNode, tuple[object, ...]]) -> dict[m.BaseMatcherNode, tuple[object, ...]]:
    return {matcher: tuple(getattr(method, "__func__", method) for method in methods) for matcher, methods in found.items()}


@pytest.mark.parametrize("rule", registry.all_rules(), ids=lambda rule: rule.code)
def test_a_cached_set_up_equals_libcst_s_own(rule: type[Rule]) -> None:
    rule()  # the first of its class (in this process) fills the cache, if nothing did yet
    cached = rule()
    full = rule.__new__(rule)
    m.MatcherDecoratableVisitor.__init__(full)  # what LibCST does on every instance
    assert set(vars(full)) <= set(vars(cached))  # the rule's own __init__ adds its attributes
    for attribute in set(vars(full)) - {"_extra_visit_funcs", "_extra_leave_funcs"}:
        assert getattr(cached, attribute) == getattr(full, attribute), attribute
    assert _methods(cached._extra_visit_funcs) == _methods(full._extra_visit_funcs)
    assert _methods(cached._extra_leave_funcs) == _methods(full._extra_leave_funcs)
    assert all(method.__self__ is cached for methods in cached._extra_visit_funcs.values() for method in methods)


def test_cached_rules_still_find_what_they_find() -> None:
    from unleak.transforms.ul401_bare_except import BareExcept

    module = cst.metadata.MetadataWrapper(cst.parse_module("try:\n    x()\nexcept:\n    pass\n"))
    for _ in range(2):  # the first object sets the cache up, the second uses it
        rule = BareExcept()
        module.visit(rule)
        assert [report.rule.code for report in rule.reports] == ["UL401"]
