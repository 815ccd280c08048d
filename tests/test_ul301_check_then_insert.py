"""UL301 check-then-insert: cases beyond the embedded examples, and generated variants."""

from __future__ import annotations

import ast
import textwrap
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import fixed_text, run_rules
from unleak.engine.prefilter import triggered_rules
from unleak.settings import Settings
from unleak.transforms.ul301_check_then_insert import CheckThenInsert

RULES = (CheckThenInsert,)

MODELS = """\
class User(Base):
    __tablename__ = "users"
    id = Column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(unique=True)
    name = Column(String)
    tenant = Column(String)
    __table_args__ = (UniqueConstraint("tenant", "name"),)


"""


def fixed(code: str, *, unsafe: bool = False) -> str:
    return fixed_text(run_rules(textwrap.dedent(code).lstrip("\n"), RULES, unsafe=unsafe))


def safeties(code: str) -> list[str]:
    return [finding.safety for finding in run_rules(textwrap.dedent(code).lstrip("\n"), RULES, fixing=False).findings]


# --- must change: exact output -----------------------------------------------------------------

FIXES = [
    pytest.param(
        """
        import sqlalchemy as sa

        async def seed(session):
            if (await session.execute(sa.select(User).where(User.email == "a"))).scalar_one_or_none() is None:
                session.add(User(email="a"))  # the admin
                await session.commit()
            else: log("exists")
        """,
        """
        import sqlalchemy as sa

        async def seed(session):
            try:
                session.add(User(email="a"))  # the admin
                await session.commit()
            except sa.exc.IntegrityError:
                await session.rollback()
                if (await session.execute(sa.select(User).where(User.email == "a"))).scalar_one_or_none() is None:
                    raise
                log("exists")
        """,
        id="async-2.x-select-uses-sa.exc-and-one-line-else",
    ),
    pytest.param(
        """
        import sqlalchemy.exc

        def seed(db):
            if not db.query(db.query(User).filter_by(name="x").exists()).scalar():
                db.add(User(name="x"))
                db.commit()
        """,
        """
        import sqlalchemy.exc

        def seed(db):
            try:
                db.add(User(name="x"))
                db.commit()
            except sqlalchemy.exc.IntegrityError:
                db.rollback()
                if not db.query(db.query(User).filter_by(name="x").exists()).scalar():
                    raise
        """,
        id="exists-scalar-with-import-sqlalchemy.exc",
    ),
    pytest.param(
        """
        from sqlalchemy.exc import IntegrityError as Duplicate

        class Repo:
            def seed(self):
                try:
                    if not self.session.scalars(select(User).where(User.id == 1)).first():
                        self.session.add_all([User(id=1)])
                        self.session.flush()
                finally:
                    self.done()
        """,
        """
        from sqlalchemy.exc import IntegrityError as Duplicate

        class Repo:
            def seed(self):
                try:
                    try:
                        with self.session.begin_nested():
                            self.session.add_all([User(id=1)])
                            self.session.flush()
                    except Duplicate:
                        if not self.session.scalars(select(User).where(User.id == 1)).first():
                            raise
                finally:
                    self.done()
        """,
        id="no-commit-savepoint-in-method-with-aliased-import",
    ),
    pytest.param(
        """
        def seed(db):
            # seed once
            if not db.query(User).filter(User.id == 1).first():  # look first
                # make it
                db.add(User(id=1))
                db.commit()
                log("seeded")
            # nothing to do
            else:  # exists
                # say so
                log("exists")

            more()
        """,
        """
        from sqlalchemy.exc import IntegrityError

        def seed(db):
            # seed once
            try:  # look first
                # make it
                db.add(User(id=1))
                db.commit()
                log("seeded")
            # nothing to do
            except IntegrityError:  # exists
                db.rollback()
                if not db.query(User).filter(User.id == 1).first():
                    raise
                # say so
                log("exists")

            more()
        """,
        id="comments-kept",
    ),
    pytest.param(
        """
        def seed(db):
            if not User.query.get(1):
                db.session.add(User(id=1))
                db.session.commit()
        """,
        """
        from sqlalchemy.exc import IntegrityError

        def seed(db):
            try:
                db.session.add(User(id=1))
                db.session.commit()
            except IntegrityError:
                db.session.rollback()
                if not User.query.get(1):
                    raise
        """,
        id="flask-sqlalchemy-query-get",
    ),
    pytest.param(
        """
        async def ensure(session: AsyncSession, key: str) -> None:
            if await session.get(Setting, key) is None:
                session.add(Setting(key=key))
                await session.flush()
        """,
        """
        from sqlalchemy.exc import IntegrityError

        async def ensure(session: AsyncSession, key: str) -> None:
            try:
                async with session.begin_nested():
                    session.add(Setting(key=key))
                    await session.flush()
            except IntegrityError:
                if await session.get(Setting, key) is None:
                    raise
        """,
        id="async-savepoint",
    ),
]


@pytest.mark.parametrize(("before", "after"), FIXES)
def test_fixes_exactly(before: str, after: str) -> None:
    assert fixed(before, unsafe=True) == textwrap.dedent(after).lstrip("\n")


# --- fix safety: safe only where the database visibly enforces the check ------------------------


@pytest.mark.parametrize(
    "check",
    [
        "db.get(User, 1) is None",
        "db.query(User).get(1) is None",  # SQLAlchemy 1.x
        "not db.query(User).filter(User.id == 1).first()",
        "db.query(User).filter_by(email=e).one_or_none() is None",
        "db.query(User).filter(User.tenant == t, User.name == n).count() == 0",
        "not db.scalars(select(User).where(User.email == e, User.name == n)).first()",
        "not db.query(exists().where(User.email == e)).scalar()",
        "not db.scalar(select(exists().where(User.email == e)))",
    ],
)
def test_safe_when_the_check_is_on_a_visible_unique_key(check: str) -> None:
    code = MODELS + f"def seed(db, e, t, n):\n    if {check}:\n        db.add(User(id=1, email=e))\n        db.commit()\n"
    assert safeties(code) == ["safe"]


@pytest.mark.parametrize(
    ("check", "insert"),
    [
        ("not db.query(User).filter(User.name == n).first()", "User(name=n)"),  # name alone is not unique
        ("not db.query(User).filter(User.tenant == t).first()", "User(tenant=t)"),  # half a constraint
        ("not db.query(Account).filter(Account.id == 1).first()", "Account(id=1)"),  # model not visible
        ("db.get(User, 1) is None", "AuditLog(user=1)"),  # inserts something else
        ("not db.query(User).filter(User.id > 1).first()", "User(id=2)"),  # not an equality
    ],
)
def test_unsafe_when_nothing_visible_enforces_the_check(check: str, insert: str) -> None:
    code = MODELS + f"def seed(db, t, n):\n    if {check}:\n        db.add({insert})\n        db.commit()\n"
    assert safeties(code) == ["unsafe"]
    assert fixed(code) == code
    assert "except IntegrityError:" in fixed(code, unsafe=True)


