"""unleak.knowledge.quickscan: the cheap checks on the stdlib AST that rules' `could_fire` use."""

from __future__ import annotations

import ast

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


def test_statement_lists_are_every_block_in_walk_order() -> None:
    code = """
import x
def f(a=lambda: 1):
    if a:
        b = [c for c in a]
    else:
        class K:
            def m(self):
                while True:
                    pass
                else:
                    return
    try:
        g()
    except E:
        with h():
            async def n(): ...
    else:
        match a:
            case 1:
                for i in a:
                    pass
    finally:
        d()
x = 1 if y else 2
"""
    tree = ast.parse(code)
    every_block = [
        blocks
        for node in ast.walk(tree)
        for blocks in (getattr(node, field, None) for field in ("body", "orelse", "finalbody"))
        if isinstance(blocks, list)
    ]
    found = list(quickscan.statement_lists(tree))
    assert [id(block) for block in found] == [id(block) for block in every_block]
    assert len([block for block in found if block]) == 16
