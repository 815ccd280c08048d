"""Cheap structural questions on the stdlib AST, for rules' `could_fire` checks.

CPython's own parser is about a hundred times faster than LibCST plus its metadata, so a rule
can rule a file out on the `ast` tree before the engine pays for the LibCST parse. These checks
must be loose: answering "maybe" costs a parse, answering "no" wrongly loses a finding.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

# Code inside these runs in its own frame: not "directly in" the enclosing function or handler.
_OWN_SCOPE = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def of_type(tree: ast.AST, *types: type[ast.AST]) -> Iterator[ast.AST]:
    """Every node of one of `types` anywhere in `tree`."""
    return (node for node in every_node(tree) if isinstance(node, types))


_last_module: tuple[ast.Module, list[ast.AST]] | None = None
Levels = list[list[ast.AST]]  # a subtree's nodes, level by level, each level in `ast.walk` order
_shared_levels: dict[ast.AST, Levels] | None = None  # see `sharing_walks`


def every_node(tree: ast.AST) -> list[ast.AST]:
    """The nodes of `tree` in `ast.walk` order. For a whole module the list is made once and
    shared by every rule's check: walking a large module costs milliseconds, and the checks
    walk it many times."""
    global _last_module
    if _last_module is not None and _last_module[0] is tree:
        return _last_module[1]
    if _shared_levels is not None and isinstance(tree, ast.Module):
        found = [node for level in _levels(tree, _shared_levels) for node in level]
    else:
        found = list(ast.walk(tree))
    if isinstance(tree, ast.Module):
        _last_module = (tree, found)
    return found


@contextmanager
def sharing_walks() -> Iterator[None]:
    """While this lasts, modules made of the same statements (the engine's slices: one module per
    definition that may be kept) walk each statement once: `every_node` of such a module is put
    together from its statements' walks, in the order `ast.walk` gives."""
    global _shared_levels
    previous, _shared_levels = _shared_levels, {}
    try:
        yield
    finally:
        _shared_levels = previous


def _levels(node: ast.AST, known: dict[ast.AST, Levels]) -> Levels:
    """`node`'s subtree level by level. `ast.walk` goes breadth first, so each level is the
    children's same level one after the other. Modules and classes, which slices rebuild, are put
    together from their children; any other node is walked once."""
    if not isinstance(node, (ast.Module, ast.ClassDef)):
        if node not in known:
            known[node] = _walked_by_level(node)
        return known[node]
    levels: Levels = [[node]]
    for child in ast.iter_child_nodes(node):
        for depth, level in enumerate(_levels(child, known), start=1):
            if depth == len(levels):
                levels.append([])
            levels[depth].extend(level)
    return levels


def _walked_by_level(node: ast.AST) -> Levels:
    levels: Levels = []
    current = [node]
    while current:
        levels.append(current)
        current = [child for parent in current for child in ast.iter_child_nodes(parent)]
    return levels


_last_blocks: tuple[ast.Module, list[list[ast.stmt]]] | None = None


def statement_lists(tree: ast.AST) -> list[list[ast.stmt]]:
    """Every block of statements: bodies, `else:` and `finally:` blocks (handlers and `case`s
    are bodies too). Statements nest only in statements, so only they are visited; for a whole
    module the list is made once and shared, as `every_node`'s."""
    global _last_blocks
    if _last_blocks is not None and _last_blocks[0] is tree:
        return _last_blocks[1]
    found: list[list[ast.stmt]] = []
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        for field in ("body", "orelse", "finalbody"):
            statements = getattr(node, field, None)
            if isinstance(statements, list):
                found.append(statements)
                pending.extend(statements)
        pending.extend(getattr(node, "handlers", ()))
        pending.extend(getattr(node, "cases", ()))
    if isinstance(tree, ast.Module):
        _last_blocks = (tree, found)
    return found


def statements_of_type(tree: ast.AST, *types: type[ast.stmt]) -> list[ast.stmt]:
    """Every statement of one of `types`, at any depth, found without visiting an expression
    (statements nest only in statements): far cheaper than `of_type` over a whole module."""
    return [statement for block in statement_lists(tree) for statement in block if isinstance(statement, types)]