# --- must not change --------------------------------------------------------------------------

LEFT_ALONE = [
    pytest.param("if not db.query(User).first():\n    log('empty')\n", id="body-does-not-insert"),
    pytest.param("if not db.query(User).first() and flag:\n    db.add(User())\n    db.commit()\n", id="condition-tests-more"),
    pytest.param("if db.query(User).first():\n    db.add(User())\n    db.commit()\n", id="inverted-check"),
    pytest.param("if db.query(User).count() > 0:\n    db.add(User())\n    db.commit()\n", id="count-not-zero"),
    pytest.param("if db.query(User).first() is None and x:\n    db.add(User())\n", id="and-none"),
    pytest.param("if not seen.get(key):\n    seen.add(key)\n", id="dict-get-set-add"),
    pytest.param("if config.get('x', None) is None:\n    db.add(Setting())\n    db.commit()\n", id="dict-get-two-args-other-receiver"),
    pytest.param("if not Item.objects.filter(a=1).first():\n    items.add(Item())\n", id="django-look-alike"),
    pytest.param("if not db.query(User).first():\n    db.add(User())\n    db.rollback()\n", id="body-rolls-back"),
    pytest.param("if not db.query(User).first():\n    db.add(User())\n    if x:\n        db.commit()\n", id="nested-commit"),
    pytest.param("if not db.query(User).first():\n    db.add(User())\n    save(db)\n", id="no-commit-session-handed-on"),
    pytest.param("if not db.query(User).first():\n    db.add(User())\n    other.commit()\n", id="no-commit-someone-commits"),
    pytest.param("if other.get(User, 1) is None:\n    db.add(User(id=1))\n    db.commit()\n", id="lookup-on-another-session"),
    pytest.param("if not db.query(User).first():\n    db.add(User())\n    db.commit()\nelif x:\n    pass\n", id="elif"),
    pytest.param("user = db.query(User).first()\nif user is None:\n    db.add(User())\n    db.commit()\n", id="two-statement-form"),
    pytest.param("if not db.query(User).first(): db.add(User()); db.commit()\n", id="one-line-body"),
    pytest.param("if (u := db.query(User).first()) is None:\n    db.add(User())\n    db.commit()\n", id="walrus"),
    # the two-statement form
    pytest.param("if db.query(User).first() and x:\n    log()\nelse:\n    db.add(User())\n    db.commit()\n", id="inverted-tests-more"),
    pytest.param("if cache.first():\n    log()\nelse:\n    db.add(User())\n    db.commit()\n", id="inverted-not-a-query"),
    pytest.param("result = db.execute(q)\nif not result.scalar() and x:\n    db.add(User())\n    db.commit()\n", id="result-tested-with-more"),
    pytest.param("result = db.execute(select(User))\nrows = result.all()\nif not rows:\n    db.add(User())\n", id="result-used-first"),
    pytest.param("result = cache.lookup(k)\nif not result.first():\n    db.add(User())\n    db.commit()\n", id="result-of-no-query"),
    pytest.param("tag = db.query(Tag).first()\nlog(tag)\nif tag is None:\n    tag = Tag()\n    db.add(tag)\n    db.commit()\n", id="result-used-first"),
    pytest.param("tag = db.query(Tag).first()\nif tag is None or tag.stale:\n    tag = Tag()\n    db.add(tag)\n    db.commit()\n", id="tests-more-than-existence"),
    pytest.param("tag = db.query(Tag).first()\nif tag is None:\n    db.add(Tag())\n    db.commit()\n", id="body-leaves-the-name-none"),
    pytest.param("tag = db.query(Tag).filter_by(name=n).first()\nif tag is None:\n    n = n.lower()\n    tag = Tag(name=n)\n    db.add(tag)\n    db.commit()\n", id="body-changes-the-lookup"),
    pytest.param("tag = other.query(Tag).first()\nif tag is None:\n    tag = Tag()\n    db.add(tag)\n    db.commit()\n", id="lookup-on-another-session"),
    pytest.param("tag = cache.get(key)\nif tag is None:\n    tag = Tag()\n    db.add(tag)\n    db.commit()\n", id="dict-get"),
    pytest.param("tag = db.query(Tag).first()\nif other is None:\n    other = Tag()\n    db.add(other)\n    db.commit()\n", id="tests-another-name"),
    pytest.param("tag = db.query(Tag).first()\nif tag:\n    tag = Tag()\n    db.add(tag)\n    db.commit()\n", id="inverted-without-else"),
    pytest.param("n = db.query(Tag).count()\nif not n:\n    n = Tag()\n    db.add(n)\n    db.commit()\n", id="count-is-not-a-row"),
    pytest.param("tag = db.query(Tag).first()\nif tag is None:\n    tag = Tag()\n    db.add(tag)\n    db.rollback()\n", id="body-rolls-back"),
]


@pytest.mark.parametrize("code", LEFT_ALONE)
def test_leaves_alone(code: str) -> None:
    result = run_rules(code, RULES, unsafe=True)
    assert result.findings == [] and fixed_text(result) == code


def test_integrity_error_naming_something_else_is_reported_without_a_fix() -> None:
    code = "from psycopg2 import IntegrityError\n\ndef f(db):\n    if db.get(User, 1) is None:\n        db.add(User(id=1))\n        db.commit()\n"
    result = run_rules(code, RULES, unsafe=True)
    assert [finding.safety for finding in result.findings] == ["detect"]
    assert "names something else" in result.findings[0].message
    assert fixed_text(result) == code


def test_function_local_import_is_used() -> None:
    code = (
        "def f(db):\n    from sqlalchemy.exc import IntegrityError as Taken\n\n"
        "    if db.get(User, 1) is None:\n        db.add(User(id=1))\n        db.commit()\n"
    )
    assert "    except Taken:\n" in fixed(code, unsafe=True)
    assert fixed(code, unsafe=True).count("import") == 1


def test_two_checks_in_one_module_import_integrity_error_once() -> None:
    one = "def a{n}(db):\n    if db.get(User, {n}) is None:\n        db.add(User(id={n}))\n        db.commit()\n\n\n"
    code = one.format(n=1) + one.format(n=2)
    result = fixed(code, unsafe=True)
    assert result.count("from sqlalchemy.exc import IntegrityError\n") == 1
    assert result.count("except IntegrityError:") == 2


