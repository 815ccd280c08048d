'''UL302 per-row-delete-loop

## What it does
Finds a `for` loop that deletes rows one item at a time -- one SQL `DELETE` per item, often with a
`commit()` after each -- and turns it into one bulk `DELETE ... WHERE fk IN (...)`:

- Flask-SQLAlchemy: `Message.query.filter_by(conversation_id=c.id).delete()`,
- legacy `Query`: `session.query(Message).filter(Message.conversation_id == c.id).delete()` (or
  `.filter_by(conversation_id=c.id)`),
- 2.x style: `session.execute(delete(Message).where(Message.conversation_id == c.id))`, with
  `delete` resolved by qualified name (`sqlalchemy.delete`, `sqlalchemy.sql.delete`,
  `sqlalchemy.sql.expression.delete`, aliases and module imports followed), awaited or not.

The loop becomes a list of the per-item values, built once under a new name
(`<loop variable>_ids`, with a numeric suffix when that name is used anywhere in the module), and
one delete with `Column.in_(<list>)` guarded by `if <list>:` so that an empty iterable issues no
statement at all (no `IN ()`). A legacy `Query` delete gets `synchronize_session=False`. A
`commit()` that followed the delete inside the loop becomes one commit after the bulk delete,
inside the same `if`, because the loop committed only when it had items. Comments above and
inside the loop are kept.

## Why is this bad?
The loop issues one `DELETE` per item. When one of them fails halfway -- a lock timeout, a
foreign key that still points at a row, a worker killed mid-loop -- the rows of the earlier
items are already gone: with a commit inside the loop they are gone for good, and the `except`
that rolls back only undoes the last batch. The data is left half deleted, with orphans. It is
also one round trip per item (seed 001 #5).

## Example
```python
for conversation in user.conversations:
    Message.query.filter_by(conversation_id=conversation.id).delete()
    db.session.commit()
```

## Use instead
```python
conversation_ids = [conversation.id for conversation in user.conversations]
if conversation_ids:
    Message.query.filter(Message.conversation_id.in_(conversation_ids)).delete(synchronize_session=False)
    db.session.commit()
```

## Fix safety
Safe. The fix is made only when the loop body is exactly the delete statement, optionally
followed by one `commit()` statement of the same session (`<db>.session.commit()` for
`Model.query`; the very same receiver for `session.query(...)` and `session.execute(...)`), and
the delete's only condition is one equality between a column and the loop item or an attribute
chain of it (`c`, `c.id`, `c.owner.id`): `filter(Model.fk == c.id)` (either side),
`filter_by(fk=c.id)` (the column is `Model.fk` of `Model.query` / `session.query(Model)`), or
`delete(Model).where(Model.fk == c.id)`. The loop variable must be used nowhere else (not after
the loop either: the comprehension does not leave it bound). Left alone: two per-item conditions
or an extra constant one (`filter_by(a=c.id, b=c.kind)`, `filter(M.a == c.id, M.b == 2)`, a
second `.filter`), since folding them into one `IN` is not the same condition; filters not on
the loop item; any other statement in the body (logging, counting, `break`, `continue`, a commit
before the delete or on another session); using the delete's result (`n = ...delete()`);
`for ... else`, `async for`, one-line loop bodies, tuple targets (`for a, b in pairs`) and loops
directly in a class body (the loop variable is a class attribute there);
`.delete()` calls that are not a query's (`cache.delete(key)`, `client.delete(url)`,
`session.delete(obj)`), and a `delete()` that is not SQLAlchemy's. Reported without a fix: a
loop whose column and item attribute are both not named like a key (`id`, `pk`, `uuid`, `key`,
`..._id`, `...Id`), such as `filter_by(conversation=c)` or `filter(Message.owner == c.user)`:
the column may be a relationship compared with an object, and SQLAlchemy raises
`NotImplementedError` for `in_()` on a relationship.

What changes besides atomicity: every per-item value is read before the one delete runs (they
are plain attribute reads); a `None` value matched `IS NULL` with `==` but matches nothing in
`IN (...)` (the rule is meant for ids of loaded rows, which are never `None`); and with
`synchronize_session=False` objects of the deleted rows already loaded in the session are not
marked deleted -- they stay in the identity map until the session expires them (every commit
does by default), after which touching them raises `ObjectDeletedError` instead of reading
stale data. The per-row `Query.delete()` synchronized those objects; code that keeps using
objects whose rows it has just deleted is wrong either way, and `synchronize_session=False` is
what lets the bulk delete run without evaluating the `IN` against every object in the session.
The 2.x `session.execute(delete(...))` form keeps its default synchronization. A very long
iterable makes one statement with that many bound parameters (SQLite before 3.32 allows 999).

The byte triggers are a call of something ending in `delete` (or `delete` imported under another
name), the word `for` and a call of `filter`, `filter_by` or `where`; `could_fire` then keeps only files with a `for` loop (no `else`) whose
body is one or two expression statements, the first calling `delete` (or a name `delete` is
imported as) and `filter`, `filter_by` or `where`.
'''

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass

import libcst as cst
import libcst.matchers as m
from libcst.metadata import QualifiedNameProvider, ScopeProvider

from unleak.knowledge import quickscan
from unleak.knowledge.analysis import FunctionLike, ancestors, calls, enclosing_function, within
from unleak.rule import FixSafety, Invalid, Rule, Valid

SQLALCHEMY_DELETE = ("sqlalchemy.delete", "sqlalchemy.sql.delete", "sqlalchemy.sql.expression.delete")

_MODEL = m.Name() | m.Attribute()


def _positional(value: m.BaseMatcherNode) -> m.Arg:
    return m.Arg(value=value, keyword=None, star="")


_ONE_EQUALITY = m.Call(
    args=[m.Arg(value=m.Comparison(comparisons=[m.ComparisonTarget(operator=m.Equal())]), keyword=None, star="")]
)
_ONE_KEYWORD = m.Call(args=[m.Arg(keyword=m.Name(), star="")])
# `Model.query` (Flask-SQLAlchemy) or `session.query(Model)`.
_FLASK_QUERY = m.Attribute(value=_MODEL, attr=m.Name("query"))
_SESSION_QUERY = m.Call(func=m.Attribute(attr=m.Name("query")), args=[_positional(_MODEL)])
_SYNCHRONIZE_ONLY = m.Arg(keyword=m.Name("synchronize_session"))
# `<query>.filter(...).delete()` / `<query>.filter_by(...).delete()`.
_QUERY_DELETE = m.Call(
    func=m.Attribute(
        value=m.Call(
            func=m.Attribute(value=_FLASK_QUERY | _SESSION_QUERY, attr=m.Name("filter") | m.Name("filter_by"))
        ),
        attr=m.Name("delete"),
    ),
    args=m.MatchIfTrue(lambda args: not args or (len(args) == 1 and m.matches(args[0], _SYNCHRONIZE_ONLY))),
)
# `session.execute(<something>(Model).where(...))`; the callee is checked by qualified name.
_EXECUTE_DELETE = m.Call(
    func=m.Attribute(attr=m.Name("execute")),
    args=[_positional(m.Call(func=m.Attribute(value=m.Call(args=[_positional(_MODEL)]), attr=m.Name("where"))))],
)
# SQLAlchemy raises NotImplementedError for `relationship.in_()`: key-like names mean plain columns.
_NO_RELATIONSHIP_IN = "SQLAlchemy has no `in_()` for relationships, write one `in_()` on a column by hand"
_KEY_NAME = re.compile(r"(?:\w*_)?(?:id|ID|pk|uuid|key)|\w*[a-z](?:Id|ID|Pk|Uuid|Key)")
_BINDS_TIGHTER_THAN_A_COMPREHENSION = (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.List, cst.ListComp)
_COMMIT = m.Call(func=m.Attribute(attr=m.Name("commit")), args=[])
_SYNCHRONIZE_FALSE = cst.Arg(
    keyword=cst.Name("synchronize_session"),
    value=cst.Name("False"),
    equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")),
)


