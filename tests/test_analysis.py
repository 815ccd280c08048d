"""The metadata questions rules share: qualified names and the enclosing function."""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m
from libcst.metadata import MetadataWrapper, QualifiedNameProvider, ScopeProvider

from unleak.knowledge import analysis
from unleak.rule import FixSafety, ImportSpec, Rule

SOURCE = '''
import asyncio as aio
from asyncio import run as go

def run(x):
    return x

async def outer():
    aio.run(a())
    go(b())
    run(c())
    def inner():
        aio.run(d())
    f = lambda: go(e())
    class K:
        x = aio.run(g())
'''


class _ProbeRule(Rule):
    """A rule that records what `analysis` answers instead of reporting."""

    code = "UL999"
    name = "probe"
    safety = FixSafety.DETECT
    summary = "probe"
    trigger = ()


class _Probe(_ProbeRule):
    METADATA_DEPENDENCIES = (QualifiedNameProvider,)

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, tuple[bool, bool]] = {}

    @m.visit(m.Call(args=[m.Arg(m.Call(func=m.Name()))]))
    def probe(self, node: cst.Call) -> None:
        inner = cst.ensure_type(node.args[0].value, cst.Call)
        label = cst.ensure_type(inner.func, cst.Name).value
        self.seen[label] = (analysis.calls(self, node, "asyncio.run"), analysis.in_async_function(self, node))


def test_aliases_resolve_and_nested_scopes_are_not_async() -> None:
    probe = _Probe()
    MetadataWrapper(cst.parse_module(SOURCE)).visit(probe)
    assert probe.seen == {
        "a": (True, True),
        "b": (True, True),
        "c": (False, True),  # the user's own `run`
        "d": (True, False),  # nested def
        "e": (True, False),  # lambda
        "g": (True, False),  # class body
    }


FRAMES = '''
async def outer(x=aio.run(h())):
    @decorate(aio.run(i()))
    async def inner(y: aio.run(j()) = 1):
        aio.run(k())
    aio.run(l()(m()))
'''


def test_defaults_decorators_and_annotations_run_in_the_frame_around() -> None:
    probe = _Probe()
    MetadataWrapper(cst.parse_module("import asyncio as aio\n" + FRAMES)).visit(probe)
    assert probe.seen["h"] == (True, False)  # a default of outer runs at module level
    assert probe.seen["i"] == (True, True)  # a decorator of inner runs in outer's body
    assert probe.seen["j"] == (True, True)  # an annotation of inner too
    assert probe.seen["k"] == (True, True)
    assert probe.seen["m"] == (False, True)  # `l()(m())`: the callee is a call, not asyncio.run


class _ImportProbe(_ProbeRule):
    METADATA_DEPENDENCIES = (ScopeProvider,)

    def __init__(self) -> None:
        super().__init__()
        self.bindings: dict[str, ImportSpec | None] = {}

    def visit_Call(self, node: cst.Call) -> None:
        self.bindings[cst.Module([]).code_for_node(node.func)] = analysis.import_binding(self, node.func)


def test_import_binding_names_the_import_statement_of_a_callee() -> None:
    probe = _ImportProbe()
    code = (
        "import asyncio\nimport trio as t\nimport os.path\nfrom asyncio import run as go\nfrom . import local\n"
        "asyncio.run(a)\nt.run(b)\nos.path.join(c)\ngo(d)\nlocal(e)\nprint(f)\n"
    )
    MetadataWrapper(cst.parse_module(code)).visit(probe)
    assert probe.bindings == {
        "asyncio.run": ImportSpec("asyncio"),
        "t.run": ImportSpec("trio", None, "t"),
        "os.path.join": None,  # a dotted import binds `os`, not `os.path`
        "go": ImportSpec("asyncio", "run", "go"),
        "local": None,  # relative
        "print": None,  # a builtin
    }
