"""Cheap structural questions on the stdlib AST, for rules' `could_fire` checks.

CPython's own parser is about a hundred times faster than LibCST plus its metadata, so a rule
can rule a file out on the `ast` tree before the engine pays for the LibCST parse. These checks
must be loose: answering "maybe" costs a parse, answering "no" wrongly loses a finding.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Callable, Iterator

# Code inside these runs in its own frame: not "directly in" the enclosing function or handler.
_OWN_SCOPE = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def of_type(tree: ast.AST, *types: type[ast.AST]) -> Iterator[ast.AST]:
    """Every node of one of `types` anywhere in `tree`."""
    return (node for node in every_node(tree) if isinstance(node, types))


_last_module: tuple[ast.Module, list[ast.AST]] | None = None


def every_node(tree: ast.AST) -> list[ast.AST]:
    """The nodes of `tree` in `ast.walk` order. For a whole module the list is made once and
    shared by every rule's check: walking a large module costs milliseconds, and the checks
    walk it many times."""
    global _last_module
    if _last_module is not None and _last_module[0] is tree:
        return _last_module[1]
    found = list(ast.walk(tree))
    if isinstance(tree, ast.Module):
        _last_module = (tree, found)
    return found


_BLOCKS = ("body", "orelse", "finalbody")
# What holds blocks of statements; expressions never do (a lambda's body is an expression).
_HOLDS_BLOCKS = (ast.stmt, ast.excepthandler, ast.match_case)


def statement_lists(tree: ast.AST) -> Iterator[list[ast.stmt]]:
    """Every block of statements: bodies, `else:` and `finally:` blocks (handlers are bodies too),
    in `ast.walk` order. Only statements, handlers and `case`s are walked: a tenth of the nodes."""
    queue = deque([tree])
    while queue:
        node = queue.popleft()
        for field in _BLOCKS:
            statements = getattr(node, field, None)
            if isinstance(statements, list):
                yield statements
        for field in node._fields:
            children = getattr(node, field, None)
            if isinstance(children, list):
                queue.extend(child for child in children if isinstance(child, _HOLDS_BLOCKS))


def own_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes below `node` that run in its frame: nested defs, lambdas and classes are skipped."""
    for child in ast.iter_child_nodes(node):
        yield child
        if not isinstance(child, _OWN_SCOPE):
            yield from own_nodes(child)


def dotted_name(node: ast.expr) -> str | None:
    """`a.b.c` for the attribute chain `a.b.c`; None for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def called_name(call: ast.Call) -> str | None:
    """`error` for `logger.error(...)` and for `error(...)`; None for other callees."""
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    if isinstance(call.func, ast.Name):
        return call.func.id
    return None


class Callees:
    """How this file can call some functions of one module: `asyncio.run(...)`, `aio.run(...)`
    after `import asyncio as aio`, `go(...)` after `from asyncio import run as go`."""

    def __init__(self, tree: ast.AST, module: str, functions: set[str]) -> None:
        self.functions = functions
        self.module_names: set[str] = set()
        self.function_names: set[str] = set()
        for node in of_type(tree, ast.Import, ast.ImportFrom):
            for alias in node.names:  # type: ignore[attr-defined]
                if isinstance(node, ast.Import) and alias.name == module:
                    self.module_names.add(alias.asname or module)
                elif isinstance(node, ast.ImportFrom) and node.module == module:
                    if alias.name == "*":
                        self.function_names |= functions
                    elif alias.name in functions:
                        self.function_names.add(alias.asname or alias.name)

    def __call__(self, call: ast.Call) -> bool:
        func = call.func
        if isinstance(func, ast.Name):
            return func.id in self.function_names
        return (
            isinstance(func, ast.Attribute)
            and func.attr in self.functions
            and isinstance(func.value, ast.Name)
            and func.value.id in self.module_names
        )


def own_calls(node: ast.AST) -> Iterator[ast.Call]:
    """The calls `node`'s own frame makes."""
    return (child for child in own_nodes(node) if isinstance(child, ast.Call))


def calls_in(node: ast.AST, accepts: Callable[[ast.Call], bool]) -> bool:
    """Whether `node`'s own frame makes a call that `accepts` accepts."""
    return any(map(accepts, own_calls(node)))


def calls_named(*names: str) -> Callable[[ast.Call], bool]:
    """Accepts calls whose callee's last name is one of `names` (`cls(...)`, `x.error(...)`)."""
    return lambda call: called_name(call) in names


def identifiers(tree: ast.AST) -> frozenset[str]:
    """Every identifier the code writes -- variables, attributes, definitions, parameters, keyword
    arguments, every part of an imported name, `global` and capture names, `True`/`False`/`None` -- as the LibCST `Name`
    nodes of the same code spell them. A rule that picks a fresh name asks this of the whole
    module, which a sliced run does not give LibCST."""
    return frozenset(name for node in every_node(tree) for name in _written_names(node))


def _written_names(node: ast.AST) -> Iterator[str]:
    if isinstance(node, ast.Name):
        yield node.id
    elif isinstance(node, ast.Attribute):
        yield node.attr
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield node.name
    elif isinstance(node, ast.arg):
        yield node.arg
    elif isinstance(node, ast.keyword) and node.arg is not None:
        yield node.arg
    elif isinstance(node, ast.alias):
        yield from node.name.split(".")
        yield from [node.asname] if node.asname else []
    elif isinstance(node, ast.ImportFrom) and node.module:
        yield from node.module.split(".")
    elif isinstance(node, (ast.Global, ast.Nonlocal)):
        yield from node.names
    elif isinstance(node, ast.ExceptHandler) and node.name:
        yield node.name
    elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
        yield node.name
    elif isinstance(node, ast.MatchMapping) and node.rest:
        yield node.rest
    elif isinstance(node, ast.MatchClass):
        yield from node.kwd_attrs
    elif isinstance(node, (ast.Constant, ast.MatchSingleton)) and (node.value is None or isinstance(node.value, bool)):
        yield repr(node.value)  # `True`, `False` and `None` are names to LibCST