@dataclass(frozen=True)
class _PerItemDelete:
    """One iteration's delete: what each item contributes, and the bulk statement for a list."""

    column: cst.BaseExpression  # `Message.conversation_id`
    value: cst.BaseExpression  # `c.id`: the loop item's part of the condition
    session: cst.BaseExpression | None  # whose `commit()` may follow; None: `Model.query` (`<db>.session`)
    bulk: Callable[[cst.Name], cst.BaseExpression]  # the statement's expression for the list's name


class PerRowDeleteLoop(Rule):
    code = "UL302"
    name = "per-row-delete-loop"
    safety = FixSafety.SAFE
    summary = "One DELETE per item half-finishes when one fails: delete them all with one `IN (...)` statement"
    trigger = (rb"delete(?:\s*\(|\s+as\b)", rb"\bfor\b", rb"\b(?:filter|filter_by|where)\s*\(")
    METADATA_DEPENDENCIES = (QualifiedNameProvider, ScopeProvider)

    _names_in_module: set[str]  # every name the module uses, set by `visit_Module`

    @classmethod
    def could_fire(cls, tree: ast.Module) -> bool:
        """A `for` loop without `else` whose body is one or two expression statements, the first
        calling `delete` and `filter`, `filter_by` or `where`."""
        deletes = quickscan.calls_named("delete", *_delete_aliases(tree))
        filters = quickscan.calls_named("filter", "filter_by", "where")
        return any(
            not loop.orelse
            and 1 <= len(loop.body) <= 2
            and all(isinstance(statement, ast.Expr) for statement in loop.body)
            and _expression_calls(loop.body[0], deletes)
            and _expression_calls(loop.body[0], filters)
            for loop in quickscan.of_type(tree, ast.For)
            if isinstance(loop, ast.For)
        )

    def visit_Module(self, node: cst.Module) -> None:
        self._names_in_module = {name.value for name in m.findall(node, m.Name())}

    @m.visit(m.For(target=m.Name(), orelse=None, asynchronous=None, body=m.IndentedBlock()))
    def flag_per_row_delete(self, loop: cst.For) -> None:
        if isinstance(enclosing_function(self, loop), cst.ClassDef):
            return  # the loop variable would be a class attribute, visible as `self.<name>`
        statements = cst.ensure_type(loop.body, cst.IndentedBlock).body
        if not 1 <= len(statements) <= 2 or not all(map(_is_lone_expression, statements)):
            return
        deleting, *committing = (cst.ensure_type(line, cst.SimpleStatementLine) for line in statements)
        item = cst.ensure_type(loop.target, cst.Name)
        delete = self._per_item_delete(_expression(deleting), item.value)
        if delete is None or not self._item_used_only_in(loop, delete.value):
            return
        if committing and not _commits(_expression(committing[0]), delete.session):
            return
        if not _compares_keys(delete):
            column = cst.Module([]).code_for_node(delete.column)
            self.report(loop, f"{self.summary} (`{column}` may be a relationship: {_NO_RELATIONSHIP_IN})")
            return
        self._report_bulk(loop, delete, deleting, committing)

    def _report_bulk(
        self,
        loop: cst.For,
        delete: _PerItemDelete,
        deleting: cst.SimpleStatementLine,
        committing: list[cst.SimpleStatementLine],
    ) -> None:
        ids = self._free_name(f"{cst.ensure_type(loop.target, cst.Name).value}_ids")
        values = cst.ListComp(
            elt=delete.value.deep_clone(),
            for_in=cst.CompFor(target=loop.target.deep_clone(), iter=_as_comprehension_iterable(loop.iter)),
        )
        body = cst.ensure_type(loop.body, cst.IndentedBlock)
        collect = cst.SimpleStatementLine(
            body=[cst.Assign(targets=[cst.AssignTarget(cst.Name(ids))], value=values)],
            leading_lines=loop.leading_lines,
            trailing_whitespace=body.header,
        )
        bulk_delete = deleting.with_changes(
            body=[cst.ensure_type(deleting.body[0], cst.Expr).with_changes(value=delete.bulk(cst.Name(ids)))]
        )
        guarded_body = body.with_changes(body=[bulk_delete, *committing], header=cst.TrailingWhitespace())
        guarded = cst.If(test=cst.Name(ids), body=guarded_body)
        self.report(loop, fix=cst.FlattenSentinel([collect, guarded]))

    VALID = (
        Valid(
            """
            ids = [conversation.id for conversation in user.conversations]
            if ids:
                Message.query.filter(Message.conversation_id.in_(ids)).delete(synchronize_session=False)
            db.session.commit()
            """
        ),
        Valid(
            """
            for conversation in user.conversations:
                Message.query.filter_by(conversation_id=conversation.id, kind=conversation.kind).delete()
            """
        ),
        Valid(
            """
            for conversation in user.conversations:
                Message.query.filter_by(conversation_id=conversation.id).delete()
                logger.info("deleted %s", conversation.id)
            """
        ),
        Valid(
            """
            for key in stale_keys:
                cache.delete(key)
            """
        ),
        Valid(
            """
            for conversation in conversations:
                session.query(Message).filter(Message.conversation_id == conversation.id).delete()
                other_session.commit()
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            def delete_user(user):
                # messages first
                for conversation in user.conversations:
                    Message.query.filter_by(conversation_id=conversation.id).delete()
                    db.session.commit()
                db.session.delete(user)
                db.session.commit()
            """,
            """
            def delete_user(user):
                # messages first
                conversation_ids = [conversation.id for conversation in user.conversations]
                if conversation_ids:
                    Message.query.filter(Message.conversation_id.in_(conversation_ids)).delete(synchronize_session=False)
                    db.session.commit()
                db.session.delete(user)
                db.session.commit()
            """,
        ),
        Invalid(
            """
            for conversation in conversations:
                session.query(Message).filter(Message.conversation_id == conversation.id).delete()
            """,
            """
            conversation_ids = [conversation.id for conversation in conversations]
            if conversation_ids:
                session.query(Message).filter(Message.conversation_id.in_(conversation_ids)).delete(synchronize_session=False)
            """,
        ),
        Invalid(
            """
            from sqlalchemy import delete

            async def purge(session, conversations):
                for conversation in conversations:  # one by one
                    await session.execute(delete(Message).where(Message.conversation_id == conversation.id))
                    await session.commit()
            """,
            """
            from sqlalchemy import delete

            async def purge(session, conversations):
                conversation_ids = [conversation.id for conversation in conversations]  # one by one
                if conversation_ids:
                    await session.execute(delete(Message).where(Message.conversation_id.in_(conversation_ids)))
                    await session.commit()
            """,
        ),
        Invalid(
            """
            for conversation in conversations:
                Message.query.filter_by(conversation=conversation).delete()
            """
        ),
    )

    def _free_name(self, wanted: str) -> str:
        """`wanted`, or `wanted_2`, `wanted_3`... : a name nothing in the module uses."""
        candidate, suffix = wanted, 1
        while candidate in self._names_in_module:
            suffix += 1
            candidate = f"{wanted}_{suffix}"
        return candidate

    def _item_used_only_in(self, loop: cst.For, value: cst.BaseExpression) -> bool:
        """Every use of the loop variable that may see this loop's binding -- after the loop,
        in nested functions, anywhere in an enclosing loop -- is inside `value`, the part that
        moves into the comprehension (which does not leave the variable bound)."""
        target = cst.ensure_type(loop.target, cst.Name)
        scope = self.get_metadata(ScopeProvider, target, None)
        if scope is None:
            return False
        assignments = [assignment for assignment in scope.assignments[target.value] if assignment.node is target]
        if len(assignments) != 1:
            return False
        around = [parent for parent in self._frame_ancestors(loop) if isinstance(parent, (cst.For, cst.While))]
        in_enclosing_loops = [
            access for access in scope.accesses[target.value] if any(within(self, access.node, enclosing) for enclosing in around)
        ]
        uses = [access.node for access in (*assignments[0].references, *in_enclosing_loops)]
        return all(within(self, use, value) or self._rebound_by_another_loop(use, loop) for use in uses)

    def _frame_ancestors(self, node: cst.CSTNode) -> list[cst.CSTNode]:
        """The parents of `node` up to its function, lambda or class."""
        parents = ancestors(self, node)
        end = next((i for i, parent in enumerate(parents) if isinstance(parent, FunctionLike)), len(parents))
        return parents[:end]

    def _rebound_by_another_loop(self, use: cst.CSTNode, loop: cst.For) -> bool:
        """`use` sits in the body of another `for` over the same name: it sees that loop's binding."""
        name = cst.ensure_type(loop.target, cst.Name).value
        child = use
        for parent in ancestors(self, use):
            if isinstance(parent, cst.For) and parent is not loop and child is parent.body:
                if m.matches(parent.target, m.Name(name)):
                    return True
            child = parent
        return False

    # --- recognising one iteration's delete ------------------------------------------------------

    def _per_item_delete(self, expression: cst.BaseExpression, item: str) -> _PerItemDelete | None:
        if m.matches(expression, _QUERY_DELETE):
            return _query_delete(cst.ensure_type(expression, cst.Call), item)
        awaited = isinstance(expression, cst.Await)
        call = expression.expression if isinstance(expression, cst.Await) else expression
        if not m.matches(call, _EXECUTE_DELETE):
            return None
        found = self._execute_delete(cst.ensure_type(call, cst.Call), item)
        if found is None or not awaited:
            return found
        wrapper = cst.ensure_type(expression, cst.Await)
        return _PerItemDelete(
            found.column, found.value, found.session, lambda ids: wrapper.with_changes(expression=found.bulk(ids))
        )

    def _execute_delete(self, execute: cst.Call, item: str) -> _PerItemDelete | None:
        """`session.execute(delete(Model).where(Model.fk == item.id))`."""
        where = cst.ensure_type(execute.args[0].value, cst.Call)
        statement = cst.ensure_type(cst.ensure_type(where.func, cst.Attribute).value, cst.Call)
        if not calls(self, statement, *SQLALCHEMY_DELETE):
            return None
        condition = _column_equals_item(where, item)
        if condition is None:
            return None
        column, value = condition

        def bulk(ids: cst.Name) -> cst.BaseExpression:
            in_list = where.with_changes(args=[where.args[0].with_changes(value=_in(column, ids))])
            return execute.with_changes(args=[execute.args[0].with_changes(value=in_list)])

        return _PerItemDelete(column, value, cst.ensure_type(execute.func, cst.Attribute).value, bulk)


