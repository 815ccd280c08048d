"""What an ORM query over one model's rows looks like in LibCST: the shapes the database rules share.

`row_query` reads an iterable such as `session.query(M).filter(...).all()`, `M.query.filter_by(...)`
or `(await session.scalars(select(M).where(...))).all()` and says which model it selects, on
which session, and what the same rows' bulk delete is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

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