# --- generated variants -------------------------------------------------------------------------

IMPORTS = {
    "": "IntegrityError",
    "from sqlalchemy.exc import IntegrityError\n": "IntegrityError",
    "from sqlalchemy.exc import IntegrityError as IE\n": "IE",
    "from sqlalchemy import exc\n": "exc.IntegrityError",
    "import sqlalchemy as sa\n": "sa.exc.IntegrityError",
}


def checks(session: str, model: str) -> list[str]:
    return [
        f"not {session}.query({model}).filter({model}.id == key).first()",
        f"{session}.query({model}).filter_by(id=key).one_or_none() is None",
        f"{session}.query({model}).filter_by(id=key).count() == 0",
        f"{session}.get({model}, key) is None",
        f"not {session}.scalars(select({model}).where({model}.id == key)).first()",
        f"not {model}.query.filter_by(id=key).first()",
    ]


@st.composite
def programs(draw: st.DrawFn) -> tuple[str, str, bool, str]:
    session = draw(st.sampled_from(("db", "session", "self.session", "db.session")))
    model = draw(st.sampled_from(("User", "Tag", "models.Account")))
    imports = draw(st.sampled_from(sorted(IMPORTS)))
    check = draw(st.sampled_from(checks(session, model)))
    commits = draw(st.booleans())
    body = [f"{session}.add({model}(id=key))"]
    if draw(st.booleans()):
        body.insert(0, "# insert it")
    body += [f"{session}.commit()"] if commits else []
    body += draw(st.sampled_from(([], ["log('seeded')"])))
    orelse = draw(st.sampled_from(([], ["else:", "    log('there')"], ["else:  # there", "    # already", "    pass"])))
    statement = [f"if {check}:", *("    " + line for line in body), *orelse]
    for level in range(draw(st.integers(0, 2))):
        statement = [f"if flag{level}:", *("    " + line for line in statement)]
    around = draw(st.sampled_from(([], ["before()"])))
    code = (imports + "\n\n" if imports else "") + "def work(self, db, session, key, flag0, flag1):\n" + "".join(
        f"    {line}\n" for line in (*around, *statement, *around)
    )
    return code, IMPORTS[imports], commits, check


@settings(max_examples=50, deadline=None)
@given(programs())
def test_generated_variants_compile_are_idempotent_and_import_once(program: tuple[str, str, bool, str]) -> None:
    code, integrity_error, commits, check = program
    result = fixed(code, unsafe=True)
    assert result != code
    tree = ast.parse(result)
    handlers = [node for node in ast.walk(tree) if isinstance(node, ast.ExceptHandler)]
    rechecks = [node for node in ast.walk(tree) if isinstance(node, ast.If) and "flag" not in ast.unparse(node.test)]
    assert [ast.unparse(node.test) for node in rechecks] == [check]  # the check runs again, in the handler
    assert all(isinstance(node.body[0], ast.Raise) for node in rechecks)
    assert any(node in handler.body for handler in handlers for node in rechecks)
    assert [ast.unparse(handler.type) for handler in handlers if handler.type] == [integrity_error]
    assert result.count("import IntegrityError") <= 1
    assert (".rollback()" in result) == commits and ("begin_nested" in result) != commits
    assert fixed(result, unsafe=True) == result


@settings(max_examples=30, deadline=None)
@given(programs())
def test_without_the_pattern_nothing_changes(program: tuple[str, str, bool, str]) -> None:
    code = program[0].replace(".add(", ".merge(")  # no insert of its own: not check-then-insert
    assert fixed(code, unsafe=True) == code


def test_a_unique_column_of_another_model_does_not_make_the_fix_safe() -> None:
    code = MODELS + (
        "def seed(db, e):\n    if not db.query(Account).join(User).filter(User.email == e).first():\n"
        "        db.add(Account(owner=e))\n        db.commit()\n"
    )
    assert safeties(code) == ["unsafe"]


@pytest.mark.parametrize(
    ("code", "possible"),
    [
        ("if not db.query(User).first():\n    db.add(User())\n", True),
        ("if not User.query.first():\n    db.session.add(User())\n", True),
        ("if db.get(User, 1) is None:\n    db.add(User())\n", True),
        ("if not options.get('managed', True):\n    keys.add(key)\n", False),  # a dict and a set
        ("if not db.query(User).first():\n    log(db.add(User()))\n", False),  # no add statement
        ("if not db.query(User).first() and x:\n    db.add(User())\n", False),
        ("u = db.query(User).first()\nif u is None:\n    u = User()\n    db.add(u)\n", True),
        ("if (u := db.query(User).first()) is None:\n    u = User()\n    db.add(u)\n", True),
        ("if db.query(User).first():\n    pass\nelse:\n    db.add(User())\n", True),
        ("u = db.query(User).first()\nif u:\n    u.n = 1\nelse:\n    db.add(User())\n", True),
        ("u = db.query(User).first()\nif v is None:\n    db.add(User())\n", False),  # tests another name
        ("u = db.query(User).count()\nif not u:\n    db.add(User())\n", False),  # not a row lookup
        ("u = db.query(User).first()\nlog(u)\nif u is None:\n    db.add(User())\n", False),  # not right before
        ("if not Tag.objects.filter(name=n).exists():\n    Tag.objects.create(name=n)\n", True),
        ("if not Tag.objects.filter(name=n).exists():\n    tags.create(name=n)\n", False),  # not a manager
    ],
)
def test_could_fire_needs_a_lookup_test_and_an_add_statement(code: str, possible: bool) -> None:
    assert CheckThenInsert.could_fire(ast.parse(code)) is possible


