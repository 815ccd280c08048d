"""UL302 per-row-delete-loop: cases beyond the embedded examples, the prefilter, generated variants."""

from __future__ import annotations

import ast
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import fixed_text, run_rules
from unleak.engine.prefilter import structurally_possible, triggered_rules
from unleak.settings import Settings
from unleak.transforms.ul302_per_row_delete_loop import PerRowDeleteLoop

RULES = (PerRowDeleteLoop,)


def _fix(code: str) -> str:
    return fixed_text(run_rules(textwrap.dedent(code), RULES))


CHANGED = {
    "Flask filter_by with commit, comments kept": (
        """
        def delete_user(user):
            try:
                # messages first
                for conversation in user.conversations:  # all of them
                    # this is the slow part
                    Message.query.filter_by(conversation_id=conversation.id).delete()  # per row
                    db.session.commit()
                    # done with this conversation

                db.session.delete(user)
                db.session.commit()
            except Exception:
                db.session.rollback()
        """,
        """
        def delete_user(user):
            try:
                # messages first
                conversation_ids = [conversation.id for conversation in user.conversations]  # all of them
                if conversation_ids:
                    # this is the slow part
                    Message.query.filter(Message.conversation_id.in_(conversation_ids)).delete(synchronize_session=False)  # per row
                    db.session.commit()
                    # done with this conversation

                db.session.delete(user)
                db.session.commit()
            except Exception:
                db.session.rollback()
        """,
    ),
    "Flask filter with equality, no commit, dotted model": (
        """
        for thread in threads:
            models.Message.query.filter(models.Message.thread_id == thread.id).delete()
        """,
        """
        thread_ids = [thread.id for thread in threads]
        if thread_ids:
            models.Message.query.filter(models.Message.thread_id.in_(thread_ids)).delete(synchronize_session=False)
        """,
    ),
    "legacy Query filter_by with commit": (
        """
        def purge(db, orders):
            for order in orders:
                db.query(OrderLine).filter_by(order_id=order.id).delete()
                db.commit()
        """,
        """
        def purge(db, orders):
            order_ids = [order.id for order in orders]
            if order_ids:
                db.query(OrderLine).filter(OrderLine.order_id.in_(order_ids)).delete(synchronize_session=False)
                db.commit()
        """,
    ),
    "legacy Query, equality written the other way round, value is the item itself": (
        """
        def purge(session, stale):
            for key in stale:
                session.query(Token).filter(key == Token.user_id).delete()
        """,
        """
        def purge(session, stale):
            key_ids = [key for key in stale]
            if key_ids:
                session.query(Token).filter(Token.user_id.in_(key_ids)).delete(synchronize_session=False)
        """,
    ),
    "an explicit synchronize_session is kept": (
        """
        for user in users:
            session.query(Token).filter(Token.user_id == user.id).delete(synchronize_session="fetch")
        """,
        """
        user_ids = [user.id for user in users]
        if user_ids:
            session.query(Token).filter(Token.user_id.in_(user_ids)).delete(synchronize_session="fetch")
        """,
    ),
    "2.x delete through a module alias, with commit": (
        """
        import sqlalchemy as sa

        def purge(session, users):
            for user in users:
                session.execute(sa.delete(Token).where(Token.user_id == user.account.id))
                session.commit()
        """,
        """
        import sqlalchemy as sa

        def purge(session, users):
            user_ids = [user.account.id for user in users]
            if user_ids:
                session.execute(sa.delete(Token).where(Token.user_id.in_(user_ids)))
                session.commit()
        """,
    ),
    "2.x delete imported under another name": (
        """
        from sqlalchemy import delete as sa_delete

        def purge(session, users):
            for user in users:
                session.execute(sa_delete(Token).where(Token.user_id == user.id))
        """,
        """
        from sqlalchemy import delete as sa_delete

        def purge(session, users):
            user_ids = [user.id for user in users]
            if user_ids:
                session.execute(sa_delete(Token).where(Token.user_id.in_(user_ids)))
        """,
    ),
    "2.x delete from sqlalchemy.sql.expression": (
        """
        from sqlalchemy.sql.expression import delete

        for user in users:
            session.execute(delete(Token).where(Token.user_id == user.id))
        """,
        """
        from sqlalchemy.sql.expression import delete

        user_ids = [user.id for user in users]
        if user_ids:
            session.execute(delete(Token).where(Token.user_id.in_(user_ids)))
        """,
    ),
    "in a method of a class, inside try, inside another loop": (
        """
        class Cleaner:
            def run(self, batches):
                for batch in batches:
                    try:
                        for row in batch:
                            self.session.query(Event).filter(Event.row_id == row.id).delete()
                            self.session.commit()
                    except Exception:
                        self.session.rollback()
        """,
        """
        class Cleaner:
            def run(self, batches):
                for batch in batches:
                    try:
                        row_ids = [row.id for row in batch]
                        if row_ids:
                            self.session.query(Event).filter(Event.row_id.in_(row_ids)).delete(synchronize_session=False)
                            self.session.commit()
                    except Exception:
                        self.session.rollback()
        """,
    ),
    "the list's name avoids names in use, the iterable is parenthesized where needed": (
        """
        conversation_ids = load()
        conversation_ids_2 = load()
        for conversation in active if only_active else everything:
            Message.query.filter_by(conversation_id=conversation.id).delete()
        """,
        """
        conversation_ids = load()
        conversation_ids_2 = load()
        conversation_ids_3 = [conversation.id for conversation in (active if only_active else everything)]
        if conversation_ids_3:
            Message.query.filter(Message.conversation_id.in_(conversation_ids_3)).delete(synchronize_session=False)
        """,
    ),
    "a filter over several lines keeps its layout and comment": (
        """
        for c in conversations:
            Message.query.filter_by(
                conversation_id=c.id,  # the parent
            ).delete()
        """,
        """
        c_ids = [c.id for c in conversations]
        if c_ids:
            Message.query.filter(
                Message.conversation_id.in_(c_ids),  # the parent
            ).delete(synchronize_session=False)
        """,
    ),
    "two loops over the same name in one function": (
        """
        def purge(session, users):
            for user in users:
                session.query(Token).filter(Token.user_id == user.id).delete()
            for user in users:
                session.query(Login).filter(Login.user_id == user.id).delete()
            session.commit()
        """,
        """
        def purge(session, users):
            user_ids = [user.id for user in users]
            if user_ids:
                session.query(Token).filter(Token.user_id.in_(user_ids)).delete(synchronize_session=False)
            user_ids = [user.id for user in users]
            if user_ids:
                session.query(Login).filter(Login.user_id.in_(user_ids)).delete(synchronize_session=False)
            session.commit()
        """,
    ),
}