def own_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes below `node` that run in its frame: nested defs, lambdas and classes are skipped."""
    for child in ast.iter_child_nodes(node):
        yield child
        if not isinstance(child, _OWN_SCOPE):
            yield from own_nodes(child)


def frame_nodes(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.AST]:
    """The nodes of the function's body that run in its frame (its defaults, decorators and
    annotations run in the enclosing one; nested defs, lambdas and classes in their own)."""
    found: list[ast.AST] = []
    for statement in function.body:
        found.append(statement)
        if not isinstance(statement, _OWN_SCOPE):
            found.extend(own_nodes(statement))
    return found


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


# --- what binds a name in a frame -------------------------------------------------------------


@dataclass(frozen=True)
class Binding:
    """How a frame binds a name, among the bindings LibCST's scope analysis records: `how` is
    "parameter" (`parameter` the `ast.arg`, `value` its default), "assigned" (`value` assigned to
    the name, a whole target of `=`), "annotated" (`name: T = value`, `value` None without one),
    "with"/"async with" (`value` entered), "for"/"async for" (`value` iterated), or "other" (a
    name in a tuple target, `+=`, `:=`, an import, a `def` or `class`, `except ... as`)."""

    how: str
    value: ast.expr | None = None
    parameter: ast.arg | None = None


_OTHER = Binding("other")


def parameters(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> list[tuple[ast.arg, ast.expr | None]]:
    """Every parameter with its default."""
    arguments = function.args
    positional = [*arguments.posonlyargs, *arguments.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(arguments.defaults))
    found = list(zip(positional, [*defaults, *arguments.defaults]))
    found += list(zip(arguments.kwonlyargs, arguments.kw_defaults))
    return found + [(extra, None) for extra in (arguments.vararg, arguments.kwarg) if extra is not None]


def bindings(parameters: Iterable[tuple[ast.arg, ast.expr | None]], nodes: Iterable[ast.AST]) -> dict[str, list[Binding]]:
    """Every binding of each name by `parameters` and by `nodes` (a frame's, see `frame_nodes`)
    that LibCST records in the same scope. A comprehension's targets are its own scope's; `case`
    captures LibCST does not record. A rule asking that all bindings be of a kind gets a subset
    of LibCST's: its answer is loose, never stricter."""
    found: dict[str, list[Binding]] = {}
    for parameter, default in parameters:
        found.setdefault(parameter.arg, []).append(Binding("parameter", default, parameter))
    for node in nodes:
        for name, binding in _bound_by(node):
            found.setdefault(name, []).append(binding)
    return found


def _bound_by(node: ast.AST) -> Iterator[tuple[str, Binding]]:
    if isinstance(node, ast.Assign):
        for target in node.targets:
            yield from _bound_to(target, Binding("assigned", node.value))
    elif isinstance(node, ast.AnnAssign):
        yield from _bound_to(node.target, Binding("annotated", node.value))
    elif isinstance(node, (ast.AugAssign, ast.NamedExpr)):
        yield from _bound_to(node.target, _OTHER)
    elif isinstance(node, (ast.For, ast.AsyncFor)):
        yield from _bound_to(node.target, Binding("async for" if isinstance(node, ast.AsyncFor) else "for", node.iter))
    elif isinstance(node, (ast.With, ast.AsyncWith)):
        how = "async with" if isinstance(node, ast.AsyncWith) else "with"
        for item in node.items:
            if item.optional_vars is not None:
                yield from _bound_to(item.optional_vars, Binding(how, item.context_expr))
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield node.name, _OTHER
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        yield from ((alias.asname or alias.name.split(".")[0], _OTHER) for alias in node.names)
    elif isinstance(node, ast.ExceptHandler) and node.name:
        yield node.name, _OTHER


def _bound_to(target: ast.expr, binding: Binding) -> Iterator[tuple[str, Binding]]:
    """`binding` for a name that is the whole target; any other name the target stores is bound otherwise."""
    if isinstance(target, ast.Name):
        yield target.id, binding
        return
    for name in ast.walk(target):
        if isinstance(name, ast.Name) and isinstance(name.ctx, ast.Store):
            yield name.id, _OTHER