@pytest.mark.parametrize(
    ("code", "possible"),
    [
        # the two-statement form: the lookup must name its model, the creating branch must add
        ("u = db.execute(stmt).scalar_one_or_none()\nif u:\n    u.n = 1\nelse:\n    db.add(User())\n", False),
        ("u = db.execute(select(User)).scalar_one_or_none()\nif u:\n    u.n = 1\nelse:\n    db.add(User())\n", True),
        ("u = db.scalars(q).first()\nif not u:\n    db.add(User())\n", False),
        ("u = db.scalars(q.where(User.a == 1)).first()\nif not u:\n    db.add(User())\n", True),
        ("u = db.get(User, 1)\nif u is None:\n    db.add(User())\n", True),
        ("u = db.query(User).first()\nif u is None:\n    log(u)\nelse:\n    db.add(u)\n", False),  # adds where the row is
        ("r = db.execute(q)\nif not r.scalar():\n    db.add(User())\n", False),
        ("r = db.execute(select(User))\nif not r.scalar():\n    db.add(User())\n", True),
        ("u = crud.get_user(db, e)\nif not u:\n    u = crud.create_user(db, e)\n    db.add(x)\n", True),
        ("u = crud.get_user(db, e)\nif not u:\n    u = crud.create_user(other, e)\n    db.add(x)\n", False),  # another session
        ("u = crud.get_user(e)\nif not u:\n    u = crud.create_user(e)\n    db.add(x)\n", False),  # no session handed
        # the guard: only an existence test, a lookup naming its model, then an add and its model built
        ("def f(db, e):\n    u = get(db_session=db, e=e)\n    if not u:\n        return\n    db.add(u)\n", False),
        ("def f(db, e):\n    u = lookup(e)\n    if u:\n        return\n    db.add(User(e))\n", False),
        ("def f(db, e):\n    u = db.query(User).filter(User.e == e).first()\n    if u and e:\n        return\n    db.add(User(e))\n", False),
        ("def f(db, e):\n    u = db.query(User).filter(User.e == e).first()\n    if u:\n        return\n    db.add(Audit(e))\n", False),
        ("def f(db, e):\n    u = db.query(User).filter(User.e == e).first()\n    if u:\n        return\n    db.add(User(e))\n", True),
        ("def f(db, e):\n    u = db.query(User).first()\n    print(u)\n    if u:\n        return\n    db.add(User(e))\n", False),  # read in between
        ("def f(db, e):\n    u = db.query(User).first()\n    if list(u):\n        raise E\n    elif x:\n        pass\n    else:\n        db.add(User(e))\n", True),
        ("def f(db, e):\n    u = await db.scalars(select(User))\n    if u is not None:\n        return\n    await db.add(User(e))\n", True),
    ],
)
def test_could_fire_asks_what_the_visitor_needs_of_the_lookup_and_the_insert(code: str, possible: bool) -> None:
    """The lookup names its model (`query(M)`, `select(M)`, `M.query`, `filter(M.a == x)`,
    `get(M, k)`), and the statement that creates is where the visitor looks for it."""
    assert CheckThenInsert.could_fire(ast.parse(code)) is possible


# --- the two-statement form: `obj = <lookup>` then `if obj is None:` -----------------------------

GET_OR_CREATE = [
    pytest.param(
        """
        def upsert(key, value):
            setting = Setting.query.filter_by(key=key).one_or_none()
            if setting:  # found
                setting.value = value
            else:
                # new one
                setting = Setting(key=key, value=value)
                db.session.add(setting)
            db.session.commit()
        """,
        """
        from sqlalchemy.exc import IntegrityError

        def upsert(key, value):
            setting = Setting.query.filter_by(key=key).one_or_none()
            if setting:  # found
                setting.value = value
            else:
                try:
                    with db.session.begin_nested():
                        # new one
                        setting = Setting(key=key, value=value)
                        db.session.add(setting)
                except IntegrityError:
                    setting = Setting.query.filter_by(key=key).one_or_none()
                    if not setting:
                        raise
                    setting.value = value
            db.session.commit()
        """,
        id="inverted-flask-update-runs-on-the-concurrent-row",
    ),
    pytest.param(
        """
        async def ensure(session, key):
            obj: Setting | None = await session.get(Setting, key)
            if not obj:
                obj = Setting(key=key)
                session.add(obj)
                await session.commit()
            else: obj.hits += 1
            return obj
        """,
        """
        from sqlalchemy.exc import IntegrityError

        async def ensure(session, key):
            obj: Setting | None = await session.get(Setting, key)
            if not obj:
                try:
                    obj = Setting(key=key)
                    session.add(obj)
                    await session.commit()
                except IntegrityError:
                    await session.rollback()
                    obj = await session.get(Setting, key)
                    if not obj:
                        raise
                    obj.hits += 1
            else: obj.hits += 1
            return obj
        """,
        id="async-get-annotated-one-line-else",
    ),
    pytest.param(
        """
        import sqlalchemy as sa

        async def member(session, team_id, user_id):
            row = (await session.execute(sa.select(Member).where(Member.team_id == team_id, Member.user_id == user_id))).scalar_one_or_none()
            if row is not None:
                return row
            else:
                row = Member(team_id=team_id, user_id=user_id)
                session.add(row)
                await session.flush()
            return row
        """,
        """
        import sqlalchemy as sa

        async def member(session, team_id, user_id):
            row = (await session.execute(sa.select(Member).where(Member.team_id == team_id, Member.user_id == user_id))).scalar_one_or_none()
            if row is not None:
                return row
            else:
                try:
                    async with session.begin_nested():
                        row = Member(team_id=team_id, user_id=user_id)
                        session.add(row)
                        await session.flush()
                except sa.exc.IntegrityError:
                    row = (await session.execute(sa.select(Member).where(Member.team_id == team_id, Member.user_id == user_id))).scalar_one_or_none()
                    if row is None:
                        raise
                    return row
            return row
        """,
        id="async-execute-is-not-none",
    ),
]


GET_OR_CREATE += [
    pytest.param(
        """
        async def ensure(session, email):
            result = await session.execute(select(User).where(User.email == email))
            if not result.scalar_one_or_none():
                session.add(User(email=email))
                await session.commit()
        """,
        """
        from sqlalchemy.exc import IntegrityError

        async def ensure(session, email):
            result = await session.execute(select(User).where(User.email == email))
            if not result.scalar_one_or_none():
                try:
                    session.add(User(email=email))
                    await session.commit()
                except IntegrityError:
                    await session.rollback()
                    result = await session.execute(select(User).where(User.email == email))
                    if not result.scalar_one_or_none():
                        raise
        """,
        id="async-result-object",
    ),
    pytest.param(
        """
        def link(db, sources, category):
            for source in sources:
                found = db.scalars(select(Link).filter_by(source=source.id, category=category)).first()
                if found is None:
                    found = Link(source=source.id, category=category)
                    db.add(found)
                    db.commit()
                # per item
                if not db.query(Seen).filter(Seen.source == source.id).first():
                    db.add(Seen(source=source.id))
                    db.commit()
        """,
        """
        from sqlalchemy.exc import IntegrityError

        def link(db, sources, category):
            for source in sources:
                found = db.scalars(select(Link).filter_by(source=source.id, category=category)).first()
                if found is None:
                    try:
                        found = Link(source=source.id, category=category)
                        db.add(found)
                        db.commit()
                    except IntegrityError:
                        db.rollback()
                        found = db.scalars(select(Link).filter_by(source=source.id, category=category)).first()
                        if found is None:
                            raise
                # per item
                try:
                    db.add(Seen(source=source.id))
                    db.commit()
                except IntegrityError:
                    db.rollback()
                    if not db.query(Seen).filter(Seen.source == source.id).first():
                        raise
        """,
        id="loop-each-iteration-commit-stays-per-item",
    ),
]