@pytest.mark.parametrize(("before", "after"), CHANGED.values(), ids=CHANGED.keys())
def test_fixes_exactly(before: str, after: str) -> None:
    fixed = _fix(before)
    assert fixed == textwrap.dedent(after)
    assert _fix(fixed) == fixed, "not a fixed point"


UNTOUCHED = {
    "two per-item conditions in filter_by": """
        for c in conversations:
            Message.query.filter_by(conversation_id=c.id, kind=c.kind).delete()
        """,
    "a per-item and a constant condition": """
        for c in conversations:
            session.query(Message).filter(Message.conversation_id == c.id, Message.kind == 2).delete()
        """,
    "a second filter before the per-item one": """
        for c in conversations:
            session.query(Message).filter(Message.hidden).filter(Message.conversation_id == c.id).delete()
        """,
    "filter not on the loop item": """
        for c in conversations:
            Message.query.filter_by(user_id=user.id).delete()
        """,
    "filter on a computed value": """
        for c in conversations:
            Message.query.filter_by(conversation_id=str(c.id)).delete()
        """,
    "not an equality": """
        for c in conversations:
            session.query(Message).filter(Message.conversation_id != c.id).delete()
        """,
    "the column side uses the item too": """
        for c in conversations:
            session.query(Message).filter(c.column == c.id).delete()
        """,
    "two entities queried": """
        for c in conversations:
            session.query(Message, Reply).filter(Message.conversation_id == c.id).delete()
        """,
    "the body also logs": """
        for c in conversations:
            Message.query.filter_by(conversation_id=c.id).delete()
            logger.info("deleted %s", c.id)
        """,
    "two deletes per item": """
        for c in conversations:
            Message.query.filter_by(conversation_id=c.id).delete()
            Reply.query.filter_by(conversation_id=c.id).delete()
        """,
    "break": """
        for c in conversations:
            Message.query.filter_by(conversation_id=c.id).delete()
            break
        """,
    "continue": """
        for c in conversations:
            Message.query.filter_by(conversation_id=c.id).delete()
            continue
        """,
    "for ... else": """
        for c in conversations:
            Message.query.filter_by(conversation_id=c.id).delete()
        else:
            done()
        """,
    "async for": """
        async def purge(session, conversations):
            async for c in conversations:
                await session.execute(delete(Message).where(Message.conversation_id == c.id))
        """,
    "one-line body": """
        for c in conversations: Message.query.filter_by(conversation_id=c.id).delete()
        """,
    "tuple target": """
        for c, kind in pairs:
            Message.query.filter_by(conversation_id=c).delete()
        """,
    "the delete's result is used": """
        for c in conversations:
            n = Message.query.filter_by(conversation_id=c.id).delete()
        """,
    "the delete's result is added up": """
        total = 0
        for c in conversations:
            total += session.query(Message).filter(Message.conversation_id == c.id).delete()
        """,
    "commit before the delete": """
        for c in conversations:
            db.session.commit()
            Message.query.filter_by(conversation_id=c.id).delete()
        """,
    "commit on another session": """
        for c in conversations:
            session.query(Message).filter(Message.conversation_id == c.id).delete()
            audit_session.commit()
        """,
    "Model.query with a commit on a plain session": """
        for c in conversations:
            Message.query.filter_by(conversation_id=c.id).delete()
            session.commit()
        """,
    "the loop variable is used after the loop": """
        def purge(conversations):
            for c in conversations:
                Message.query.filter_by(conversation_id=c.id).delete()
            return c
        """,
    "the loop variable is used by a nested function": """
        def purge(conversations):
            for c in conversations:
                Message.query.filter_by(conversation_id=c.id).delete()
            def last():
                return c
            return last
        """,
    "the loop variable is read earlier in an enclosing loop": """
        def purge(batches):
            c = None
            for batch in batches:
                report(c)
                for c in batch:
                    Message.query.filter_by(conversation_id=c.id).delete()
        """,
    "the loop variable is a global another function reads": """
        def purge(conversations):
            global c
            for c in conversations:
                Message.query.filter_by(conversation_id=c.id).delete()

        def last():
            return c
        """,
    "directly in a class body": """
        class Fixture:
            for c in conversations:
                Message.query.filter_by(conversation_id=c.id).delete()
        """,
    "cache.delete": """
        for key in keys:
            cache.delete(key)
        """,
    "os.remove": """
        import os
        for path in paths:
            os.remove(path)
        """,
    "HTTP client delete": """
        for item in items:
            client.delete(f"/items/{item.id}")
        """,
    "session.delete of each object": """
        for message in messages:
            session.delete(message)
        session.commit()
        """,
    "a delete() that is not SQLAlchemy's": """
        from myapp.dml import delete

        for user in users:
            session.execute(delete(Token).where(Token.user_id == user.id))
        """,
    "a positional argument to Query.delete": """
        for user in users:
            session.query(Token).filter(Token.user_id == user.id).delete(False)
        """,
    "already a bulk delete": """
        ids = [c.id for c in conversations]
        if ids:
            Message.query.filter(Message.conversation_id.in_(ids)).delete(synchronize_session=False)
        db.session.commit()
        """,
}


