"""unleak.knowledge.quickscan: the cheap checks on the stdlib AST that rules' `could_fire` use."""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterator

import pytest
from hypothesis import given, settings

from tests.test_properties import Program, programs
from unleak import registry
from unleak.knowledge import quickscan

CODE = "import os\n\ndef f(x):\n    for y in x:\n        os.remove(y)\n"


def test_every_node_is_ast_walk_and_reused_for_the_same_module() -> None:
    tree = ast.parse(CODE)
    first = quickscan.every_node(tree)
    assert [type(node) for node in first] == [type(node) for node in ast.walk(tree)]
    assert quickscan.every_node(tree) is first
    other = ast.parse(CODE)
    assert quickscan.every_node(other) is not first  # a new module is walked again, not mixed up


def test_of_type_on_a_subtree_sees_only_the_subtree() -> None:
    tree = ast.parse(CODE)
    quickscan.every_node(tree)
    function = next(quickscan.of_type(tree, ast.FunctionDef))
    loop = next(quickscan.of_type(function, ast.For))
    assert [ast.unparse(call) for call in quickscan.of_type(loop, ast.Call)] == ["os.remove(y)"]
    assert list(quickscan.of_type(loop, ast.Import)) == []


def test_statement_lists_include_else_and_finally_blocks() -> None:
    tree = ast.parse("try:\n    a()\nexcept E:\n    b()\nelse:\n    c()\nfinally:\n    d()\n")
    blocks = [[ast.unparse(statement) for statement in block] for block in quickscan.statement_lists(tree)]
    assert ["a()"] in blocks and ["b()"] in blocks and ["c()"] in blocks and ["d()"] in blocks


def rebuilt(module: ast.Module) -> Iterator[ast.Module]:
    """Modules made of `module`'s statements as the engine's slices make them: each class once
    with only one of its statements, and the statements in another order."""
    for position, statement in enumerate(module.body):
        if isinstance(statement, ast.ClassDef):
            for kept in range(len(statement.body)):
                shell = copy.copy(statement)
                shell.body = [statement.body[kept]]
                yield ast.Module(body=[*module.body[:position], shell, *module.body[position + 1 :]], type_ignores=[])
    yield ast.Module(body=list(reversed(module.body)), type_ignores=[])


def assert_shared_walks_are_ast_walk(code: str) -> None:
    module = ast.parse(code)
    with quickscan.sharing_walks():
        for candidate in [module, *rebuilt(module)]:
            assert quickscan.every_node(candidate) == list(ast.walk(candidate))


@pytest.mark.parametrize("code", [case.code for rule in registry.all_rules() for case in (*rule.INVALID, *rule.VALID)])
def test_shared_walks_give_ast_walk_on_every_rule_example(code: str) -> None:
    assert_shared_walks_are_ast_walk(code)


@settings(max_examples=60, deadline=None)
@given(program=programs())
def test_shared_walks_give_ast_walk_on_generated_programs(program: Program) -> None:
    assert_shared_walks_are_ast_walk(program.text)


NESTED = (
    "import a as b\n\nasync def f(p: int, q=1, *r, s=2, **t):\n    x = y = g()\n    u, v = h()\n    w: int = 3\n"
    "    with k() as m:\n        pass\n    async for n in o():\n        pass\n    try:\n        pass\n    except E as e:\n"
    "        pass\n    match z:\n        case c:\n            pass\n    [i for i in j]\n    def inner():\n        hidden = 1\n"
    "    lambda l: l\n"
)


def test_statement_lists_reach_every_block_without_visiting_expressions_and_are_shared() -> None:
    tree = ast.parse(NESTED)
    walked = sorted(id(block) for node in ast.walk(tree) for field in ("body", "orelse", "finalbody")
                    if isinstance(block := getattr(node, field, None), list))
    assert sorted(map(id, quickscan.statement_lists(tree))) == walked
    assert quickscan.statement_lists(tree) is quickscan.statement_lists(tree)
    kinds = {type(statement).__name__ for statement in quickscan.statements_of_type(tree, ast.FunctionDef, ast.Try)}
    assert kinds == {"FunctionDef", "Try"}


def test_frame_nodes_leave_out_nested_functions_and_lambdas() -> None:
    function = ast.parse(NESTED).body[1]
    assert isinstance(function, ast.AsyncFunctionDef)
    names = {node.id for node in quickscan.frame_nodes(function) if isinstance(node, ast.Name)}
    assert {"x", "y", "m", "n", "i"} <= names and not {"hidden", "l"} & names


def test_bindings_are_those_libcst_records_in_the_frame() -> None:
    function = ast.parse(NESTED).body[1]
    assert isinstance(function, ast.AsyncFunctionDef)
    found = quickscan.bindings(quickscan.parameters(function), quickscan.frame_nodes(function))
    how = {name: [binding.how for binding in bindings] for name, bindings in found.items()}
    assert how == {
        "p": ["parameter"], "q": ["parameter"], "r": ["parameter"], "s": ["parameter"], "t": ["parameter"],
        "x": ["assigned"], "y": ["assigned"], "u": ["other"], "v": ["other"], "w": ["annotated"],
        "m": ["with"], "n": ["async for"], "e": ["other"], "inner": ["other"],
    }  # `case c` and the comprehension's `i` are not the frame's bindings for LibCST
    defaults = {name: ast.unparse(bindings[0].value) for name, bindings in found.items() if bindings[0].how == "parameter" and bindings[0].value}
    assert defaults == {"q": "1", "s": "2"}
