"""Which assignment a use of a reused name sees, when the answer does not depend on the path taken.

LibCST's scope analysis ties every use of a name to every assignment of it in the scope. A
script that reuses one name for several files (`f = open(a)` ... `f.close()`, then
`f = open(b)` ...) needs the straight-line answer: the last plain `name = ...` statement that
runs before the use in every case. Functions take the running rule for its parent links.
"""

from __future__ import annotations

from collections.abc import Collection

import libcst as cst
from libcst.metadata import ParentNodeProvider

from unleak.knowledge.analysis import within
from unleak.rule import Rule

_LOOPS = (cst.For, cst.While)


def reaching_binding(rule: Rule, use: cst.CSTNode, bindings: Collection[cst.CSTNode]) -> cst.SimpleStatementLine | None:
    """The statement of a plain `name = ...` that last ran before `use` on every path, where
    `bindings` are all the assignment targets of the name in its scope; None when that is not
    certain: the nearest earlier statement that binds the name does so only on some paths (inside
    an `if`, a `for` target...), or the search leaves a loop body (an earlier turn may have bound
    it) or reaches the top of the scope."""
    statement = _statement_holding(rule, use)
    while statement is not None:
        block = rule.get_metadata(ParentNodeProvider, statement)
        earlier = list(block.body)[: list(block.body).index(statement)]
        for candidate in reversed(earlier):
            if any(within(rule, binding, candidate) for binding in bindings):
                return candidate if _binds_plainly(rule, candidate, bindings) else None
        if isinstance(block, cst.Module):
            return None
        statement = _statement_holding(rule, rule.get_metadata(ParentNodeProvider, block))
        if statement is None or isinstance(statement, (*_LOOPS, cst.FunctionDef, cst.ClassDef)):
            return None
        if _binds_on_entry(rule, statement, bindings):
            return statement  # `with open(b) as name:` around the use
        if _may_have_bound_before(rule, statement, block, bindings):
            return None
    return None


def _may_have_bound_before(
    rule: Rule, compound: cst.BaseStatement, block: cst.BaseSuite, bindings: Collection[cst.CSTNode]
) -> bool:
    """Whether a part of `compound` outside `block` may bind the name before `block` runs: the body
    of a `try` before its handlers, a `with` item, a condition. Only another branch of an `if`
    cannot."""
    others = [binding for binding in bindings if within(rule, binding, compound) and not within(rule, binding, block)]
    if not isinstance(compound, cst.If):
        return bool(others)
    return any(not _in_a_branch(rule, binding, compound) for binding in others)


def _in_a_branch(rule: Rule, binding: cst.CSTNode, branching: cst.If) -> bool:
    """Whether `binding` is in the body of `branching` or of one of its `elif`/`else` parts."""
    part: cst.If | cst.Else | None = branching
    while isinstance(part, cst.If):
        if within(rule, binding, part.body):
            return True
        part = part.orelse
    return part is not None and within(rule, binding, part.body)


def binds_in(rule: Rule, statements: list[cst.BaseStatement] | list[cst.BaseSuite], bindings: Collection[cst.CSTNode]) -> bool:
    """Whether any of `statements` assigns the name (anywhere inside them)."""
    return any(within(rule, binding, statement) for binding in bindings for statement in statements)


def _statement_holding(rule: Rule, node: cst.CSTNode) -> cst.BaseStatement | None:
    """The statement of a block (or of the module) that is or holds `node`."""
    current: cst.CSTNode | None = node
    while current is not None:
        parent = rule.get_metadata(ParentNodeProvider, current, None)
        if isinstance(parent, (cst.IndentedBlock, cst.Module)) and isinstance(current, cst.BaseStatement):
            return current
        current = parent
    return None


def _binds_on_entry(rule: Rule, statement: cst.BaseStatement, bindings: Collection[cst.CSTNode]) -> bool:
    """`with ... as name:` whose body does not assign the name again."""
    if not isinstance(statement, cst.With):
        return False
    entered = any(item.asname is not None and item.asname.name in bindings for item in statement.items)
    return entered and not binds_in(rule, [statement.body], bindings)


def _binds_plainly(rule: Rule, statement: cst.BaseStatement, bindings: Collection[cst.CSTNode]) -> bool:
    """`name = value` or `name: T = value` as the only statement of its line, or a `with ... as name:`."""
    if _binds_on_entry(rule, statement, bindings):
        return True
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    if isinstance(small, cst.Assign):
        return any(target.target in bindings for target in small.targets)
    return isinstance(small, cst.AnnAssign) and small.value is not None and small.target in bindings