@pytest.mark.parametrize("code", UNTOUCHED.values(), ids=UNTOUCHED.keys())
def test_leaves_alone(code: str) -> None:
    result = run_rules(textwrap.dedent(code), RULES)
    assert result.error is None
    assert result.findings == []
    assert result.fixed is None


@pytest.mark.parametrize(
    "code",
    [
        "for c in cs:\n    Message.query.filter_by(conversation=c).delete()\n",
        "for c in cs:\n    session.query(Message).filter(Message.owner == c.user).delete()\n",
        "from sqlalchemy import delete\nfor c in cs:\n    session.execute(delete(Message).where(Message.email == c.email))\n",
    ],
)
def test_maybe_a_relationship_is_reported_without_a_fix(code: str) -> None:
    result = run_rules(code, RULES)
    assert result.fixed is None
    assert [finding.fixable for finding in result.findings] == [False]
    assert "may be a relationship" in result.findings[0].message


def test_reports_at_the_loop() -> None:
    code = "x = 1\nfor c in cs:\n    Message.query.filter_by(conversation_id=c.id).delete()\n"
    findings = run_rules(code, RULES, fixing=False).findings
    assert [(finding.rule, finding.line) for finding in findings] == [("UL302", 2)]


def test_suppression_comment_on_the_loop_keeps_it() -> None:
    code = "for c in cs:  # unleak: ignore[UL302]\n    Message.query.filter_by(conversation_id=c.id).delete()\n"
    result = run_rules(code, RULES)
    assert result.fixed is None and result.findings == []


def test_could_fire_needs_a_loop_whose_body_calls_delete() -> None:
    assert not PerRowDeleteLoop.could_fire(ast.parse("for k in ks:\n    print(k)\ncache.delete(k)\n"))
    assert not PerRowDeleteLoop.could_fire(ast.parse("for k in ks:\n    x = q.delete()\n"))
    assert not PerRowDeleteLoop.could_fire(ast.parse("for k in ks:\n    q.delete()\nelse:\n    pass\n"))
    assert PerRowDeleteLoop.could_fire(ast.parse("for k in ks:\n    q.filter_by(a=k).delete()\n"))
    aliased = "from sqlalchemy import delete as remove\nfor k in ks:\n    s.execute(remove(M).where(M.a == k))\n"
    assert PerRowDeleteLoop.could_fire(ast.parse(aliased))
    assert not PerRowDeleteLoop.could_fire(ast.parse("for k in ks:\n    cache.delete(k)\n"))  # no filter
    assert not PerRowDeleteLoop.could_fire(ast.parse("for k in ks:\n    log(k)\n    q.filter_by(a=k).delete()\n"))
    three = "for k in ks:\n    q.filter_by(a=k).delete()\n    s.commit()\n    log(k)\n"
    assert not PerRowDeleteLoop.could_fire(ast.parse(three))