GET_OR_CREATE.append(
    pytest.param(
        """
        def add_user(form):
            if not form.ok:
                flash("bad")
            elif User.query.filter_by(email=form.email).first():
                flash("taken")  # already
            else:
                db.session.add(User(email=form.email))
                db.session.commit()
            return redirect("/")
        """,
        """
        from sqlalchemy.exc import IntegrityError

        def add_user(form):
            if not form.ok:
                flash("bad")
            elif User.query.filter_by(email=form.email).first():
                flash("taken")  # already
            else:
                try:
                    db.session.add(User(email=form.email))
                    db.session.commit()
                except IntegrityError:
                    db.session.rollback()
                    if not User.query.filter_by(email=form.email).first():
                        raise
                    flash("taken")  # already
            return redirect("/")
        """,
        id="inline-inverted-elif-found-branch-runs-after-the-recheck",
    )
)


GET_OR_CREATE.append(
    pytest.param(
        """
        def create_tag(db, name):
            existing = db.query(Tag).filter(Tag.name == name).first()
            if existing is None:
                tag = Tag(name=name)
                db.add(tag)
                db.commit()
                return tag
            else:
                return existing
        """,
        """
        from sqlalchemy.exc import IntegrityError

        def create_tag(db, name):
            existing = db.query(Tag).filter(Tag.name == name).first()
            if existing is None:
                try:
                    tag = Tag(name=name)
                    db.add(tag)
                    db.commit()
                    return tag
                except IntegrityError:
                    db.rollback()
                    existing = db.query(Tag).filter(Tag.name == name).first()
                    if existing is None:
                        raise
                    return existing
            else:
                return existing
        """,
        id="create-branch-returns-another-name",
    )
)
GET_OR_CREATE.append(
    pytest.param(
        """
        async def get_or_create_tag(session, name):
            if not (tag := await session.scalar(select(Tag).where(Tag.name == name))):
                tag = Tag(name=name)
                session.add(tag)
            return tag
        """,
        """
        from sqlalchemy.exc import IntegrityError

        async def get_or_create_tag(session, name):
            if not (tag := await session.scalar(select(Tag).where(Tag.name == name))):
                try:
                    async with session.begin_nested():
                        tag = Tag(name=name)
                        session.add(tag)
                except IntegrityError:
                    tag = await session.scalar(select(Tag).where(Tag.name == name))
                    if not tag:
                        raise
            return tag
        """,
        id="walrus-async-savepoint",
    )
)


@pytest.mark.parametrize(("before", "after"), GET_OR_CREATE)
def test_get_or_create_fixes_exactly(before: str, after: str) -> None:
    expected = textwrap.dedent(after).lstrip("\n")
    assert fixed(before, unsafe=True) == expected
    assert fixed(expected, unsafe=True) == expected


def test_get_or_create_is_safe_on_a_visible_unique_key_and_unsafe_otherwise() -> None:
    seed = "def seed(db, e):\n    user = db.query(User).filter(User.{column} == e).first()\n    if user is None:\n        user = User({column}=e)\n        db.add(user)\n        db.commit()\n    return user\n"
    assert safeties(MODELS + seed.format(column="email")) == ["safe"]
    assert safeties(MODELS + seed.format(column="name")) == ["unsafe"]


@st.composite
def get_or_create_programs(draw: st.DrawFn) -> str:
    session = draw(st.sampled_from(("db", "session", "db.session")))
    lookup = draw(st.sampled_from((f"{session}.query(Tag).filter_by(name=key).first()", f"{session}.get(Tag, key)", "Tag.query.filter_by(name=key).one_or_none()")))
    test, inverted = draw(st.sampled_from((("tag is None", False), ("not tag", False), ("tag", True), ("tag is not None", True))))
    create = ["tag = Tag(name=key)", f"{session}.add(tag)", *draw(st.sampled_from(([f"{session}.commit()"], [f"{session}.flush()"], [])))]
    update = draw(st.sampled_from((["tag.hits += 1"], ["return tag"])))
    branches = (update, create) if inverted else (create, draw(st.sampled_from(([], update))))
    statement = [f"if {test}:", *("    " + line for line in branches[0])]
    statement += ["else:", *("    " + line for line in branches[1])] if branches[1] else []
    return "def work(db, session, key):\n" + "".join(f"    {line}\n" for line in (f"tag = {lookup}", *statement, "return tag"))


@settings(max_examples=40, deadline=None)
@given(get_or_create_programs())
def test_get_or_create_variants_compile_are_idempotent_and_recheck(code: str) -> None:
    result = fixed(code, unsafe=True)
    tree = ast.parse(result)
    compile(tree, "example.py", "exec")
    handlers = [node for node in ast.walk(tree) if isinstance(node, ast.ExceptHandler)]
    assert len(handlers) == 1
    again, recheck = [statement for statement in handlers[0].body if isinstance(statement, (ast.Assign, ast.If))][:2]
    assert ast.unparse(again) == ast.unparse(ast.parse(code).body[0].body[0])  # the same lookup, run again
    assert isinstance(recheck, ast.If) and isinstance(recheck.body[0], ast.Raise)
    assert result.count("import IntegrityError") == 1
    assert fixed(result, unsafe=True) == result


# --- Django: `if not M.objects.filter(...).exists(): M.objects.create(...)` ----------------------

DJANGO_TAG = """\
from django.db import models


class Tag(models.Model):
    owner = models.ForeignKey("auth.User", on_delete=models.CASCADE)
    name = models.CharField(max_length=40)
    color = models.CharField(max_length=10)

    class Meta:
        unique_together = [("owner", "name")]


"""


def test_django_exists_then_create_becomes_get_or_create() -> None:
    code = DJANGO_TAG + (
        "def seed(user, name):\n    # once\n    if not Tag.objects.filter(owner=user, name=name).exists():\n"
        '        Tag.objects.create(name=name, color="red", owner=user)\n'
    )
    expected = DJANGO_TAG + 'def seed(user, name):\n    # once\n    Tag.objects.get_or_create(name=name, owner=user, defaults={"color": "red"})\n'
    assert safeties(code) == ["safe"]
    assert fixed(code) == expected
    assert fixed(expected) == expected


