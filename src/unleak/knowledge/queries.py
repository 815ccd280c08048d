"""What an ORM query over one model's rows looks like in LibCST: the shapes the database rules share.

`row_query` reads an iterable such as `session.query(M).filter(...).all()`, `M.query.filter_by(...)`
or `(await session.scalars(select(M).where(...))).all()` and says which model it selects, on
which session, and what the same rows' bulk delete is.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Literal, cast

import libcst as cst
import libcst.matchers as m

# Filters a query's rows keep meaning as a DELETE's WHERE (no limit, order, join, options...).
_FILTERS = frozenset({"filter", "filter_by", "where"})
# A model is named in CapWords (`Message`, `models.Message`); `Message.id` is a column.
_MODEL = m.Name() | m.Attribute(attr=m.Name(m.MatchIfTrue(lambda name: name[:1].isupper())))
_ONE_POSITIONAL = [m.Arg(value=_MODEL, keyword=None, star="")]
# `db`, `session`, `db.session`, `self.session`, `async_session`, `tx_db`: named like a database session.
SESSION_NAME = re.compile(r"(?:\w+_)?(?:session|db|sess)$")


@dataclass(frozen=True)
class RowQuery:
    """The rows of one model a query selects."""

    model: cst.BaseExpression  # `Message`, `models.Message`
    session: cst.BaseExpression | None  # None: Flask-SQLAlchemy's `Model.query` (its `<db>.session`)
    style: Literal["legacy", "flask", "select"]
    filtered: cst.BaseExpression  # `session.query(M).filter(...)` or `select(M).where(...)`, without `.all()`
    select: cst.Call | None  # the `select(M)` call of the 2.x style
    awaited: bool  # `(await session.scalars(...))`


def row_query(iterable: cst.BaseExpression) -> RowQuery | None:
    """The query `iterable` runs, when it is a whole query over one model's rows."""
    if m.matches(iterable, m.Call(func=m.Attribute(attr=m.Name("all")), args=[])):
        iterable = cst.ensure_type(cst.ensure_type(iterable, cst.Call).func, cst.Attribute).value
    awaited = isinstance(iterable, cst.Await)
    if isinstance(iterable, cst.Await):
        iterable = iterable.expression
    if m.matches(iterable, m.Call(func=m.Attribute(attr=m.Name("scalars")), args=[m.Arg(keyword=None, star="")])):
        return _select_query(cst.ensure_type(iterable, cst.Call), awaited)
    if awaited:
        return None
    base = _unfiltered(iterable, frozenset({"filter", "filter_by"}))
    if m.matches(base, m.Call(func=m.Attribute(attr=m.Name("query")), args=_ONE_POSITIONAL)):
        call = cst.ensure_type(base, cst.Call)
        session = cst.ensure_type(call.func, cst.Attribute).value
        return RowQuery(call.args[0].value, session, "legacy", iterable, None, False)
    if m.matches(base, m.Attribute(value=_MODEL, attr=m.Name("query"))):
        return RowQuery(cst.ensure_type(base, cst.Attribute).value, None, "flask", iterable, None, False)
    return None


def may_be_row_query(iterable: ast.expr) -> bool:
    """`row_query` on the stdlib AST, loosely (any name or attribute may be the model): for
    rules' `could_fire`."""
    if isinstance(iterable, ast.Call) and _method_of(iterable, "all") and not iterable.args and not iterable.keywords:
        iterable = cast(ast.Attribute, iterable.func).value
    awaited = isinstance(iterable, ast.Await)
    if isinstance(iterable, ast.Await):
        iterable = iterable.value
    if isinstance(iterable, ast.Call) and _method_of(iterable, "scalars") and _one_positional(iterable, of=ast.expr):
        base = _unfiltered_ast(iterable.args[0], _FILTERS)
        selects = isinstance(base, ast.Call) and isinstance(base.func, (ast.Name, ast.Attribute))
        return selects and _called(cast(ast.Call, base)) == "select" and _one_positional(cast(ast.Call, base))
    if awaited:
        return False
    base = _unfiltered_ast(iterable, frozenset({"filter", "filter_by"}))
    if isinstance(base, ast.Call):
        return _method_of(base, "query") and _one_positional(base)
    return isinstance(base, ast.Attribute) and base.attr == "query" and isinstance(base.value, (ast.Name, ast.Attribute))


def _method_of(call: ast.Call, name: str) -> bool:
    return isinstance(call.func, ast.Attribute) and call.func.attr == name


def _called(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else cast(ast.Name, call.func).id


def _one_positional(call: ast.Call, of: type[ast.expr] | tuple[type[ast.expr], ...] = (ast.Name, ast.Attribute)) -> bool:
    """One positional argument, by default a name or an attribute (`_ONE_POSITIONAL`, loosely)."""
    return len(call.args) == 1 and not call.keywords and isinstance(call.args[0], of) and not isinstance(call.args[0], ast.Starred)


def _unfiltered_ast(query: ast.expr, filters: frozenset[str]) -> ast.expr:
    while isinstance(query, ast.Call) and isinstance(query.func, ast.Attribute) and query.func.attr in filters:
        query = query.func.value
    return query


def _select_query(scalars: cst.Call, awaited: bool) -> RowQuery | None:
    statement = scalars.args[0].value
    base = _unfiltered(statement, _FILTERS)
    if not m.matches(base, m.Call(func=m.Name("select") | m.Attribute(attr=m.Name("select")), args=_ONE_POSITIONAL)):
        return None
    select = cst.ensure_type(base, cst.Call)
    session = cst.ensure_type(scalars.func, cst.Attribute).value
    return RowQuery(select.args[0].value, session, "select", statement, select, awaited)


def _unfiltered(query: cst.BaseExpression, filters: frozenset[str]) -> cst.BaseExpression:
    """What `query` filters: `session.query(M)` for `session.query(M).filter(a).filter_by(b=1)`."""
    while m.matches(query, m.Call(func=m.Attribute(attr=m.OneOf(*map(m.Name, sorted(filters)))))):
        query = cst.ensure_type(cst.ensure_type(query, cst.Call).func, cst.Attribute).value
    return query


def is_session_of(receiver: cst.BaseExpression, query: RowQuery) -> bool:
    """`receiver` is the session `query` runs on (for `Model.query`: something's `.session`)."""
    if query.session is None:
        return m.matches(receiver, m.Attribute(attr=m.Name("session")))
    return receiver.deep_equals(query.session)