@pytest.mark.parametrize(
    ("code", "passes"),
    [
        ("for k in ks:\n    q.filter_by(a=k).delete()\n", True),
        ("from sqlalchemy import delete as remove\nfor k in ks:\n    s.execute(remove(M).where(M.a == k))\n", True),
        ("for k in ks:\n    s.execute(sa_delete (M).where(M.a == k))\n", True),
        ("for k in ks:\n    q.delete()\n", False),  # nothing filters: no per-item condition
        ("for k in ks:\n    q.filter_by(a=k).remove()\n", False),
        ("q.delete()\n", False),
        ("formats = deleted\n", False),
    ],
)
def test_byte_trigger(code: str, passes: bool) -> None:
    assert (triggered_rules(code.encode(), RULES, Settings()) == RULES) is passes


# --- generated variants ---------------------------------------------------------------------------

MODELS = ("Message", "models.Message", "OrderLine")
ITEMS = ("conversation", "c", "row", "item_")
ATTRIBUTES = ("id", "pk", "owner.id")
COLUMNS = ("conversation_id", "parent_id")
STYLES = ("flask filter_by", "flask filter", "query filter_by", "query filter", "execute", "execute aliased")


def _per_row_delete(style: str, model: str, column: str, value: str) -> tuple[str, str]:
    """The loop body's delete statement and its commit, in one ORM style."""
    if style == "flask filter_by":
        return f"{model}.query.filter_by({column}={value}).delete()", "db.session.commit()"
    if style == "flask filter":
        return f"{model}.query.filter({model}.{column} == {value}).delete()", "db.session.commit()"
    if style == "query filter_by":
        return f"session.query({model}).filter_by({column}={value}).delete()", "session.commit()"
    if style == "query filter":
        return f"session.query({model}).filter({value} == {model}.{column}).delete()", "session.commit()"
    function = "sa_delete" if style == "execute aliased" else "delete"
    return f"session.execute({function}({model}).where({model}.{column} == {value}))", "session.commit()"


WRAPPERS = {"function", "method", "try"}


def _wrapped(wrapper: str, lines: list[str]) -> list[str]:
    """`lines` inside a function, a method of a class, or a `try` with a handler."""
    indented = ["    " + line for line in lines]
    if wrapper == "function":
        return ["def purge(session, items, keys):", *indented]
    if wrapper == "method":
        return ["class Jobs:", "    def purge(self, session, items, keys):", *("    " + line for line in indented)]
    return ["try:", *indented, "except Exception:", "    rollback()"]


@st.composite
def programs(draw: st.DrawFn) -> str:
    style = draw(st.sampled_from(STYLES))
    item = draw(st.sampled_from(ITEMS))
    value = draw(st.sampled_from((item, *(f"{item}.{attribute}" for attribute in ATTRIBUTES))))
    delete, commit = _per_row_delete(style, draw(st.sampled_from(MODELS)), draw(st.sampled_from(COLUMNS)), value)
    body = [delete]
    if draw(st.booleans()):
        body.insert(0, "# delete this item's rows")
    if draw(st.booleans()):
        body.append(commit)
    header = f"for {item} in {draw(st.sampled_from(('items', 'user.items', 'load(user)')))}:"
    if draw(st.booleans()):
        header += "  # one at a time"
    loop = [header, *("    " + line for line in body)]
    if draw(st.booleans()):
        loop.insert(0, "# clean up")
    lookalike = ["for key in keys:", "    cache.delete(key)"]
    statements = draw(st.permutations([loop, lookalike]))
    lines = [line for statement in statements for line in statement]
    for wrapper in draw(st.lists(st.sampled_from(sorted(WRAPPERS)), max_size=2)):
        lines = _wrapped(wrapper, lines)
    imports = "from sqlalchemy import delete\nfrom sqlalchemy import delete as sa_delete\n\n"
    return imports + "\n".join(lines) + "\n"


@settings(max_examples=40, deadline=None)
@given(programs())
def test_generated_variants_compile_are_idempotent_and_leave_lookalikes(code: str) -> None:
    fixed = fixed_text(run_rules(code, RULES))
    compile(fixed, "example.py", "exec")
    assert fixed != code
    assert fixed.count(".in_(") == 1
    assert fixed.count("if ") == 1
    assert "for key in keys:\n" in fixed and "    cache.delete(key)\n" in fixed
    assert run_rules(fixed, RULES).fixed is None, "not a fixed point"
    assert ("commit()" in code) == ("commit()" in fixed)
    comments = [line.strip() for line in code.splitlines() if line.strip().startswith("#") or "  #" in line]
    assert all(comment.split("#", 1)[1] in fixed for comment in comments)
    assert structurally_possible(code, RULES, Settings()) == RULES


# --- the fixed code on a real database -------------------------------------------------------------