def test_django_exists_in_a_name_keeps_the_name_and_gets_or_creates() -> None:
    code = DJANGO_TAG + (
        "def seed(user, name):\n    found = Tag.objects.filter(owner=user, name=name).exists()\n"
        "    if not found:\n        Tag.objects.create(owner=user, name=name)\n    return found\n"
    )
    expected = DJANGO_TAG + (
        "def seed(user, name):\n    found = Tag.objects.filter(owner=user, name=name).exists()\n"
        "    Tag.objects.get_or_create(owner=user, name=name)\n    return found\n"
    )
    assert safeties(code) == ["safe"]
    assert fixed(code) == expected


def test_django_queryset_in_a_name_and_a_multi_line_create_keep_their_layout() -> None:
    code = DJANGO_TAG + (
        "def seed(user, name, color):\n    tags = Tag.objects.filter(owner=user, name=name)\n    if not tags.exists():\n"
        "        Tag.objects.create(\n            color=color,\n            owner=user,\n            name=name,\n        )\n"
    )
    expected = DJANGO_TAG + (
        "def seed(user, name, color):\n    tags = Tag.objects.filter(owner=user, name=name)\n"
        '    Tag.objects.get_or_create(\n        owner=user,\n        name=name,\n        defaults={"color": color},\n    )\n'
    )
    assert fixed(code) == expected


def test_django_without_a_visible_unique_key_is_unsafe() -> None:
    half = DJANGO_TAG + "def seed(user):\n    if not Tag.objects.filter(owner=user).exists():\n        Tag.objects.create(owner=user, name='x')\n"
    assert safeties(half) == ["unsafe"]
    unseen = "def seed(name):\n    if not Label.objects.filter(name=name).exists():\n        Label.objects.create(name=name)\n"
    assert safeties(unseen) == ["unsafe"]
    assert fixed(unseen, unsafe=True).endswith("def seed(name):\n    Label.objects.get_or_create(name=name)\n")
    computed = DJANGO_TAG + "def seed(user, n):\n    if not Tag.objects.filter(owner=user, name=n).exists():\n        Tag.objects.create(owner=user, name=n, color=pick())\n"
    assert safeties(computed) == ["unsafe"]


def test_django_first_then_create_keeps_the_fast_path_and_gets_or_creates() -> None:
    code = DJANGO_TAG + (
        "def seed(user, name):\n    tag = Tag.objects.filter(owner=user, name=name).first()\n    if tag is None:\n"
        '        tag = Tag.objects.create(owner=user, name=name, color="red")  # new\n    return tag\n'
    )
    expected = code.replace(
        'Tag.objects.create(owner=user, name=name, color="red")',
        'Tag.objects.get_or_create(owner=user, name=name, defaults={"color": "red"})[0]',
    )
    assert safeties(code) == ["safe"]
    assert fixed(code) == expected
    assert fixed(expected) == expected


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("t = Tag.objects.filter(name=n).first()\nif t is None:\n    t = Tag.objects.create(name=n.lower())\n", id="first-other-value"),
        pytest.param("t = Tag.objects.filter(name=n).first()\nif t:\n    t = Tag.objects.create(name=n)\n", id="first-inverted"),
        pytest.param("t = Tag.objects.filter(name=n).first()\nif t is None:\n    other = Tag.objects.create(name=n)\n", id="first-binds-another-name"),
        pytest.param("t = Tag.objects.filter(name=n).last()\nif t is None:\n    t = Tag.objects.create(name=n)\n", id="last"),
        pytest.param("t = Tag.objects.filter(name=n).first()\nif t is None:\n    t = Tag.objects.create(name=n)\n    t.save()\n", id="first-more-statements"),
        pytest.param("if not Tag.objects.filter(name=n).exists():\n    Tag.objects.create(name=n.lower())\n", id="other-value"),
        pytest.param("found = Tag.objects.filter(name=n).first()\nif not found:\n    Tag.objects.create(name=n)\n", id="name-not-an-exists"),
        pytest.param("found = Tag.objects.filter(name=n).exists()\nlog()\nif not found:\n    Tag.objects.create(name=n)\n", id="exists-not-right-before"),
        pytest.param("if not Tag.objects.filter(name__iexact=n).exists():\n    Tag.objects.create(name=n)\n", id="lookup"),
        pytest.param("if not Tag.objects.filter(name=n).exists():\n    Label.objects.create(name=n)\n", id="creates-another-model"),
        pytest.param("if not Tag.objects.filter(name=n).exists():\n    Tag.objects.create(name=n, defaults=d)\n", id="defaults-field"),
        pytest.param("if not Tag.objects.filter(Q(name=n)).exists():\n    Tag.objects.create(name=n)\n", id="q-object"),
        pytest.param("if not Tag.objects.filter(name=n).exists() and go:\n    Tag.objects.create(name=n)\n", id="tests-more"),
        pytest.param("if not Tag.objects.filter(name=n).exists():\n    tag = Tag.objects.create(name=n)\n", id="created-object-used"),
        pytest.param("if not Tag.objects.filter(name=n).exists():\n    Tag.objects.create(**fields)\n", id="star-arguments"),
        pytest.param("if not Tag.objects.filter(name=n).exists():\n    log()\n    Tag.objects.create(name=n)\n", id="create-not-first"),
        pytest.param("try:\n    t = Tag.objects.get(name=n)\nexcept Tag.DoesNotExist:\n    t = Tag.objects.create(name=n.lower())\n", id="get-other-value"),
        pytest.param("try:\n    t = Tag.objects.get(name=n)\nexcept Tag.DoesNotExist:\n    u = Tag.objects.create(name=n)\n", id="get-binds-another-name"),
        pytest.param("try:\n    t = Tag.objects.get(name=n)\nexcept Label.DoesNotExist:\n    t = Tag.objects.create(name=n)\n", id="get-catches-another-model"),
        pytest.param("try:\n    t = Tag.objects.get(name=n)\nexcept Exception:\n    t = Tag.objects.create(name=n)\n", id="get-catches-everything"),
        pytest.param("try:\n    t = Tag.objects.get(name=n)\nexcept Tag.DoesNotExist:\n    t = Tag.objects.create(name=n)\n    t.save()\n", id="get-handler-does-more"),
        pytest.param("try:\n    t = Tag.objects.get(name=n)\nexcept Tag.DoesNotExist:\n    t = Tag.objects.create(name=n)\nfinally:\n    done()\n", id="get-finally"),
    ],
)
def test_django_look_alikes_are_left_alone(code: str) -> None:
    result = run_rules(code, RULES, unsafe=True)
    assert result.findings == [] and fixed_text(result) == code


