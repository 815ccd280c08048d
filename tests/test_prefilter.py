"""The byte prefilter answers as each rule's trigger patterns say, however it searches."""

from __future__ import annotations

import re

import pytest

from unleak import registry
from unleak.engine.prefilter import _occurs

SAMPLES = [
    example.code.encode()
    for rule in registry.all_rules()
    for example in (*rule.VALID, *rule.INVALID)
]
LOOK_ALIKES = [b"renew_event_loop = 1\n", b"new_event_loops()\n", b"x = asyncio.run\n", b"myrun(x)\n", b""]


@pytest.mark.parametrize("pattern", sorted({p for rule in registry.all_rules() for p in rule.trigger}), ids=repr)
def test_a_pattern_occurs_where_re_finds_it(pattern: bytes) -> None:
    compiled = re.compile(pattern)
    for raw in [*SAMPLES, *LOOK_ALIKES]:
        assert _occurs(pattern)(raw) == (compiled.search(raw) is not None), raw


def test_a_leading_word_boundary_still_counts() -> None:
    occurs = _occurs(rb"\bnew_event_loop\b")
    assert occurs(b"loop = asyncio.new_event_loop()\n")
    assert not occurs(b"renew_event_loop = 1\n"), "the looser search finds it, the pattern does not"
