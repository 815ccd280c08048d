"""The byte prefilter answers as each rule's trigger patterns say, however it searches."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unleak import registry
from unleak.engine.prefilter import _alternatives, _occurs, _required_literals

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


# --- the literal shortcut and the split into alternatives ---------------------------------------

PATTERNS = sorted({p for rule in registry.all_rules() for p in rule.trigger})
# Patterns that exercise what the rules' own do not: escapes and classes holding `|`, global and
# scoped flags, back-references, optional and repeated parts, look-arounds.
TRICKY = [
    rb"a\|b", rb"[|]x|y", rb"[]|]z", rb"[^]|]q|w", rb"(?i)abc|def", rb"(?i:abc)d|ef", rb"(a)b\1|zz",
    rb"(?P<n>ab)(?P=n)", rb"(?:ab)?cd|e+f", rb"x(?=yz)|(?<!q)rs", rb"\bfor\b|\.close\s*\(", rb"a{2,}b|c{0,3}d",
    rb"(?:get|set)_\w+\(|\.x", rb"lo(?:g|gger)\.(?:warn|error)", rb"[ab]cd|(?:ef|g)h",
]
FRAGMENTS = sorted(
    {bytes(fragment) for pattern in [*PATTERNS, *TRICKY] for fragment in re.findall(rb"[A-Za-z_]{2,}", pattern)}
    | {b"(", b")", b".", b" ", b"\n", b":", b"|", b"]", b"\\", b"AB", b"Log", b"LOG.", b"z", b"qrs", b"yz"}
)
generated_bytes = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=3)), max_size=12).map(b"".join)


@pytest.mark.parametrize("pattern", [*PATTERNS, *TRICKY], ids=repr)
@settings(max_examples=150, deadline=None)
@given(raw=generated_bytes)
def test_the_fast_search_is_the_plain_search_on_generated_bytes(pattern: bytes, raw: bytes) -> None:
    assert _occurs(pattern)(raw) == (re.search(pattern, raw) is not None)


@pytest.mark.parametrize("pattern", TRICKY, ids=repr)
def test_the_fast_search_is_the_plain_search_on_every_example(pattern: bytes) -> None:
    for raw in [*SAMPLES, *LOOK_ALIKES, *FRAGMENTS]:
        assert _occurs(pattern)(raw) == (re.search(pattern, raw) is not None), raw


def test_a_pattern_is_split_only_at_its_top_level_bars() -> None:
    assert _alternatives(rb"a|b(c|d)|[|]e|f\|g") == [b"a", b"b(c|d)", b"[|]e", b"f\\|g"]
    assert _alternatives(rb"[]|]x|y") == [b"[]|]x", b"y"]
    assert _alternatives(rb"(?i)a|b") == [rb"(?i)a|b"], "a global flag applies to every alternative"
    assert _alternatives(rb"(a)|\1") == [rb"(a)|\1"], "a back-reference counts the groups of the whole"


def test_the_required_literals_are_what_every_match_holds() -> None:
    assert _required_literals(rb"getenv") == {b"getenv"}
    assert _required_literals(rb"\.(?:add|add_all|create)\s*\(") == {b"add", b"create"}, "add_all holds add"
    assert _required_literals(rb"(?:open|ZipFile)\s*\(") == {b"open", b"ZipFile"}
    assert _required_literals(rb"(?i:log)\w*\.(?:error|critical)") == {b"error", b"critical"}
    assert _required_literals(rb"(?:ab)?c") == {b"c"}, "an optional part requires nothing"
    assert _required_literals(rb"(?i)abc") is None
    assert _required_literals(rb"[ab]c?") is None
