"""The engine's slices (`unleak.engine.slicing`) give exactly what the whole-module run gives.

Each case runs the real pipeline twice, with slicing on and off, and compares everything a user
sees: the fixed bytes, the findings (rule, position, message, fix safety) and the errors. The
cases check too that slicing really dropped something, or say why it may not.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings

from tests.test_properties import Program, programs
from unleak import registry
from unleak.engine import slicing
from unleak.engine.findings import FileResult
from unleak.engine.pipeline import Job, process
from unleak.engine.prefilter import possible_in_tree, quick_parse, triggered_rules
from unleak.knowledge import quickscan
from unleak.knowledge.project import ProjectView
from unleak.rule import Rule, SliceScope
from unleak.settings import Settings

RULES = registry.all_rules()

# Unrelated definitions around each example, so that a slice has something to drop.
PADDING_BEFORE = '''
def _pad_total(values):
    total = 0
    for value in values:
        total += value
    return total


@staticmethod
def _pad_decorated(first, second):
    return first * second


class _PadShape:
    sides = 4

    def area(self, width):
        return width * width

    @property
    def name(self):
        return "square"

'''
PADDING_AFTER = '''

class _PadCounter:
    def __init__(self):
        self.count = 0

    def bump(self):
        self.count += 1
        return self.count


async def _pad_waiting(delay):
    return delay * 2


def _pad_one_line(value): return value
'''


def run(code: str, rules: tuple[type[Rule], ...] = RULES, *, fixing: bool = True, unsafe: bool = False, sliced: bool = True) -> FileResult:
    return run_raw(code.encode("utf-8"), rules, fixing=fixing, unsafe=unsafe, sliced=sliced)


def run_raw(raw: bytes, rules: tuple[type[Rule], ...], *, fixing: bool, unsafe: bool = False, sliced: bool = True) -> FileResult:
    """The pipeline on `raw`, as `unleak` runs it, with slicing on or off."""
    chosen = Settings(unsafe=unsafe)
    codes = tuple(rule.code for rule in triggered_rules(raw, rules, chosen))
    previous = slicing.enabled
    slicing.enabled = sliced
    try:
        return process(Job("example.py", None, raw, codes, chosen, fixing, selected=tuple(rule.code for rule in rules)))
    finally:
        slicing.enabled = previous


def seen(result: FileResult) -> tuple[object, ...]:
    """All a user sees of a run."""
    return result.fixed, result.findings, result.error, dict(result.fixes)


def assert_same_both_ways(code: str, rules: tuple[type[Rule], ...] = RULES, *, unsafe: bool = False) -> None:
    for fixing in (False, True):
        sliced = run(code, rules, fixing=fixing, unsafe=unsafe)
        whole = run(code, rules, fixing=fixing, unsafe=unsafe, sliced=False)
        assert seen(sliced) == seen(whole), code


def slice_of(code: str, rules: tuple[type[Rule], ...] = RULES) -> slicing.Slice | None:
    """The slice the engine would hand LibCST (None: the whole module)."""
    tree = quick_parse(code)
    possible = possible_in_tree(tree, triggered_rules(code.encode("utf-8"), rules, Settings()), Settings())
    return slicing.plan(code, tree, possible, Settings(), ProjectView.empty())


def stubbed(found: slicing.Slice, header: str, line: int | None = None) -> bool:
    """Whether the slice has the stub `header` (at `line`): `def f():  # unleak_slice_<line>`
    over a body of `...` or of one string to its last line (`def f(): ...` for a one-line unit)."""
    number = str(line) if line is not None else r"\d+"
    return re.search(rf"^{re.escape(header)}(?:  #| \.\.\.  #) unleak_slice_{number}$", found.text, re.MULTILINE) is not None


def padded(code: str) -> str:
    """`code` with unrelated definitions after its leading imports and at its end."""
    lines = code.splitlines(keepends=True)
    leading = 0
    for index, line in enumerate(lines):
        if re.match(r"(import|from)\s", line):
            leading = index + 1
        elif line.strip():
            break
    return "".join(lines[:leading]) + PADDING_BEFORE + "".join(lines[leading:]) + PADDING_AFTER


def example_cases() -> Iterator[object]:
    for rule in RULES:
        for index, case in enumerate(rule.INVALID):
            yield pytest.param(rule, case.code, case.unsafe, id=f"{rule.code}-invalid-{index}")
        for index, valid in enumerate(rule.VALID):
            yield pytest.param(rule, valid.code, True, id=f"{rule.code}-valid-{index}")


@pytest.mark.parametrize(("rule", "code", "unsafe"), list(example_cases()))
def test_every_rule_example_padded_gives_the_whole_module_output(rule: type[Rule], code: str, unsafe: bool) -> None:
    assert_same_both_ways(padded(code), (rule,), unsafe=unsafe)
    assert_same_both_ways(padded(code), RULES, unsafe=unsafe)


SLICEABLE_INVALID = [
    pytest.param(rule, case.code, id=f"{rule.code}-invalid-{index}")
    for rule in RULES
    if rule.slice_scope is not SliceScope.WHOLE_MODULE
    for index, case in enumerate(rule.INVALID)
]


@pytest.mark.parametrize(("rule", "code"), SLICEABLE_INVALID)
def test_a_sliceable_rule_slices_its_padded_examples(rule: type[Rule], code: str) -> None:
    found = slice_of(padded(code), (rule,))
    if found is None:  # what keeps every unit: the rule may fire in the module-level code itself
        assert rule.could_fire_in(definitions_stubbed(padded(code)), Settings(), ProjectView.empty())
        return
    assert found.kept_lines < len(slicing.split_lines(padded(code)))


def definitions_stubbed(code: str) -> ast.Module:
    tree = ast.parse(code)
    stubs = [ast.parse(f"def {node.name}(): ...").body[0] if isinstance(node, slicing._DEFINITIONS) else node for node in tree.body]
    return ast.Module(body=stubs, type_ignores=[])


def test_a_whole_module_rule_is_never_sliced() -> None:
    code = padded("import asyncio\n\n\nasync def main():\n    asyncio.run(work())\n")
    assert slice_of(code) is None
    assert_same_both_ways(code)


def test_a_slice_keeps_line_numbers_and_stubs_bind_the_same_names() -> None:
    code = padded("import logging\n\nlogger = logging.getLogger()\n\n\ndef save():\n    try:\n        go()\n    except ValueError:\n        logger.error('no')\n")
    found = slice_of(code)
    assert found is not None
    assert len(slicing.split_lines(found.text)) == len(slicing.split_lines(code))
    assert stubbed(found, "def _pad_total():")
    assert stubbed(found, "class _PadShape:")
    assert stubbed(found, "async def _pad_waiting():")
    assert "def _pad_one_line(): ...  # unleak_slice_" in found.text
    defined = {node.name for node in ast.parse(found.text).body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    assert defined == {node.name for node in ast.parse(code).body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    assert found.splice(found.text) == code
    assert_same_both_ways(code)


METHOD_IN_CLASS = """\
import logging