GET_OR_CREATE_PROGRAM = '''
from sqlalchemy import CheckConstraint, Column, Integer, String, create_engine
from sqlalchemy.orm import Session, declarative_base

Base = declarative_base()


class Tag(Base):
    __tablename__ = "tags"
    id = Column(Integer, primary_key=True)
    name = Column(String, unique=True, nullable=False)
    __table_args__ = (CheckConstraint("length(name) < 10"),)


def get_or_create_tag(session, name):
    tag = session.query(Tag).filter(Tag.name == name).first()
    if tag is None:
        tag = Tag(name=name)
        session.add(tag)
        session.commit()
    return tag
'''


def test_fixed_get_or_create_re_raises_when_another_constraint_failed() -> None:
    """The fixed code run on SQLite: the insert breaks the CHECK constraint, not the unique key;
    the lookup run again still finds nothing, so the handler raises instead of returning None."""
    fixed_program = fixed(GET_OR_CREATE_PROGRAM)
    assert "        except IntegrityError:\n" in fixed_program
    namespace: dict[str, Any] = {}
    exec(compile(fixed_program, "example.py", "exec"), namespace)
    engine = namespace["create_engine"]("sqlite://")
    namespace["Base"].metadata.create_all(engine)
    with namespace["Session"](engine) as session:
        assert namespace["get_or_create_tag"](session, "python").name == "python"
        with pytest.raises(namespace["IntegrityError"]):
            namespace["get_or_create_tag"](session, "much-too-long-name")
        assert [tag.name for tag in session.query(namespace["Tag"])] == ["python"]


# --- Django: more after the create, an `else:`, and `get()` / `except DoesNotExist` ------------------


def test_django_exists_with_more_statements_and_else_tests_what_get_or_create_did() -> None:
    code = DJANGO_TAG + (
        "def follow(user, name):\n    found = Tag.objects.filter(owner=user, name=name).exists()\n    if not found:\n"
        "        Tag.objects.create(owner=user, name=name)\n        user.count += 1\n        level = 'ok'\n"
        "    else:\n        level = 'exists'\n    return level\n"
    )
    expected = DJANGO_TAG + (
        "def follow(user, name):\n    found = Tag.objects.filter(owner=user, name=name).exists()\n"
        "    if Tag.objects.get_or_create(owner=user, name=name)[1]:\n        user.count += 1\n        level = 'ok'\n"
        "    else:\n        level = 'exists'\n    return level\n"
    )
    assert safeties(code) == ["safe"]
    assert fixed(code) == expected
    assert fixed(expected) == expected


def test_django_toggle_runs_its_else_when_the_row_was_there() -> None:
    code = DJANGO_TAG + (
        "def toggle(user, name):\n    rows = Tag.objects.filter(owner=user, name=name)\n    if not rows.exists():\n"
        "        Tag.objects.create(owner=user, name=name)\n    else:  # unfollow\n        rows.delete()\n"
    )
    expected = DJANGO_TAG + (
        "def toggle(user, name):\n    rows = Tag.objects.filter(owner=user, name=name)\n"
        "    if not Tag.objects.get_or_create(owner=user, name=name)[1]:  # unfollow\n        rows.delete()\n"
    )
    assert fixed(code) == expected
    assert fixed(expected) == expected


def test_django_get_except_does_not_exist_becomes_get_or_create() -> None:
    code = DJANGO_TAG + (
        "def tag_of(user, name):\n    try:\n        # the user's tag\n        tag = Tag.objects.get(owner=user, name=name)\n"
        "    except Tag.DoesNotExist:\n        tag = Tag.objects.create(owner=user, name=name, color='red')\n    return tag\n"
    )
    expected = DJANGO_TAG + (
        "def tag_of(user, name):\n    # the user's tag\n"
        "    tag = Tag.objects.get_or_create(owner=user, name=name, defaults={\"color\": 'red'})[0]\n    return tag\n"
    )
    assert safeties(code) == ["safe"]
    assert fixed(code) == expected
    assert fixed(expected) == expected
    unseen = "try:\n    c = Cart.objects.get(key=k)\nexcept ObjectDoesNotExist:\n    c = Cart.objects.create(key=k)\n"
    assert safeties(unseen) == ["unsafe"]
    assert fixed(unseen, unsafe=True) == "c = Cart.objects.get_or_create(key=k)[0]\n"


# --- reported without a fix: `NoResultFound`, and an early exit before the insert ------------------

REPORTED = [
    pytest.param(
        "def add(session, texts):\n    for text in texts:\n        try:\n"
        "            session.query(Joke.text).filter(Joke.text == text).one()\n"
        "        except NoResultFound:\n            session.add(Joke(text=text))\n    session.commit()\n",
        id="one-except-no-result-in-a-loop",
    ),
    pytest.param(
        "def add(session, uid):\n    try:\n        found = session.query(Member).filter(Member.uid == uid).one()\n"
        "    except exc.NoResultFound:\n        session.add(Member(uid=uid))\n        session.commit()\n",
        id="one-assigned-except-exc.NoResultFound",
    ),
    pytest.param(
        "def register(db, name, email, p1, p2):\n"
        "    by_name = db.query(models.User).filter(models.User.name == name).first()\n"
        "    by_email = db.query(models.User).filter(models.User.email == email).first()\n"
        "    if p1 != p2:\n        return 'mismatch'\n"
        "    if by_name is not None or by_email is not None:\n        return 'taken'\n"
        "    user = models.User()\n    user.name = name\n    db.add(user)\n    db.commit()\n",
        id="guard-return-then-insert",
    ),
    pytest.param(
        "def rate(db, pid, uid):\n    own = db.query(Picture).filter(Picture.id == pid).first()\n"
        "    voted = db.query(Rating).filter(Rating.pid == pid, Rating.uid == uid).first()\n"
        "    if own:\n        raise Locked()\n    elif voted:\n        raise Locked()\n"
        "    elif pid:\n        db.add(Rating(pid=pid, uid=uid))\n        db.commit()\n",
        id="guard-raise-in-an-elif-chain",
    ),
    pytest.param(
        "def member(session, uid):\n    rows = session.query(Member).filter(Member.uid == uid)\n"
        "    if list(rows):\n        return rows[0]\n    else:\n        session.add(Member(uid=uid))\n        session.commit()\n",
        id="guard-list-of-a-query",
    ),
    pytest.param(
        "def add(product, user):\n    found = Item.objects.filter(product=product, user=user).exists()\n    if found:\n"
        "        bump(Item.objects.filter(product=product, user=user))\n    else:\n"
        "        item = Item.objects.create(product=product, user=user, quantity=1)\n        item.save()\n",
        id="django-found-branch-uses-the-rows-else-creates",
    ),
    pytest.param(
        "def init(db):\n    user = crud.user.get_by_email(db, email=ADMIN)\n    if not user:\n"
        "        user_in = UserCreate(email=ADMIN)\n        user = crud.user.create(db, obj_in=user_in)\n",
        id="helpers-get-by-then-create-on-the-same-session",
    ),
    pytest.param(
        "def ensure_tag(db_session, name, post):\n    tag = get_by_name(db_session=db_session, name=name)\n"
        "    if not tag:\n        tag = create(db_session=db_session, name=name)\n        db_session.add(post)\n"
        "    return db_session.query(Tag).first() or tag\n",
        id="helpers-called-by-bare-name",
    ),
]