def _query_delete(delete: cst.Call, item: str) -> _PerItemDelete | None:
    """`Model.query.filter_by(fk=item.id).delete()`, `session.query(Model).filter(Model.fk == item.id).delete()`."""
    filtering = cst.ensure_type(cst.ensure_type(delete.func, cst.Attribute).value, cst.Call)
    method = cst.ensure_type(filtering.func, cst.Attribute)
    query = method.value
    if isinstance(query, cst.Call):  # session.query(Model)
        model, session = query.args[0].value, cst.ensure_type(query.func, cst.Attribute).value
    else:  # Model.query
        model, session = cst.ensure_type(query, cst.Attribute).value, None
    if method.attr.value == "filter_by":
        if not m.matches(filtering, _ONE_KEYWORD):
            return None
        keyword = cst.ensure_type(filtering.args[0].keyword, cst.Name)
        column: cst.BaseExpression = cst.Attribute(value=model.deep_clone(), attr=cst.Name(keyword.value))
        value = filtering.args[0].value
        if not _is_item_value(value, item):
            return None
    else:
        condition = _column_equals_item(filtering, item)
        if condition is None:
            return None
        column, value = condition

    def bulk(ids: cst.Name) -> cst.BaseExpression:
        # The argument keeps its comma and whitespace: a filter written over several lines stays so.
        condition = filtering.args[0].with_changes(
            keyword=None, equal=cst.MaybeSentinel.DEFAULT, value=_in(column, ids)
        )
        in_list = filtering.with_changes(func=method.with_changes(attr=cst.Name("filter")), args=[condition])
        arguments = delete.args or [_SYNCHRONIZE_FALSE]
        return delete.with_changes(func=delete.func.with_changes(value=in_list), args=arguments)

    return _PerItemDelete(column, value, session, bulk)


