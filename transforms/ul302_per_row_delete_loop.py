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

It also finds the per-object form, a loop handing each row to `session.delete(row)` (`await`ed
on an `AsyncSession`, `db.session.delete(row)` with Flask-SQLAlchemy):

- over a whole query -- `session.query(M).filter(...)` / `.filter_by(...)` (`.all()` or not),
  `M.query...`, `session.scalars(select(M).where(...))`, `(await session.scalars(...)).all()` --
  with nothing else in the body: the loop becomes the query's own bulk delete,
  `<query>.delete(synchronize_session="fetch")` or `session.execute(delete(M).where(...))`
  (`delete` imported from `sqlalchemy` beside `select`, or `sa.delete` for `sa.select`). A
  `session.commit()` after each row becomes one, inside `if <the delete's row count>:`;
- over a name the statement right before loaded from such a query (`rows = q.all()` then
  `for row in rows:`), when the loop is the name's only use: the same bulk delete (the
  assignment stays; its SELECT still runs);
- Django: `for obj in M.objects.filter(...)` (`.all()`, `.exclude()`, or a name loaded so right
  before) whose body is only `obj.delete()`: `M.objects.filter(...).delete()`, always unsafe,
  since `QuerySet.delete()` sends the delete signals and cascades but does not call a model's own
  `delete()` method. A queryset loaded into a name right before the loop and read again
  elsewhere (rendered after the loop) gets `name.delete()` too, with the message saying that the
  name now has no rows where the loop had left the deleted ones cached;
- over anything else (a relationship collection such as `user.messages`, a list) with a
  `session.commit()` as the body's last statement: the loop stays, and the commit moves after
  it, guarded by `if <iterable>:` since the loop committed only when it had items. No bulk
  delete is offered for a collection;
- parents with child deletes, `for t in ts: session.query(Tool).filter(Tool.toolkit_id ==
  t.id).delete(); session.delete(t)`: the children go with one `in_()` delete before the loop
  (as above, safe), and the loop keeps the parents' deletes, which the next pass handles as
  the two forms before. The iterable is read twice, so it must be a name, an attribute or a
  query (not a call that may give other items, or an iterator).

Reported without a fix: `for row in <query, or a name loaded from one earlier>: if <test of
row>: session.delete(row)`, rows picked by a Python test: the test belongs in the query's
filter, and it may not translate into SQL.

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

The per-object forms: the bulk delete skips what `session.delete(obj)` does per object -- the
ORM's cascades over the model's relationships (children deleted, or their foreign keys set to
NULL; association rows of a many-to-many) and `before_delete`/`after_delete` listeners. So the
fix is safe only when the project index sees the model (in any module of the run) with no
relationship at all and no delete listener; otherwise it is unsafe and the message says why.
`synchronize_session="fetch"` marks the deleted rows' objects already in the session as deleted,
as the per-object deletes did. Left alone: a body that does anything besides the delete (and a
last commit), a loop item used after the loop, queries with `order_by`, `limit`, `join` or other
steps than filters, a query on another session than the delete's, receivers not named like a
session (`cache.delete(k)`), `async for`. Moving the commit out of the loop: left alone when the
body also commits, rolls back, closes or begins elsewhere, or has `break`, `continue`, `return`,
`raise`, `yield` or `try`; unsafe when the body calls anything but the session and a logger
(`notify(item)`, an HTTP call: they now happen before the one commit instead of between commits);
reported without a fix when the iterable is a call (it cannot be tested again after the loop).