PURGES = {
    "legacy filter_by": """
        def purge(session, conversations):
            for conversation in conversations:
                session.query(Message).filter_by(conversation_id=conversation.id).delete()
                session.commit()
        """,
    "legacy filter": """
        def purge(session, conversations):
            for conversation in conversations:
                session.query(Message).filter(Message.conversation_id == conversation.id).delete()
        """,
    "2.x execute": """
        from sqlalchemy import delete

        def purge(session, conversations):
            for conversation in conversations:
                session.execute(delete(Message).where(Message.conversation_id == conversation.id))
                session.commit()
        """,
}


def _deletes_and_rows_left(code: str, doomed: list[int]) -> tuple[int, list[int]]:
    """Run `purge` from `code` on an in-memory database of 3 conversations x 2 messages, deleting
    the messages of the conversations `doomed`: the DELETE statements issued, the messages left."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    orm = pytest.importorskip("sqlalchemy.orm")

    class Base(orm.DeclarativeBase):
        pass

    class Message(Base):
        __tablename__ = "message"
        id = sqlalchemy.Column(sqlalchemy.Integer, primary_key=True)
        conversation_id = sqlalchemy.Column(sqlalchemy.Integer, nullable=False)

    class Conversation:
        def __init__(self, id: int) -> None:
            self.id = id

    engine = sqlalchemy.create_engine("sqlite://")
    Base.metadata.create_all(engine)
    statements: list[str] = []
    sqlalchemy.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    namespace = {"Message": Message}
    exec(compile(textwrap.dedent(code), "purge.py", "exec"), namespace)
    with orm.Session(engine) as session:
        session.add_all(Message(id=10 * c + n, conversation_id=c) for c in (1, 2, 3) for n in (1, 2))
        session.commit()
        statements.clear()
        namespace["purge"](session, [Conversation(id) for id in doomed])
        session.commit()
        deletes = sum(statement.lstrip().upper().startswith("DELETE") for statement in statements)
        left = sorted(session.scalars(sqlalchemy.select(Message.id)))
    engine.dispose()
    return deletes, left


@pytest.mark.parametrize("code", PURGES.values(), ids=PURGES.keys())
@pytest.mark.parametrize("doomed", [[], [2], [1, 3], [1, 2, 3]])
def test_fixed_code_deletes_the_same_rows_with_one_statement(code: str, doomed: list[int]) -> None:
    fixed = _fix(code)
    assert ".in_(" in fixed
    deletes_before, left_before = _deletes_and_rows_left(code, doomed)
    deletes_after, left_after = _deletes_and_rows_left(fixed, doomed)
    assert left_after == left_before == [id for id in (11, 12, 21, 22, 31, 32) if id // 10 not in doomed]
    assert (deletes_before, deletes_after) == (len(doomed), 1 if doomed else 0)


# --- per-object deletes: `for row in <query>: session.delete(row)`, and a commit per row ---------

TOKEN = """\
from sqlalchemy import Column, ForeignKey, Integer, String
from sqlalchemy.orm import declarative_base, relationship

Base = declarative_base()


class Token(Base):
    __tablename__ = "tokens"
    id = Column(Integer, primary_key=True)
    user = Column(String)


class Toolkit(Base):
    __tablename__ = "toolkits"
    id = Column(Integer, primary_key=True)
    owner = Column(String)
    tools = relationship("Tool", cascade="all, delete-orphan")