def _column_equals_item(call: cst.Call, item: str) -> tuple[cst.BaseExpression, cst.BaseExpression] | None:
    """(column, item value) for a call whose one argument is `Model.fk == item.id` (or reversed)."""
    if not m.matches(call, _ONE_EQUALITY):
        return None
    comparison = cst.ensure_type(call.args[0].value, cst.Comparison)
    left, right = comparison.left, comparison.comparisons[0].comparator
    for column, value in ((left, right), (right, left)):
        if isinstance(column, cst.Attribute) and _is_item_value(value, item):
            return column, value
    return None


def _compares_keys(delete: _PerItemDelete) -> bool:
    """Whether the column or the item's attribute is named like a key (`id`, `conversation_id`,
    `userId`, `pk`, `uuid`): then the equality compares scalars, not a relationship with an object."""
    names = [cst.ensure_type(delete.column, cst.Attribute).attr.value]
    if isinstance(delete.value, cst.Attribute):
        names.append(delete.value.attr.value)
    return any(_KEY_NAME.fullmatch(name) for name in names)


def _is_item_value(value: cst.BaseExpression, item: str) -> bool:
    """`item` itself or a plain attribute chain on it (`item.id`, `item.owner.id`)."""
    while isinstance(value, cst.Attribute) and not value.lpar:
        value = value.value
    return m.matches(value, m.Name(item))