logger = logging.getLogger(__name__)


class Repository:
    table = "rows"

    def __init__(self, session):
        self.session = session

    def count(self):
        return len(self.table)

    def save(self, row):
        try:
            self.session.add(row)
        except ValueError as error:
            logger.error("could not save %s", error)

    def names(self):
        return [self.table]

    def sizes(self):
        return {self.table: 1}
"""


def test_a_method_is_kept_and_its_sibling_methods_are_dropped() -> None:
    found = slice_of(METHOD_IN_CLASS)
    assert found is not None
    assert stubbed(found, "    def __init__():", 9)
    assert stubbed(found, "    def count():", 12)
    assert "    def save(self, row):" in found.text
    assert '    table = "rows"' in found.text
    result = run(METHOD_IN_CLASS)
    assert result.fixed is not None and b'logger.exception("could not save %s", error)' in result.fixed
    assert_same_both_ways(METHOD_IN_CLASS)


def test_crlf_files_keep_their_line_ends() -> None:
    code = METHOD_IN_CLASS.replace("\n", "\r\n")
    found = slice_of(code)
    assert found is not None and "\n" not in found.text.replace("\r\n", "")
    result = run(code)
    assert result.fixed is not None and b"\n" not in result.fixed.replace(b"\r\n", b"")
    assert_same_both_ways(code)


def test_a_line_end_python_does_not_count_does_not_shift_lines() -> None:
    code = METHOD_IN_CLASS.replace("    def names(self):", "    def names(self):  # page\x0c break")
    assert_same_both_ways(code)


CHECK_THEN_INSERT = """\
from app.models import User