@pytest.mark.parametrize("code", REPORTED)
def test_reported_without_a_fix(code: str) -> None:
    result = run_rules(code, RULES, unsafe=True)
    assert [finding.rule for finding in result.findings] == ["UL301"]
    assert fixed_text(result) == code
    assert CheckThenInsert.could_fire(ast.parse(code))


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("def f(db, uid):\n    user = db.query(User).get(uid)\n    if not user:\n        raise NotFound()\n"
                     "    db.add(Comment(user=user))\n", id="guard-on-a-missing-row"),
        pytest.param("def f(db, uid):\n    user = db.query(User).filter(User.id == uid).first()\n    log(user)\n"
                     "    if user:\n        return user\n    db.add(User(id=uid))\n", id="guard-lookup-used-first"),
        pytest.param("def f(db, uid):\n    user = db.query(User).filter(User.id == uid).first()\n"
                     "    if user and user.active:\n        return user\n    db.add(User(id=uid))\n", id="guard-tests-more"),
        pytest.param("def f(db, uid):\n    user = db.query(User).filter(User.id == uid).first()\n"
                     "    if user:\n        return user\n    db.add(Visit(uid=uid))\n", id="guard-inserts-another-model"),
        pytest.param("def f(db, other, uid):\n    user = db.query(User).filter(User.id == uid).first()\n"
                     "    if user:\n        return user\n    other.add(User(id=uid))\n", id="guard-another-session"),
        pytest.param("def f(db, uid):\n    user = db.query(User).filter(User.id == uid).first()\n"
                     "    if user:\n        log(user)\n    db.add(User(id=uid))\n", id="no-early-exit"),
        pytest.param("try:\n    session.query(M).filter(M.a == a).first()\nexcept NoResultFound:\n    session.add(M(a=a))\n",
                     id="first-does-not-raise"),
        pytest.param("try:\n    session.query(M).filter(M.a == a).one()\nexcept NoResultFound:\n    log(a)\n",
                     id="no-result-handler-does-not-insert"),
        pytest.param("try:\n    session.query(M).filter(M.a == a).one()\nexcept ValueError:\n    session.add(M(a=a))\n",
                     id="catches-something-else"),
        pytest.param("if Item.objects.filter(a=a).exists():\n    bump()\nelse:\n    Log.objects.create(a=a)\n", id="django-else-creates-another-model"),
        pytest.param("if Item.objects.filter(a=a).exists():\n    bump()\nelse:\n    Item.objects.create(a=None)\n", id="django-else-creates-another-row"),
        pytest.param("if Item.objects.filter(a=a).exists() and go:\n    bump()\nelse:\n    Item.objects.create(a=a)\n", id="django-tests-more"),
        pytest.param("u = crud.get_by_email(db, e)\nif not u:\n    u = crud.create(other, e)\n", id="helpers-on-two-sessions"),
        pytest.param("u = crud.get_by_email(db, e)\nif not u:\n    crud.create(db, e)\n", id="helper-create-not-bound"),
        pytest.param("v = cache.get_item(k)\nif not v:\n    v = cache.create_item(k)\n", id="helpers-without-a-session"),
        pytest.param("u = crud.get_by_email(db, e)\nif u:\n    u = crud.create(db, e)\n", id="helpers-create-when-found"),
    ],
)
def test_guards_and_exceptions_left_alone(code: str) -> None:
    result = run_rules(code, RULES, unsafe=True)
    assert result.findings == [] and fixed_text(result) == code


INLINE_PROGRAM = GET_OR_CREATE_PROGRAM.split("def get_or_create_tag")[0] + '''def add_tag(session, name):
    if not session.query(Tag).filter(Tag.name == name).first():
        session.add(Tag(name=name))
        session.commit()
'''


def test_fixed_inline_check_re_raises_when_another_constraint_failed() -> None:
    """The inline form on SQLite: a conflict on the unique name is "already there"; a broken
    CHECK constraint leaves no row for the repeated check to find, so the handler raises."""
    fixed_program = fixed(INLINE_PROGRAM)
    assert "    except IntegrityError:\n" in fixed_program and "            raise\n" in fixed_program
    namespace: dict[str, Any] = {}
    exec(compile(fixed_program, "example.py", "exec"), namespace)
    engine = namespace["create_engine"]("sqlite://")
    namespace["Base"].metadata.create_all(engine)
    with namespace["Session"](engine) as session:
        namespace["add_tag"](session, "python")
        namespace["add_tag"](session, "python")  # the unique key conflicts: the row is there
        with pytest.raises(namespace["IntegrityError"]):
            namespace["add_tag"](session, "much-too-long-name")
        assert [tag.name for tag in session.query(namespace["Tag"])] == ["python"]


@pytest.mark.parametrize(
    ("code", "triggered"),
    [
        # Django test code: creates and gets, but nothing any shape needs besides
        ("def test(self):\n    a = Author.objects.create(name='x')\n    self.assertEqual(Author.objects.get(pk=a.pk), a)\n", False),
        ("tags = {1}\ntags.add(2)\nx = d.get(k)\n", True),  # an `.add(`: SQLAlchemy's shapes may follow
        ("if not T.objects.filter(a=1).exists():\n    T.objects.create(a=1)\n", True),
        ("o = T.objects.filter(a=1).first()\nif o is None:\n    o = T.objects.create(a=1)\n", True),
        ("try:\n    o = T.objects.get(a=1)\nexcept T.DoesNotExist:\n    o = T.objects.create(a=1)\n", True),
        ("u = crud.get_user(db, e)\nif not u:\n    u = crud.create(db, e)\n", True),
        ("u = crud.get_user(e, db_session=db_session)\nif not u:\n    u = crud.create(e, db_session=db_session)\n", True),
        ("u = crud.get_user(db  # the request's\n, e)\nif not u:\n    u = crud.create(db, e)\n", True),
    ],
)
def test_the_trigger_needs_what_some_shape_needs_besides_a_create_and_a_lookup(code: str, triggered: bool) -> None:
    assert (triggered_rules(code.encode(), (CheckThenInsert,), Settings()) == (CheckThenInsert,)) is triggered
