"""Questions rules ask about a node's surroundings, answered from LibCST metadata.

Every function takes the running rule (for its metadata) and a node. `qualified_names` needs
`QualifiedNameProvider` in the rule's METADATA_DEPENDENCIES, `import_binding` needs
`ScopeProvider`; the others only need the parent links every rule has.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m
from libcst.helpers import get_full_name_for_node
from libcst.metadata import ImportAssignment, ParentNodeProvider, QualifiedNameProvider, ScopeProvider

from unleak.knowledge.project import CONTEXT_MANAGER_DECORATORS
from unleak.rule import ImportSpec, Rule

# The nodes that start a new execution context: code inside them does not run where it stands.
FunctionLike = (cst.FunctionDef, cst.Lambda, cst.ClassDef)


def qualified_names(rule: Rule, node: cst.CSTNode) -> set[str]:
    """What `node` (a name, attribute or call's func) may refer to: {"asyncio.run"}, ..."""
    return {name.name for name in rule.get_metadata(QualifiedNameProvider, node, set())}


def calls(rule: Rule, node: cst.Call, *names: str) -> bool:
    """Whether `node` calls one of the fully qualified `names` (aliases and from-imports resolved).

    Only a plain callee counts: in `asyncio.run(x)()` the outer call is not `asyncio.run`.
    """
    if not isinstance(node.func, (cst.Name, cst.Attribute)):
        return False
    return not qualified_names(rule, node.func).isdisjoint(names)


def ancestors(rule: Rule, node: cst.CSTNode) -> list[cst.CSTNode]:
    """The parents of `node`, nearest first, up to the module."""
    found: list[cst.CSTNode] = []
    current = rule.get_metadata(ParentNodeProvider, node, None)
    while current is not None:
        found.append(current)
        current = rule.get_metadata(ParentNodeProvider, current, None)
    return found


def enclosing_function(rule: Rule, node: cst.CSTNode) -> cst.FunctionDef | cst.Lambda | cst.ClassDef | None:
    """The `def`, `lambda` or class whose own frame runs `node` (None: the module's).

    That is the nearest one whose body holds `node`: a function's defaults, decorators and
    annotations, or a class's bases, run in the frame around it.
    """
    child = node
    for parent in ancestors(rule, node):
        if isinstance(parent, FunctionLike) and child is parent.body:
            return parent
        child = parent
    return None


def in_async_function(rule: Rule, node: cst.CSTNode) -> bool:
    """True when the nearest enclosing function is an `async def` (a nested def, lambda or class is not)."""
    function = enclosing_function(rule, node)
    return isinstance(function, cst.FunctionDef) and function.asynchronous is not None


def in_context_manager_generator(rule: Rule, node: cst.CSTNode) -> bool:
    """Whether `node` runs in a generator decorated `@contextlib.contextmanager` or
    `@contextlib.asynccontextmanager` (aliases and from-imports resolved): its `yield` hands a
    value to the caller's `with` block, and the code after the `yield` is that block's exit."""
    function = enclosing_function(rule, node)
    if not isinstance(function, cst.FunctionDef):
        return False
    return any(
        not qualified_names(rule, decorator.decorator).isdisjoint(CONTEXT_MANAGER_DECORATORS)
        for decorator in function.decorators
    )


def within(rule: Rule, node: cst.CSTNode, container: cst.CSTNode) -> bool:
    """Whether `node` is `container` or inside it."""
    return node is container or any(parent is container for parent in ancestors(rule, node))


def calls_method(rule: Rule, access: cst.CSTNode, methods: set[str] | frozenset[str]) -> bool:
    """Whether `access` (a use of a name) is the receiver of a call of one of `methods`: `db.commit()`."""
    attribute = rule.get_metadata(ParentNodeProvider, access, None)
    if not isinstance(attribute, cst.Attribute) or attribute.value is not access:
        return False
    call = rule.get_metadata(ParentNodeProvider, attribute, None)
    return isinstance(call, cst.Call) and call.func is attribute and attribute.attr.value in methods


def import_binding(rule: Rule, callee: cst.BaseExpression) -> ImportSpec | None:
    """The import that binds the first name of `callee` (`from asyncio import run as go` for `go`,
    `import asyncio` for `asyncio.run`), for a fix that may leave it unused; None when that name
    is bound otherwise, more than once, or by a relative, dotted or star import."""
    root = callee
    while isinstance(root, cst.Attribute):
        root = root.value
    if not isinstance(root, cst.Name):
        return None
    assignments = list(rule.get_metadata(ScopeProvider, root)[root.value])
    if len(assignments) != 1 or not isinstance(assignments[0], ImportAssignment):
        return None
    statement = assignments[0].node
    if not isinstance(statement, (cst.Import, cst.ImportFrom)) or isinstance(statement.names, cst.ImportStar):
        return None
    for alias in statement.names:
        bound = alias.evaluated_alias or alias.evaluated_name
        if bound != root.value:
            continue
        if isinstance(statement, cst.Import):
            return ImportSpec(alias.evaluated_name, None, alias.evaluated_alias)
        module = get_full_name_for_node(statement.module) if statement.module is not None else None
        if module is None or statement.relative:
            return None
        return ImportSpec(module, alias.evaluated_name, alias.evaluated_alias)
    return None


def names_in_module(rule: Rule, module: cst.Module) -> frozenset[str]:
    """Every name the whole module uses, for picking a fresh one: those of `module` and, when it
    is a slice, those of the definitions the slice dropped."""
    return frozenset(name.value for name in m.findall(module, m.Name())) | rule.project.names_outside_slice()