def first(values):
    return values[0]


def create_user(session, key):
    if session.get(User, key) is None:
        session.add(User(id=key))
        session.commit()


import json


def last(values):
    return json.dumps(values[-1])


def middle(values):
    return values[len(values) // 2]


def rest(values):
    return values[1:]
"""


def test_a_fix_that_adds_an_import_puts_it_where_the_whole_module_run_does() -> None:
    rule = registry.rule_by_code("UL301")
    assert slice_of(CHECK_THEN_INSERT, (rule,)) is not None
    result = run(CHECK_THEN_INSERT, (rule,), unsafe=True)
    assert result.fixed is not None and b"IntegrityError" in result.fixed
    assert_same_both_ways(CHECK_THEN_INSERT, (rule,), unsafe=True)
    assert_same_both_ways(CHECK_THEN_INSERT.replace("from app.models import User\n", "'''Users.'''\n"), (rule,), unsafe=True)


def test_a_stub_a_fix_moved_falls_back_to_the_whole_module() -> None:
    code = METHOD_IN_CLASS
    found = slice_of(code)
    assert found is not None
    first, _, stub_lines = found.stubs[0]
    moved = found.text.replace(stub_lines[0], "", 1) + stub_lines[0]
    with pytest.raises(slicing.Fallback):
        found.splice(moved)
    with pytest.raises(slicing.Fallback):
        found.splice(found.text.replace(stub_lines[0], "    " + stub_lines[0], 1))
    with pytest.raises(slicing.Fallback):
        found.splice(found.text + stub_lines[0])


def test_a_dropped_last_function_keeps_the_blank_line_before_a_trailing_comment() -> None:
    # LibCST prints `def f(): ...` + blank line + indented comment at the end without the blank
    # line; a stub with an indented body, like the function it stands for, keeps it.
    code = METHOD_IN_CLASS + "\n\ndef downgrade():\n    a = 1\n    return a\n\n    # end of commands\n"
    found = slice_of(code)
    assert found is not None and stubbed(found, "def downgrade():")
    assert run(code).fixed == run(code, sliced=False).fixed
    assert run(code).fixed is not None and run(code).fixed.endswith(b"    return a\n\n    # end of commands\n")


OVERLOADS = """\
import logging
from typing import overload

logger = logging.getLogger(__name__)


class Keys:
    @overload
    def get(
        self, fingerprint: int, private: bool
    ) -> bytes: ...

    def get(self, fingerprint, private=False):
        try:
            return self.lookup(fingerprint)
        except KeyError as error:
            logger.error("no key %s", error)
"""


def test_a_body_after_the_colon_of_a_signature_of_several_lines_gets_a_stub_that_parses() -> None:
    found = slice_of(OVERLOADS)
    assert found is not None
    assert 'def get(): """unleak_slice_8\n' in found.text  # the body stays after the colon
    assert quick_parse(found.text) is not None
    assert run(OVERLOADS).fixed is not None and b'logger.exception("no key %s", error)' in run(OVERLOADS).fixed
    assert_same_both_ways(OVERLOADS)


def test_a_file_with_the_marker_is_not_sliced() -> None:
    assert slice_of(METHOD_IN_CLASS + "\n# unleak_slice_3\n") is None


def test_definitions_that_bind_outside_themselves_are_kept() -> None:
    binders = """

def configure():
    global logger
    logger = None


def decorated(value=(default := 3)):
    return value


def harmless(values):
    return [last := value for value in values]
"""
    found = slice_of(METHOD_IN_CLASS + binders)
    assert found is not None
    assert "def configure():" in found.text and "def decorated(value=(default := 3)):" in found.text
    assert stubbed(found, "def harmless():")
    assert_same_both_ways(METHOD_IN_CLASS + binders)


def test_a_fallback_gives_the_whole_module_output(monkeypatch: pytest.MonkeyPatch) -> None:
    def altered(self: slicing.Slice, fixed: str) -> str:
        raise slicing.Fallback("pretend a stub moved")

    expected = seen(run(METHOD_IN_CLASS, sliced=False))
    monkeypatch.setattr(slicing.Slice, "splice", altered)
    assert seen(run(METHOD_IN_CLASS)) == expected


def test_a_name_a_dropped_definition_binds_still_resolves_to_it() -> None:
    # `Exception` is this module's own class: UL401 must not narrow `except:` to it, sliced or not.
    code = padded("class Exception:\n    pass\n\n\ndef run():\n    try:\n        go()\n    except:\n        pass\n")
    found = slice_of(code)
    assert found is not None and stubbed(found, "class Exception:")
    assert_same_both_ways(code)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_generated_programs_give_the_whole_module_output(program: Program) -> None:
    text = program.text
    newline = program.newline
    lines = text.splitlines(keepends=True)
    anchor = next(index for index, line in enumerate(lines) if line.startswith("log = logging.getLogger")) + 1
    before = PADDING_BEFORE.replace("\n", newline)
    after = PADDING_AFTER.replace("\n", newline)
    ending = "" if text.endswith(("\n", "\r")) else newline
    code = "".join(lines[:anchor]) + before + "".join(lines[anchor:]) + ending + after
    raw = code.encode(program.encoding)
    assert seen(run_raw(raw, RULES, fixing=True)) == seen(run_raw(raw, RULES, fixing=True, sliced=False))


# --- fresh names: picked from the whole module, which a slice does not show LibCST -------------


def cst_names(code: str) -> frozenset[str]:
    import libcst as cst
    import libcst.matchers as m

    return frozenset(name.value for name in m.findall(cst.parse_module(code), m.Name()))


@pytest.mark.parametrize(("rule", "code", "unsafe"), list(example_cases()))
def test_the_stdlib_tree_names_what_libcst_names(rule: type[Rule], code: str, unsafe: bool) -> None:
    assert quickscan.identifiers(ast.parse(code)) == cst_names(code)


def test_the_stdlib_tree_names_imports_captures_and_keywords() -> None:
    code = (
        "import os.path as osp\nfrom .pkg.sub import thing as alias\n\n\nclass Meta(Base, metaclass=Kind):\n"
        "    def go(self, *args, key=1, **kwargs):\n        global counter\n        try:\n            call(option=2)\n"
        "        except Error as caught:\n            pass\n        match value:\n"
        "            case Point(x=0, y=first) | [*rest] | {'k': 1, **others}:\n                return f'{self.attribute!r}'\n"
        "            case None:\n                return True\n        return lambda inner: inner\n"
    )
    assert quickscan.identifiers(ast.parse(code)) == cst_names(code)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_the_stdlib_tree_names_what_libcst_names_in_generated_programs(program: Program) -> None:
    assert quickscan.identifiers(ast.parse(program.text)) == cst_names(program.text)


@pytest.mark.parametrize(
    ("code", "taken"),
    [
        pytest.param(
            "import json\n\n\ndef load(path):\n    return json.load(open(path))\n",
            "\n\ndef other(f, fh):\n    return f + fh\n",
            id="UL205-file",
        ),
        pytest.param(
            "def purge(user):\n    for conversation in user.conversations:\n"
            "        Message.query.filter_by(conversation_id=conversation.id).delete()\n        db.session.commit()\n",
            "\n\ndef other(conversation_ids):\n    return conversation_ids\n",
            id="UL302-ids",
        ),
    ],
)
def test_a_fresh_name_avoids_names_used_only_in_a_dropped_function(code: str, taken: str) -> None:
    whole = padded(code) + taken
    found = slice_of(whole)
    assert found is not None and stubbed(found, "def other():")
    assert_same_both_ways(whole)
    fixed = run(whole).fixed
    assert fixed is not None and (b"as handle:" in fixed or b"conversation_ids_2 = [" in fixed)