def _in(column: cst.BaseExpression, ids: cst.Name) -> cst.Call:
    return cst.Call(func=cst.Attribute(value=column, attr=cst.Name("in_")), args=[cst.Arg(ids)])


def _commits(expression: cst.BaseExpression, session: cst.BaseExpression | None) -> bool:
    """`<the delete's session>.commit()` (awaited or not); for `Model.query`, `<db>.session.commit()`."""
    call = expression.expression if isinstance(expression, cst.Await) else expression
    if not m.matches(call, _COMMIT):
        return False
    receiver = cst.ensure_type(cst.ensure_type(call, cst.Call).func, cst.Attribute).value
    if session is None:
        return m.matches(receiver, m.Attribute(attr=m.Name("session")))
    return receiver.deep_equals(session)


def _as_comprehension_iterable(iterable: cst.BaseExpression) -> cst.BaseExpression:
    """The loop's iterable, parenthesized where a comprehension would read it differently
    (`for x in a if c else b`, `for x in *a, *b`)."""
    copy = iterable.deep_clone()
    if copy.lpar or isinstance(copy, _BINDS_TIGHTER_THAN_A_COMPREHENSION):
        return copy
    return copy.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def _is_lone_expression(statement: cst.BaseStatement) -> bool:
    return m.matches(statement, m.SimpleStatementLine(body=[m.Expr()]))


def _expression(line: cst.SimpleStatementLine) -> cst.BaseExpression:
    return cst.ensure_type(line.body[0], cst.Expr).value


# --- the cheap check on the stdlib AST ---------------------------------------------------------


def _delete_aliases(tree: ast.Module) -> set[str]:
    """Other names `delete` is imported under (`from sqlalchemy import delete as sa_delete`)."""
    return {
        alias.asname
        for node in quickscan.of_type(tree, ast.ImportFrom)
        for alias in getattr(node, "names", ())
        if alias.name == "delete" and alias.asname
    }


def _expression_calls(statement: ast.stmt, accepts: Callable[[ast.Call], bool]) -> bool:
    return isinstance(statement, ast.Expr) and any(
        isinstance(node, ast.Call) and accepts(node) for node in ast.walk(statement)
    )