"""


def _findings(code: str, unsafe: bool = True) -> list[tuple[str, str]]:
    result = run_rules(textwrap.dedent(code).lstrip("\n"), RULES, unsafe=unsafe, fixing=False)
    return [(finding.safety, finding.message) for finding in result.findings]


PER_OBJECT = {
    "legacy query, commit after the loop stays": (
        """
        def purge(session, user):
            # old ones
            for token in session.query(Token).filter(Token.user == user).all():  # all of them
                session.delete(token)
            session.commit()
        """,
        """
        def purge(session, user):
            # old ones
            session.query(Token).filter(Token.user == user).delete(synchronize_session="fetch")  # all of them
            session.commit()
        """,
    ),
    "flask query with a commit per row: one commit if rows went": (
        """
        def purge(user):
            for row in Token.query.filter_by(user=user):
                db.session.delete(row)
                db.session.commit()
        """,
        """
        def purge(user):
            if Token.query.filter_by(user=user).delete(synchronize_session="fetch"):
                db.session.commit()
        """,
    ),
    "async scalars(select()) with sa.select": (
        """
        import sqlalchemy as sa

        async def purge(session, user):
            for token in (await session.scalars(sa.select(Token).where(Token.user == user))).all():
                await session.delete(token)
                await session.commit()
        """,
        """
        import sqlalchemy as sa

        async def purge(session, user):
            if (await session.execute(sa.delete(Token).where(Token.user == user))).rowcount:
                await session.commit()
        """,
    ),
    "children with one in_() delete first, then the parents' own loop": (
        """
        def remove(session, toolkits):
            # children first
            for t in toolkits:
                session.query(Tool).filter(Tool.toolkit_id == t.id).delete()
                session.delete(t)
                session.commit()
        """,
        """
        def remove(session, toolkits):
            # children first
            t_ids = [t.id for t in toolkits]
            if t_ids:
                session.query(Tool).filter(Tool.toolkit_id.in_(t_ids)).delete(synchronize_session=False)
            for t in toolkits:
                session.delete(t)
            if toolkits:
                session.commit()
        """,
    ),
    "flask children, then the parents' query as a bulk delete": (
        """
        def remove(user):
            for c in Toolkit.query.filter_by(owner=user.id).all():
                Tool.query.filter_by(toolkit_id=c.id).delete()
                db.session.delete(c)
        """,
        """
        def remove(user):
            c_ids = [c.id for c in Toolkit.query.filter_by(owner=user.id).all()]
            if c_ids:
                Tool.query.filter(Tool.toolkit_id.in_(c_ids)).delete(synchronize_session=False)
            Toolkit.query.filter_by(owner=user.id).delete(synchronize_session="fetch")
        """,
    ),
    "the rows loaded into a name right before, used nowhere else": (
        """
        def expire(session):
            tokens = session.query(Token).filter(Token.user == None).all()
            for token in tokens:
                session.delete(token)
            session.commit()
        """,
        """
        def expire(session):
            tokens = session.query(Token).filter(Token.user == None).all()
            session.query(Token).filter(Token.user == None).delete(synchronize_session="fetch")
            session.commit()
        """,
    ),
    "Django: each row's delete() becomes the queryset's": (
        """
        def clear(request):
            # read ones
            for note in Notification.objects.filter(user=request.user).exclude(unread=True):
                note.delete()
        """,
        """
        def clear(request):
            # read ones
            Notification.objects.filter(user=request.user).exclude(unread=True).delete()
        """,
    ),
    "relationship collection: the commit moves after the loop": (
        """
        def clear(db, user):
            for message in user.messages:
                logger.info("deleting %s", message.id)
                db.delete(message)
                db.commit()  # one by one
            done()
        """,
        """
        def clear(db, user):
            for message in user.messages:
                logger.info("deleting %s", message.id)
                db.delete(message)
            if user.messages:
                db.commit()  # one by one
            done()
        """,
    ),
}


@pytest.mark.parametrize(("before", "after"), PER_OBJECT.values(), ids=PER_OBJECT.keys())
def test_per_object_deletes_fix_exactly(before: str, after: str) -> None:
    code = TOKEN + textwrap.dedent(before).lstrip("\n")
    expected = TOKEN + textwrap.dedent(after).lstrip("\n")
    assert fixed_text(run_rules(code, RULES, unsafe=True)) == expected
    assert fixed_text(run_rules(expected, RULES, unsafe=True)) == expected


def test_select_imported_gets_delete_imported_once() -> None:
    before = "from sqlalchemy import select\n\ndef purge(db, a, b):\n" + "".join(
        f"    for token in db.scalars(select(Token).filter_by(user={user})):\n        db.delete(token)\n" for user in "ab"
    )
    after = "from sqlalchemy import delete, select\n\ndef purge(db, a, b):\n" + "".join(
        f"    db.execute(delete(Token).filter_by(user={user}))\n" for user in "ab"
    )
    assert fixed_text(run_rules(before, RULES, unsafe=True)) == after


def test_a_bulk_delete_is_safe_only_for_a_visible_model_without_relationships_or_listeners() -> None:
    loop = "def purge(db):\n    for row in db.query({model}).all():\n        db.delete(row)\n"
    assert _findings(TOKEN + loop.format(model="Token"))[0][0] == "safe"
    safety, message = _findings(TOKEN + loop.format(model="Toolkit"))[0]
    assert safety == "unsafe" and "Toolkit has relationships (tools)" in message
    safety, message = _findings(loop.format(model="Token"))[0]
    assert safety == "unsafe" and "unleak cannot see Token" in message
    listened = TOKEN + "from sqlalchemy import event\n\n\n@event.listens_for(Token, 'after_delete')\ndef audit(mapper, connection, target):\n    pass\n\n\n"
    safety, message = _findings(listened + loop.format(model="Token"))[0]
    assert safety == "unsafe" and "delete listeners" in message


def test_a_commit_moved_past_other_side_effects_is_unsafe() -> None:
    code = "def purge(db, items):\n    for item in items:\n        notify(item)\n        db.delete(item)\n        db.commit()\n"
    safety, message = _findings(code)[0]
    assert safety == "unsafe" and "changes when those effects become durable" in message
    assert fixed_text(run_rules(code, RULES, unsafe=True)).endswith("        db.delete(item)\n    if items:\n        db.commit()\n")


def test_an_iterable_that_cannot_be_tested_again_is_reported_without_a_fix() -> None:
    code = "def purge(db):\n    for item in load_items():\n        db.delete(item)\n        db.commit()\n"
    assert _findings(code) == [("detect", _findings(code)[0][1])]
    assert "by hand" in _findings(code)[0][1]


def test_delete_naming_something_else_gets_no_bulk_fix() -> None:
    code = "from sqlalchemy import select\nfrom app import delete\n\ndef purge(db):\n    for t in db.scalars(select(Token)):\n        db.delete(t)\n"
    assert [safety for safety, _ in _findings(code)] == ["detect"]


PER_OBJECT_LEFT_ALONE = [
    pytest.param("for message in user.messages:\n    db.delete(message)\n", id="relationship-collection-no-commit"),
    pytest.param("for t in db.query(Token).all():\n    db.delete(t)\nprint(t)\n", id="item-used-after-the-loop"),
    pytest.param("for t in db.query(Token).order_by(Token.id).all():\n    db.delete(t)\n", id="ordered-query"),
    pytest.param("for t in db.query(Token).limit(5):\n    db.delete(t)\n", id="limited-query"),
    pytest.param("for t in other.query(Token).all():\n    db.delete(t)\n", id="another-session"),
    pytest.param("for t in db.query(Token).all():\n    db.delete(t)\n    count += 1\n", id="body-does-more"),
    pytest.param("for k in keys:\n    cache.delete(k)\n    cache.commit()\n", id="not-a-session"),
    pytest.param("for m in ms:\n    db.delete(m)\n    if m.last:\n        break\n    db.commit()\n", id="break"),
    pytest.param("for m in ms:\n    db.delete(m)\n    db.rollback()\n    db.commit()\n", id="rolls-back"),
    pytest.param("for m in ms:\n    db.delete(m)\n    other.delete(m)\n    db.commit()\n", id="two-deletes-of-the-item"),
    pytest.param("for m in ms:\n    db.commit()\n    db.delete(m)\n", id="commit-first"),
    pytest.param("for m in ms:\n    db.delete(m.child)\n    db.commit()\n", id="deletes-something-else"),
    pytest.param("async def f():\n    async for t in db.scalars(select(Token)):\n        await db.delete(t)\n", id="async-for"),
    pytest.param("for t in db.query(Token.id).all():\n    db.delete(t)\n", id="column-query"),
    pytest.param("ts = db.query(Token).all()\nfor t in ts:\n    db.delete(t)\nprint(len(ts))\n", id="loaded-rows-used-after"),
    pytest.param("ts = db.query(Token).all()\nlog(ts)\nfor t in ts:\n    db.delete(t)\n", id="loaded-rows-not-right-before"),
    pytest.param("ns = N.objects.filter(u=1)\nlog()\nfor n in ns:\n    n.delete()\nrender(ns)\n", id="django-queryset-not-right-before"),
    pytest.param("for m in ms:\n    if m.old:\n        db.delete(m)\n", id="picked-in-python-over-a-list"),
    pytest.param("rows = db.query(Row).all()\nfor row in rows:\n    if row.stale:\n        cache.delete(row)\n", id="picked-in-python-not-a-session"),
    pytest.param("rows = db.query(Row).all()\nfor row in rows:\n    if stale:\n        db.delete(row)\n", id="picked-by-something-else"),
    pytest.param("rows = db.query(Row).all()\nfor row in rows:\n    if row.stale:\n        db.delete(row)\n    else:\n        keep(row)\n", id="picked-with-else"),
    pytest.param("for n in N.objects.filter(u=1)[:10]:\n    n.delete()\n", id="django-sliced"),
    pytest.param("for n in N.objects.filter(u=1).order_by('id'):\n    n.delete()\n", id="django-ordered"),
    pytest.param("for n in N.objects.filter(u=1):\n    n.delete()\n    log(n)\n", id="django-body-does-more"),
    pytest.param("for n in N.objects.filter(u=1):\n    n.delete(keep_parents=True)\n", id="django-delete-arguments"),
    pytest.param("for m in bot.messages(chat):\n    m.delete()\n", id="telegram-messages"),
    pytest.param("for t in load():\n    db.query(Tool).filter(Tool.toolkit_id == t.id).delete()\n    db.delete(t)\n", id="children-of-an-iterable-read-once"),
    pytest.param("for t in ts:\n    db.query(Tool).filter(Tool.toolkit_id == t.id, Tool.kind == t.kind).delete()\n    db.delete(t)\n", id="children-by-two-per-item-conditions"),
    pytest.param("for t in ts:\n    other.query(Tool).filter(Tool.toolkit_id == t.id).delete()\n    db.delete(t)\n", id="children-on-another-session"),
    pytest.param("for t in ts:\n    db.delete(t)\n    db.query(Tool).filter(Tool.toolkit_id == t.id).delete()\n", id="parent-first"),
]


@pytest.mark.parametrize("code", PER_OBJECT_LEFT_ALONE)
def test_per_object_deletes_left_alone(code: str) -> None:
    result = run_rules(code, RULES, unsafe=True)
    assert result.findings == [] and fixed_text(result) == code


@st.composite
def per_object_loops(draw: st.DrawFn) -> str:
    asynchronous = draw(st.booleans())
    session = draw(st.sampled_from(("db", "session", "db.session")))
    awaiting = "await " if asynchronous else ""
    iterables = [f"({awaiting}{session}.scalars(select(Token).where(Token.user == user))).all()", "user.tokens", "tokens"]
    if not asynchronous:
        iterables += [f"{session}.query(Token).filter_by(user=user)", f"{session}.query(Token).filter(Token.user == user).all()"]
    body = [f"{awaiting}{session}.delete(token)"]
    if draw(st.booleans()):
        body.insert(0, f"{session}.query(Tool).filter(Tool.token_id == token.id).delete()" if not asynchronous else "log.info('bye')")
    if draw(st.booleans()):
        body.append(f"{awaiting}{session}.commit()")
    loop = [f"for token in {draw(st.sampled_from(iterables))}:", *(f"    {line}" for line in body)]
    header = "async def purge(db, session, user, tokens):\n" if asynchronous else "def purge(db, session, user, tokens):\n"
    return "from sqlalchemy import select\n\n\n" + header + "".join(f"    {line}\n" for line in loop)


@settings(max_examples=50, deadline=None)
@given(per_object_loops())
def test_per_object_variants_compile_and_are_idempotent(code: str) -> None:
    result = fixed_text(run_rules(code, RULES, unsafe=True))
    compile(ast.parse(result), "example.py", "exec")
    assert fixed_text(run_rules(result, RULES, unsafe=True)) == result
    imports = [line for line in result.splitlines() if line.startswith(("from sqlalchemy import", "import"))]
    assert sum(" delete" in line for line in imports) <= 1
    assert result.count(".commit()") == code.count(".commit()")


def test_django_queryset_read_after_the_loop_gets_an_unsafe_bulk_delete() -> None:
    """The loop evaluated the queryset (its rows stay cached for the render); the bulk delete
    does not, so the render reads it again and finds no rows: unsafe, and the message says so."""
    code = "def view(request):\n    ns = N.objects.filter(user=request.user)\n    for n in ns:\n        n.delete()\n    return render(ns)\n"
    result = run_rules(code, RULES, fixing=False)
    assert [finding.safety for finding in result.findings] == ["unsafe"]
    assert "`ns` is read elsewhere" in result.findings[0].message
    expected = "def view(request):\n    ns = N.objects.filter(user=request.user)\n    ns.delete()\n    return render(ns)\n"
    assert fixed_text(run_rules(code, RULES, unsafe=True)) == expected


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("rows = Picture.query.all()\n\nfor row in rows:\n    if row.id == wanted: db.session.delete(row)\ndb.session.commit()\n", id="one-line-if"),
        pytest.param("people = Person.query.all()\nday = today()\nfor p in people:\n    if p.name == n and p.day == day:\n        db.session.delete(p)\n", id="two-per-item-conditions"),
        pytest.param("async def f(session):\n    for t in await session.scalars(select(Token)):\n        if t.expired:\n            await session.delete(t)\n", id="async-scalars"),
    ],
)
def test_rows_picked_in_python_are_reported_without_a_fix(code: str) -> None:
    result = run_rules(code, RULES, unsafe=True)
    assert [finding.rule for finding in result.findings] == ["UL302"]
    assert "picked by a Python test" in result.findings[0].message
    assert fixed_text(result) == code
    assert PerRowDeleteLoop.could_fire(ast.parse(code))


@pytest.mark.parametrize(
    ("code", "possible"),
    [
        ("for c in challenges:\n    c.delete()\n", False),  # not a Django queryset: a model's own delete()
        ("for c in Challenge.objects.filter(a=1):\n    c.delete()\n", True),
        ("cs = Challenge.objects.all()\nfor c in cs:\n    c.delete()\n", True),
        ("cs = load()\nfor c in cs:\n    c.delete()\n", False),
        ("for a in A.query.filter_by(r=1).all():\n    a.delete()\n", False),
        ("rows = db.session.scalars(stmt).unique().all()\nfor p in rows:\n    db.session.delete(p)\n", False),  # no select(M) to see
        ("rows = db.session.scalars(select(P)).all()\nfor p in rows:\n    db.session.delete(p)\n", True),
        ("for p in db.query(P).filter(P.a == 1):\n    db.delete(p)\n", True),
        ("for p in await db.scalars(select(P)):\n    await db.delete(p)\n", True),
        ("for p in items:\n    db.delete(p)\n    db.commit()\n", True),  # the commit moves out
        ("for p in items:\n    cache.delete(p)\n    cache.commit()\n", False),  # not named like a session
        ("for p in db.query(P):\n    if p.old:\n        db.delete(p)\n", True),
        ("for p in db.query(P):\n    if x:\n        db.delete(p)\n", False),  # the test does not pick by row
    ],
)
def test_could_fire_asks_what_the_per_object_visitors_ask(code: str, possible: bool) -> None:
    """A Django queryset for `obj.delete()`, a session named so for `session.delete(obj)`, and a
    query whose rows `row_query` could read (or a commit to move out)."""
    assert PerRowDeleteLoop.could_fire(ast.parse(code)) is possible