The byte triggers are a call of something ending in `delete` (or `delete` imported under another
name), the word `for` and a call of `filter`, `filter_by`, `where` or `scalars`, a `.query` or a
`.commit(`; `could_fire` then keeps only files with a `for` loop (no `else`) whose
body is one or two expression statements, the first calling `delete` (or a name `delete` is
imported as) and `filter`, `filter_by` or `where`, or whose body hands the loop variable to a
session named so (`db.delete(item)`) while iterating over a query `row_query` could read
(`may_be_row_query`) or committing last, or whose one statement is `obj.delete()` over a Django
queryset (or a name loaded from one right before).
'''

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass

import libcst as cst
import libcst.matchers as m
from libcst.metadata import ParentNodeProvider, QualifiedNameProvider, ScopeProvider

from unleak.knowledge import quickscan
from unleak.knowledge.analysis import FunctionLike, ancestors, calls, enclosing_function, names_in_module, within
from unleak.knowledge.project import Model
from unleak.knowledge.queries import SESSION_NAME, RowQuery, is_session_of, may_be_row_query, row_query
from unleak.rule import FixSafety, ImportSpec, Invalid, Rule, SliceScope, Valid

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
_PER_OBJECT = "One ORM delete per row half-finishes when one fails: delete the query's rows with one statement"
_COMMIT_PER_ROW = "A commit per deleted row leaves the delete half-finished when a row fails: commit once, after the loop"
_NO_RELATIONSHIP_IN = "SQLAlchemy has no `in_()` for relationships, write one `in_()` on a column by hand"
_KEY_NAME = re.compile(r"(?:\w*_)?(?:id|ID|pk|uuid|key)|\w*[a-z](?:Id|ID|Pk|Uuid|Key)")
_BINDS_TIGHTER_THAN_A_COMPREHENSION = (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.List, cst.ListComp)
_COMMIT = m.Call(func=m.Attribute(attr=m.Name("commit")), args=[])
_SYNCHRONIZE_FALSE = cst.Arg(
    keyword=cst.Name("synchronize_session"),
    value=cst.Name("False"),
    equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")),
)


SQLALCHEMY_SELECT = (
    "sqlalchemy.select",
    "sqlalchemy.sql.select",
    "sqlalchemy.sql.expression.select",
    "sqlalchemy.future.select",
)
# An iterable that reads the same items again after the loop: a name or an attribute chain.
_REREADABLE = m.Name() | m.Attribute(value=m.Name() | m.Attribute())
_FETCH = cst.Arg(
    keyword=cst.Name("synchronize_session"),
    value=cst.SimpleString('"fetch"'),
    equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")),
)
_CONTROL_FLOW = m.Break() | m.Continue() | m.Return() | m.Raise() | m.Yield() | m.Try() | m.FunctionDef() | m.Lambda()
_TRANSACTION_ENDS = frozenset({"commit", "rollback", "close", "begin", "begin_nested"})
_LOGGERS = re.compile(r"(?:\w*log(?:ger)?|logging|print|warnings)(?:\.\w+)*")
_DJANGO_BULK_UNSAFE = "`QuerySet.delete()` sends the delete signals and cascades, but does not call the model's own `delete()`"
_DJANGO_QUERYSET_STEPS = frozenset({"all", "filter", "exclude"})
_MOVED_COMMIT_UNSAFE = "the loop does more than delete: moving the commit changes when those effects become durable"


@dataclass(frozen=True)
class _ObjectDeletes:
    """A loop body that hands each item to `session.delete(item)`, maybe committing after each."""

    session: cst.BaseExpression  # `db`, `db.session`
    item: cst.Name  # the item in `session.delete(item)`
    awaited: bool  # `await session.delete(item)`: an AsyncSession
    commit: cst.SimpleStatementLine | None  # the body's last statement, when it is `session.commit()`
    others: tuple[cst.BaseStatement, ...]  # the body's other statements


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
    # the third: a per-item filter, or what a per-object delete loop iterates over or commits with
    trigger = (rb"delete(?:\s*\(|\s+as\b)", rb"\bfor\b", rb"\b(?:filter|filter_by|where|scalars)\s*\(|\.query\b|\.commit\s*\(")
    METADATA_DEPENDENCIES = (QualifiedNameProvider, ScopeProvider)
    slice_scope = SliceScope.IN_FUNCTIONS
    uses_project = True

    _names_in_module: frozenset[str]  # every name the module uses, set by `visit_Module`

    @classmethod
    def could_fire(cls, tree: ast.Module) -> bool:
        """A `for` loop without `else` whose body is one or two expression statements, the first
        calling `delete` and `filter`, `filter_by` or `where`."""
        deletes = quickscan.calls_named("delete", *_delete_aliases(tree))
        filters = quickscan.calls_named("filter", "filter_by", "where")
        right_before = {
            id(after): value
            for statements in quickscan.statement_lists(tree)
            for before, after in zip(statements, statements[1:])
            if (value := _loaded_into(before, after)) is not None
        }
        loaded = {loop for loop, value in right_before.items() if may_be_row_query(value)}
        return any(
            not loop.orelse
            and (
                (
                    1 <= len(loop.body) <= 2
                    and all(isinstance(statement, ast.Expr) for statement in loop.body)
                    and _expression_calls(loop.body[0], deletes)
                    and _expression_calls(loop.body[0], filters)
                )
                or _deletes_each_object(loop, id(loop) in loaded)
                or (_deletes_itself(loop) and _is_django_queryset_ast(right_before.get(id(loop), loop.iter)))
                or _deletes_picked_objects(loop)
            )
            for loop in quickscan.statements_of_type(tree, ast.For)
            if isinstance(loop, ast.For)
        )

    def visit_Module(self, node: cst.Module) -> None:
        self._names_in_module = names_in_module(self, node)

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
        self.report(loop, fix=cst.FlattenSentinel(self._bulk_statements(loop, delete, deleting, committing)))

    def _bulk_statements(
        self,
        loop: cst.For,
        delete: _PerItemDelete,
        deleting: cst.SimpleStatementLine,
        committing: list[cst.SimpleStatementLine],
    ) -> list[cst.BaseStatement]:
        """`<item>_ids = [...]` and `if <item>_ids: <the bulk delete> [commit]`."""
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
        return [collect, guarded]

    @m.visit(m.For(target=m.Name(), orelse=None, asynchronous=None, body=m.IndentedBlock()))
    def flag_children_then_parent(self, loop: cst.For) -> None:
        """`for t in ts: <children of t>.delete(); session.delete(t)`: the children go with one
        `in_()` delete before the loop, which keeps deleting the parents (the next pass looks at it)."""
        statements = cst.ensure_type(loop.body, cst.IndentedBlock).body
        children = self._children_deleted_first(loop)
        if children is None:
            return
        if not _compares_keys(children):
            column = cst.Module([]).code_for_node(children.column)
            self.report(loop, f"{self.summary} (`{column}` may be a relationship: {_NO_RELATIONSHIP_IN})")
            return
        deleting = cst.ensure_type(statements[0], cst.SimpleStatementLine)
        before = self._bulk_statements(loop, children, deleting, [])
        parents = loop.with_changes(body=loop.body.with_changes(body=statements[1:]), leading_lines=())
        self.report(loop, f"{self.summary} (the children first)", fix=cst.FlattenSentinel([*before, parents]))

    def _children_deleted_first(self, loop: cst.For) -> _PerItemDelete | None:
        """The first statement's per-item delete, when the second is `session.delete(item)` on
        the same session (and a last `commit()` at most follows), over an iterable that can be
        read twice (a name, an attribute, a query)."""
        if isinstance(enclosing_function(self, loop), cst.ClassDef):
            return None
        statements = cst.ensure_type(loop.body, cst.IndentedBlock).body
        deletes = _object_deletes(loop)
        if deletes is None or not 2 <= len(statements) <= 3 or deletes.others != (statements[0],):
            return None
        if not _is_lone_expression(statements[0]) or _statement_call(statements[1], "delete") is None:
            return None
        first = _expression(cst.ensure_type(statements[0], cst.SimpleStatementLine))
        children = self._per_item_delete(first, deletes.item.value)
        if children is None or not _same_receiver(children.session, deletes.session):
            return None
        rereadable = m.matches(loop.iter, _REREADABLE) or row_query(loop.iter) is not None
        return children if rereadable else None

    @m.visit(m.For(target=m.Name(), orelse=None, asynchronous=None, body=m.IndentedBlock()))
    def flag_per_object_delete(self, loop: cst.For) -> None:
        """`for row in <query>: session.delete(row)` (one bulk DELETE), or a loop that commits
        after each `session.delete(item)` (the commit moves after the loop)."""
        if isinstance(enclosing_function(self, loop), cst.ClassDef):
            return
        deletes = _object_deletes(loop)
        if deletes is None or m.findall(loop.body, _CONTROL_FLOW) or self._children_deleted_first(loop) is not None:
            return
        query = row_query(self._iterated(loop))
        if query is not None and not deletes.others and self._deletes_only(loop, query, deletes):
            self._report_bulk_object_delete(loop, query, deletes)
        elif deletes.commit is not None:
            self._report_commit_moved_out(loop, deletes)

    def _iterated(self, loop: cst.For) -> cst.BaseExpression:
        """What the loop iterates: its iterable, or for `rows = <value>` right before `for row
        in rows:` with `rows` used nowhere else, that value."""
        assign = self._loaded_before(loop, right_before=True)
        if assign is None or not isinstance(loop.iter, cst.Name):
            return loop.iter
        scope = self.get_metadata(ScopeProvider, loop.iter, None)
        bindings = list(scope[loop.iter.value]) if scope is not None else []
        if len(bindings) != 1 or bindings[0].node is not assign.targets[0].target:
            return loop.iter
        uses = [access.node for access in bindings[0].references]
        return assign.value if uses == [loop.iter] else loop.iter

    def _loaded_before(self, loop: cst.For, *, right_before: bool) -> cst.Assign | None:
        """`name = <value>` for `for x in name:`, the statement right before the loop or (not
        `right_before`) the last one of the loop's block to assign `name`."""
        if not isinstance(loop.iter, cst.Name):
            return None
        parent = self.get_metadata(ParentNodeProvider, loop, None)
        statements = list(parent.body) if isinstance(parent, (cst.IndentedBlock, cst.Module)) else []
        position = next((i for i, statement in enumerate(statements) if statement is loop), 0)
        earlier = statements[position - 1 : position] if right_before else statements[:position]
        single = m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(m.Name(loop.iter.value))])])
        for statement in reversed(earlier):
            if m.matches(statement, single):
                return cst.ensure_type(cst.ensure_type(statement, cst.SimpleStatementLine).body[0], cst.Assign)
            if _assigns(statement, loop.iter.value):
                return None
        return None

    @m.visit(m.For(target=m.Name(), orelse=None, asynchronous=None, body=m.IndentedBlock()))
    def flag_delete_picked_in_python(self, loop: cst.For) -> None:
        """`for row in <query or its rows>: if <test of row>: session.delete(row)`: reported, the
        test belongs in the query (it may not translate into SQL: fix by hand)."""
        body = cst.ensure_type(loop.body, cst.IndentedBlock).body
        item = cst.ensure_type(loop.target, cst.Name).value
        if len(body) != 1 or not m.matches(body[0], m.If(orelse=None)):
            return
        picked = cst.ensure_type(body[0], cst.If)
        deletes = m.Call(func=m.Attribute(attr=m.Name("delete")), args=[m.Arg(m.Name(item), keyword=None, star="")])
        small = _small_statements(picked.body)
        call = _unawaited(small[0].value) if len(small) == 1 and isinstance(small[0], cst.Expr) else None
        if call is None or not m.matches(call, deletes) or not m.findall(picked.test, m.Name(item)):
            return
        if not SESSION_NAME.search(cst.Module([]).code_for_node(_receiver_of(cst.ensure_type(call, cst.Call)))):
            return
        loaded = self._loaded_before(loop, right_before=False)
        if row_query(loaded.value if loaded is not None else loop.iter) is not None:
            self.report(loop, f"{_PER_OBJECT} (the rows are picked by a Python test: move it into the query's filter by hand)")

    @m.visit(m.For(target=m.Name(), orelse=None, asynchronous=None, body=m.IndentedBlock()))
    def flag_django_per_object_delete(self, loop: cst.For) -> None:
        """`for obj in M.objects.filter(...): obj.delete()` -> `M.objects.filter(...).delete()`."""
        item = cst.ensure_type(loop.target, cst.Name)
        body = cst.ensure_type(loop.body, cst.IndentedBlock)
        own_delete = m.SimpleStatementLine(body=[m.Expr(m.Call(func=m.Attribute(value=m.Name(item.value), attr=m.Name("delete")), args=[]))])
        if len(body.body) != 1 or not m.matches(body.body[0], own_delete):
            return
        queryset, unsafe = self._iterated(loop), _DJANGO_BULK_UNSAFE
        loaded = self._loaded_before(loop, right_before=True)
        if queryset is loop.iter and loaded is not None and _is_django_queryset(loaded.value):
            queryset, unsafe = loop.iter, f"{unsafe}; `{loop.iter.value}` is read elsewhere, and after the delete it has no rows"
        elif not _is_django_queryset(queryset):
            return
        if isinstance(enclosing_function(self, loop), cst.ClassDef):
            return
        used = m.findall(body.body[0], m.Name(item.value))
        if not self._item_used_only_in(loop, used[0]):
            return
        line = cst.ensure_type(body.body[0], cst.SimpleStatementLine)
        bulk = cst.Call(cst.Attribute(queryset.deep_clone(), cst.Name("delete")))
        fix = line.with_changes(body=[cst.Expr(bulk)], leading_lines=loop.leading_lines, trailing_whitespace=body.header)
        self.report(loop, f"{_PER_OBJECT} (unsafe: {unsafe})", fix=fix, safety=FixSafety.UNSAFE)

    def _deletes_only(self, loop: cst.For, query: RowQuery, deletes: _ObjectDeletes) -> bool:
        """The loop deletes the query's rows on the query's session and uses them for nothing else."""
        same_session = is_session_of(deletes.session, query) and deletes.awaited == query.awaited
        return same_session and self._item_used_only_in(loop, deletes.item)

    def _report_bulk_object_delete(self, loop: cst.For, query: RowQuery, deletes: _ObjectDeletes) -> None:
        bulk = self._bulk_object_delete(query, deletes)
        if bulk is None:
            self.report(loop, f"{_PER_OBJECT} (`delete` names something else here: write the bulk delete by hand)")
            return
        statement, imports = bulk
        body = cst.ensure_type(loop.body, cst.IndentedBlock)
        if deletes.commit is None:
            fix: cst.BaseStatement = cst.SimpleStatementLine(
                [cst.Expr(statement)], leading_lines=loop.leading_lines, trailing_whitespace=body.header
            )
        else:  # `Query.delete()` returns the row count; `execute()` a result with `rowcount`
            test = statement if query.style != "select" else cst.Attribute(_parenthesized(statement), cst.Name("rowcount"))
            fix = cst.If(test, body.with_changes(body=[deletes.commit]), leading_lines=loop.leading_lines)
        unsafe = self._skipped_by_bulk(query.model)
        if unsafe is None:
            self.report(loop, _PER_OBJECT, fix=fix, imports=imports)
        else:
            self.report(loop, f"{_PER_OBJECT} (unsafe: {unsafe})", fix=fix, imports=imports, safety=FixSafety.UNSAFE)

    def _bulk_object_delete(
        self, query: RowQuery, deletes: _ObjectDeletes
    ) -> tuple[cst.BaseExpression, tuple[ImportSpec, ...]] | None:
        """`<query>.delete(synchronize_session="fetch")`, or `session.execute(delete(M).where(...))`."""
        if query.style != "select":
            return cst.Call(cst.Attribute(query.filtered, cst.Name("delete")), args=[_FETCH]), ()
        assert query.select is not None
        if not calls(self, query.select, *SQLALCHEMY_SELECT):
            return None
        spelled = self._delete_callee(query.select)
        if spelled is None:
            return None
        callee, imports = spelled
        statement = _replaced(query.filtered, query.select, query.select.with_changes(func=callee))
        execute: cst.BaseExpression = cst.Call(cst.Attribute(deletes.session, cst.Name("execute")), [cst.Arg(statement)])
        return (cst.Await(execute) if query.awaited else execute), imports

    def _delete_callee(self, select: cst.Call) -> tuple[cst.BaseExpression, tuple[ImportSpec, ...]] | None:
        """`sa.delete` beside `sa.select`; `delete` for `select`, imported unless it already is
        SQLAlchemy's (None: the name is taken)."""
        if isinstance(select.func, cst.Attribute):
            return select.func.with_changes(attr=cst.Name("delete")), ()
        scope = self.get_metadata(ScopeProvider, select.func, None)
        if scope is None or "delete" not in scope:
            return cst.Name("delete"), (ImportSpec("sqlalchemy", "delete"),)
        resolved = {qualified.name for qualified in scope.get_qualified_names_for("delete")}
        return (cst.Name("delete"), ()) if resolved & set(SQLALCHEMY_DELETE) else None

    def _skipped_by_bulk(self, model: cst.BaseExpression) -> str | None:
        """Why the bulk delete may not do what the per-object deletes did (None: nothing it skips)."""
        name = cst.Module([]).code_for_node(model)
        found = self.project.model(name)
        if found.found is None:
            skipped = "the bulk delete skips the ORM's cascades and delete events"
            return f"{skipped}, and unleak cannot see {name}: {found.reason}"
        if found.found.relationships:
            related = ", ".join(relationship.attribute for relationship in found.found.relationships)
            return f"{name} has relationships ({related}) the per-object delete cascades to or unlinks"
        if self._delete_listened(found.found):
            return f"{name} has delete listeners that the bulk delete does not run"
        return None

    def _delete_listened(self, model: Model) -> bool:
        """A `before_delete`/`after_delete` listener on `model` in the run, this file's included
        (read from its source as it is now, which the index may not have on disk: stdin)."""
        own = (self.project.model(listener.model).found == model for listener in self.project.own.listeners)
        return bool(self.project.delete_listeners(model)) or any(own)

    def _report_commit_moved_out(self, loop: cst.For, deletes: _ObjectDeletes) -> None:
        """`for x in xs: session.delete(x); session.commit()` -> the commit after the loop, `if xs:`."""
        if not m.matches(loop.iter, _REREADABLE):
            self.report(loop, f"{_COMMIT_PER_ROW} (move it after the loop by hand: the iterable cannot be tested again)")
            return
        if any(_ends_transaction(statement, deletes.session) for statement in deletes.others):
            return
        assert deletes.commit is not None
        body = cst.ensure_type(loop.body, cst.IndentedBlock)
        kept = loop.with_changes(body=body.with_changes(body=[s for s in body.body if s is not deletes.commit]))
        guarded = cst.If(loop.iter.deep_clone(), cst.IndentedBlock([deletes.commit]))
        fix = cst.FlattenSentinel([kept, guarded])
        if all(_only_session_or_logging(statement, deletes.session) for statement in deletes.others):
            self.report(loop, _COMMIT_PER_ROW, fix=fix)
        else:
            self.report(loop, f"{_COMMIT_PER_ROW} (unsafe: {_MOVED_COMMIT_UNSAFE})", fix=fix, safety=FixSafety.UNSAFE)

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
        Invalid(
            """
            def clear(db, user):
                for message in user.messages:
                    db.delete(message)
                    db.commit()
            """,
            """
            def clear(db, user):
                for message in user.messages:
                    db.delete(message)
                if user.messages:
                    db.commit()
            """,
        ),
        Invalid(
            """
            def purge(session, user):
                for token in session.query(Token).filter(Token.user == user).all():
                    session.delete(token)
            """,
            """
            def purge(session, user):
                session.query(Token).filter(Token.user == user).delete(synchronize_session="fetch")
            """,
            unsafe=True,
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


# --- per-object deletes: `session.delete(item)` -------------------------------------------------


def _object_deletes(loop: cst.For) -> _ObjectDeletes | None:
    """The body's one `[await] session.delete(item)` statement and its last `session.commit()`."""
    item = cst.ensure_type(loop.target, cst.Name).value
    statements = cst.ensure_type(loop.body, cst.IndentedBlock).body
    of_item = m.Call(args=[m.Arg(m.Name(item), keyword=None, star="")])
    found = [(line, call) for line in statements if m.matches(call := _statement_call(line, "delete"), of_item)]
    if len(found) != 1:
        return None
    line, call = found[0]
    session = cst.ensure_type(call.func, cst.Attribute).value
    if not SESSION_NAME.search(cst.Module([]).code_for_node(session)):
        return None
    last = statements[-1]
    commit_call = _statement_call(last, "commit")
    commits = commit_call is not None and not commit_call.args and _receiver_of(commit_call).deep_equals(session)
    commit = cst.ensure_type(last, cst.SimpleStatementLine) if commits else None
    others = tuple(statement for statement in statements if statement is not line and statement is not commit)
    awaited = isinstance(cst.ensure_type(cst.ensure_type(line, cst.SimpleStatementLine).body[0], cst.Expr).value, cst.Await)
    return _ObjectDeletes(session, cst.ensure_type(call.args[0].value, cst.Name), awaited, commit, others)


def _statement_call(statement: cst.BaseStatement, method: str) -> cst.Call | None:
    """The `x.<method>(...)` call a statement consists of (awaited or not)."""
    if not m.matches(statement, m.SimpleStatementLine(body=[m.Expr()])):
        return None
    value = cst.ensure_type(cst.ensure_type(statement, cst.SimpleStatementLine).body[0], cst.Expr).value
    value = value.expression if isinstance(value, cst.Await) else value
    return cst.ensure_type(value, cst.Call) if m.matches(value, m.Call(func=m.Attribute(attr=m.Name(method)))) else None


def _same_receiver(children: cst.BaseExpression | None, session: cst.BaseExpression) -> bool:
    """The children's delete runs on `session` (`Model.query`: on some `<db>.session`)."""
    if children is None:
        return m.matches(session, m.Attribute(attr=m.Name("session")))
    return children.deep_equals(session)


def _is_django_queryset(expression: cst.BaseExpression) -> bool:
    """`M.objects.filter(...).exclude(...).all()`: a manager's rows, filtered only."""
    steps = 0
    while m.matches(expression, m.Call(func=m.Attribute(attr=m.OneOf(*map(m.Name, sorted(_DJANGO_QUERYSET_STEPS)))))):
        expression = cst.ensure_type(cst.ensure_type(expression, cst.Call).func, cst.Attribute).value
        steps += 1
    return steps > 0 and m.matches(expression, m.Attribute(value=m.Name() | m.Attribute(), attr=m.Name("objects")))


def _assigns(statement: cst.BaseStatement, name: str) -> bool:
    """`statement` binds `name` (an assignment, a loop, a `with ... as`, `:=`)."""
    targets = m.AssignTarget(m.Name(name)) | m.AugAssign(target=m.Name(name)) | m.AnnAssign(target=m.Name(name))
    loops_and_names = m.For(target=m.Name(name)) | m.AsName(name=m.Name(name)) | m.NamedExpr(target=m.Name(name))
    return bool(m.findall(statement, targets | loops_and_names))


def _small_statements(block: cst.BaseSuite) -> list[cst.BaseSmallStatement]:
    """The statements of a one-line block (`if x: a()`) or of a block of one line."""
    if isinstance(block, cst.SimpleStatementSuite):
        return list(block.body)
    lines = cst.ensure_type(block, cst.IndentedBlock).body
    return list(lines[0].body) if len(lines) == 1 and isinstance(lines[0], cst.SimpleStatementLine) else []


def _unawaited(expression: cst.BaseExpression) -> cst.BaseExpression:
    return expression.expression if isinstance(expression, cst.Await) else expression


def _receiver_of(call: cst.Call) -> cst.BaseExpression:
    return cst.ensure_type(call.func, cst.Attribute).value


def _ends_transaction(statement: cst.BaseStatement, session: cst.BaseExpression) -> bool:
    """`statement` commits, rolls back, closes or begins on `session`."""
    return any(
        _receiver_of(cst.ensure_type(call, cst.Call)).deep_equals(session)
        for call in m.findall(statement, m.Call(func=m.Attribute(attr=m.OneOf(*map(m.Name, sorted(_TRANSACTION_ENDS))))))
    )


def _only_session_or_logging(statement: cst.BaseStatement, session: cst.BaseExpression) -> bool:
    """Every call in `statement` is the session's or a logger's: nothing else becomes durable."""
    for found in m.findall(statement, m.Call()):
        callee = cst.ensure_type(found, cst.Call).func
        receiver = callee.value if isinstance(callee, cst.Attribute) else None
        if receiver is not None and receiver.deep_equals(session):
            continue
        if not _LOGGERS.fullmatch(cst.Module([]).code_for_node(callee)):
            return False
    return True


def _replaced(tree: cst.BaseExpression, old: cst.CSTNode, new: cst.CSTNode) -> cst.BaseExpression:
    return cst.ensure_type(tree.deep_replace(old, new), cst.BaseExpression)


def _parenthesized(expression: cst.BaseExpression) -> cst.BaseExpression:
    if isinstance(expression, cst.Await):
        return expression.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return expression


# --- the cheap check on the stdlib AST ---------------------------------------------------------


def _delete_aliases(tree: ast.Module) -> set[str]:
    """Other names `delete` is imported under (`from sqlalchemy import delete as sa_delete`)."""
    return {
        alias.asname
        for node in quickscan.statements_of_type(tree, ast.ImportFrom)
        for alias in getattr(node, "names", ())
        if alias.name == "delete" and alias.asname
    }


def _expression_calls(statement: ast.stmt, accepts: Callable[[ast.Call], bool]) -> bool:
    return isinstance(statement, ast.Expr) and any(
        isinstance(node, ast.Call) and accepts(node) for node in ast.walk(statement)
    )


def _deletes_each_object(loop: ast.For, loaded: bool) -> bool:
    """`<session>.delete(<the loop variable>)` as a statement of the body, and a query to
    iterate (or `loaded` right before into the iterable) or a `.commit()` as the body's last
    statement."""
    if not isinstance(loop.target, ast.Name):
        return False
    if not any(_deletes_on_a_session(statement, loop.target.id) for statement in loop.body):
        return False
    return loaded or may_be_row_query(loop.iter) or _expression_calls(loop.body[-1], quickscan.calls_named("commit"))


def _deletes_on_a_session(statement: ast.stmt, item: str) -> bool:
    """`[await] <session>.delete(<item>)`, the receiver named like a session (as `_object_deletes`)."""
    call = statement.value if isinstance(statement, ast.Expr) else None
    call = call.value if isinstance(call, ast.Await) else call
    return (
        isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "delete"
        and [ast.dump(arg) for arg in call.args] == [ast.dump(ast.Name(item, ast.Load()))]
        and SESSION_NAME.search(ast.unparse(call.func.value)) is not None
    )


def _loaded_into(before: ast.stmt, loop: ast.stmt) -> ast.expr | None:
    """`<value>` for `rows = <value>` right before `for row in rows:`."""
    if not isinstance(loop, ast.For) or not isinstance(loop.iter, ast.Name) or not isinstance(before, ast.Assign):
        return None
    assigns = [ast.dump(target) for target in before.targets] == [ast.dump(ast.Name(loop.iter.id, ast.Store()))]
    return before.value if assigns else None


def _is_django_queryset_ast(expression: ast.expr) -> bool:
    """`_is_django_queryset`: `M.objects.filter(...).exclude(...).all()`."""
    steps = 0
    while isinstance(expression, ast.Call) and isinstance(expression.func, ast.Attribute) and expression.func.attr in _DJANGO_QUERYSET_STEPS:
        expression, steps = expression.func.value, steps + 1
    return steps > 0 and isinstance(expression, ast.Attribute) and expression.attr == "objects" and isinstance(expression.value, (ast.Name, ast.Attribute))


def _deletes_picked_objects(loop: ast.For) -> bool:
    """`for row in <a query, or a name>: if <test of row>: <session>.delete(row)`, the body's one
    statement."""
    if not isinstance(loop.target, ast.Name) or len(loop.body) != 1 or not isinstance(loop.body[0], ast.If):
        return False
    picked, item = loop.body[0], loop.target.id
    if picked.orelse or len(picked.body) != 1 or not _deletes_on_a_session(picked.body[0], item):
        return False
    tests_item = any(isinstance(node, ast.Name) and node.id == item for node in ast.walk(picked.test))
    return tests_item and (isinstance(loop.iter, ast.Name) or may_be_row_query(loop.iter))


def _deletes_itself(loop: ast.For) -> bool:
    """`for obj in ...: obj.delete()`, the body's one statement."""
    if not isinstance(loop.target, ast.Name) or len(loop.body) != 1 or not isinstance(loop.body[0], ast.Expr):
        return False
    call = loop.body[0].value
    return (
        isinstance(call, ast.Call) and not call.args and isinstance(call.func, ast.Attribute) and call.func.attr == "delete"
        and isinstance(call.func.value, ast.Name) and call.func.value.id == loop.target.id
    )
