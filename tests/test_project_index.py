"""The project index: what other modules declare, seen through a file's imports.

Each test writes a small project (a folder with `pyproject.toml`) and runs the real `unleak`
command on it, or asks the index directly.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from unleak.cli import app
from unleak.engine import runner
from unleak.engine.indexing import build_index
from unleak.knowledge.declarations import module_facts
from unleak.knowledge.project import ProjectIndex, ProjectView
from unleak.settings import Overrides, SettingsResolver

SEED = """
    def seed(db):
        if not db.query(Tenant).filter(Tenant.slug == "acme").first():
            db.add(Tenant(slug="acme"))
            db.commit()
"""
SEEDED = """
    from sqlalchemy.exc import IntegrityError
    def seed(db):
        try:
            db.add(Tenant(slug="acme"))
            db.commit()
        except IntegrityError:
            db.rollback()
            if not db.query(Tenant).filter(Tenant.slug == "acme").first():
                raise
"""
TENANT = """
    from sqlalchemy import Column, Integer, String
    from sqlalchemy.orm import declarative_base

    Base = declarative_base()


    class Tenant(Base):
        __tablename__ = "tenants"
        id = Column(Integer, primary_key=True)
        slug = Column(String, unique=True)
        name = Column(String)
"""


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    Path("pyproject.toml").write_text("[tool.unleak]\n")
    return tmp_path


def write(path: str, text: str) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(textwrap.dedent(text).lstrip("\n"))
    return target


def unleak(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def unsafe_finding(target: str = ".") -> str:
    """The one finding `unleak check` prints, which must offer its fix only with --unsafe."""
    result = unleak("check", target)
    assert result.exit_code == 1
    assert result.stdout.count("\n") == 1 and "(unsafe fix available with --unsafe)" in result.stdout
    return result.stdout


def seeding(imports: str) -> str:
    return imports + "\n" + textwrap.dedent(SEED).lstrip("\n")


def seeded(imports: str) -> str:
    """SEEDED, with the added `IntegrityError` import below the file's own imports."""
    return imports + textwrap.dedent(SEEDED).lstrip("\n").replace("Error\ndef", "Error\n\ndef")


# --- UL301 with models from other modules ------------------------------------------------------


def test_model_imported_from_another_module_makes_the_fix_safe() -> None:
    write("app/__init__.py", "")
    write("app/models.py", TENANT)
    seed = write("app/seed.py", seeding("from app.models import Tenant\n"))
    result = unleak("apply", ".")
    assert result.exit_code == 0, result.output
    assert seed.read_text() == seeded("from app.models import Tenant\n")


def test_relative_import_in_a_package() -> None:
    write("shop/__init__.py", "")
    write("shop/db/__init__.py", "")
    write("shop/db/models.py", TENANT)
    seed = write("shop/jobs/seed.py", seeding("from ..db.models import Tenant\n"))
    write("shop/jobs/__init__.py", "")
    assert unleak("apply", ".").exit_code == 0
    assert seed.read_text() == seeded("from ..db.models import Tenant\n")


def test_src_layout_with_a_re_export_through_the_package() -> None:
    write("src/billing/__init__.py", "from .models import Tenant\n")
    write("src/billing/models.py", TENANT)
    seed = write("src/billing/seed.py", seeding("from billing import Tenant\n"))
    assert unleak("apply", ".").exit_code == 0
    assert seed.read_text() == seeded("from billing import Tenant\n")


def test_module_imported_under_an_alias_and_used_by_attribute() -> None:
    write("app/models.py", TENANT)
    code = seeding("import app.models as m\n").replace("Tenant", "m.Tenant")
    seed = write("app/seed.py", code)
    assert unleak("apply", ".").exit_code == 0
    assert "except IntegrityError:" in seed.read_text()


def test_primary_key_inherited_from_a_base_class_in_another_module() -> None:
    write("app/base.py", """
        from sqlalchemy import Column, Integer
        from sqlalchemy.orm import declarative_base

        Base = declarative_base()


        class Keyed(Base):
            __abstract__ = True
            code = Column(Integer, primary_key=True)
    """)
    write("app/models.py", """
        from sqlalchemy import Column, String
        from app.base import Keyed


        class Tenant(Keyed):
            __tablename__ = "tenants"
            name = Column(String)
    """)
    code = seeding("from app.models import Tenant\n").replace("slug", "code")
    seed = write("app/seed.py", code)
    assert unleak("apply", ".").exit_code == 0
    assert "except IntegrityError:" in seed.read_text()


def test_compared_column_without_a_unique_key_stays_unsafe_and_says_so() -> None:
    write("app/models.py", TENANT)
    code = seeding("from app.models import Tenant\n").replace("slug", "name")
    write("app/seed.py", code)
    assert "no unique key of Tenant (app/models.py) covers name" in unsafe_finding()


def test_two_classes_with_the_name_are_ambiguous_and_stay_unsafe() -> None:
    write("app/models.py", textwrap.dedent(TENANT) + "\n\nclass Tenant:\n    pass\n")
    write("app/seed.py", seeding("from app.models import Tenant\n"))
    assert "`Tenant` is ambiguous" in unsafe_finding()


def test_two_modules_of_the_name_are_ambiguous() -> None:
    write("one/models.py", TENANT)
    write("two/models.py", TENANT)
    write("seed.py", seeding("from models import Tenant\n"))
    assert "module `models` is ambiguous" in unsafe_finding("seed.py")


def test_a_name_from_outside_the_project_stays_unsafe() -> None:
    write("app/seed.py", seeding("from vendor.models import Tenant\n"))
    assert "that unleak cannot see" in unsafe_finding()


def test_a_file_named_on_the_command_line_gets_its_projects_index() -> None:
    write("app/models.py", TENANT)
    seed = write("app/jobs/seed.py", seeding("from app.models import Tenant\n"))
    assert unleak("apply", "app/jobs/seed.py").exit_code == 0
    assert "except IntegrityError:" in seed.read_text()


def test_flask_sqlalchemy_model() -> None:
    write("app/models.py", """
        from app.extensions import db


        class Tenant(db.Model):
            id = db.Column(db.Integer, primary_key=True)
            slug = db.Column(db.String(80), unique=True, nullable=False)
    """)
    write("app/extensions.py", "from flask_sqlalchemy import SQLAlchemy\n\ndb = SQLAlchemy()\n")
    code = seeding("from app.models import Tenant\n")
    seed = write("app/seed.py", code)
    assert unleak("apply", ".").exit_code == 0
    assert "except IntegrityError:" in seed.read_text()


def test_sqlmodel_model() -> None:
    write("app/models.py", """
        from sqlmodel import Field, SQLModel


        class Tenant(SQLModel, table=True):
            id: int | None = Field(default=None, primary_key=True)
            slug: str = Field(unique=True)
    """)
    seed = write("app/seed.py", seeding("from app.models import Tenant\n"))
    assert unleak("apply", ".").exit_code == 0
    assert "except IntegrityError:" in seed.read_text()


def test_sqlmodel_class_without_table_is_not_a_model() -> None:
    write("app/models.py", """
        from sqlmodel import Field, SQLModel


        class Tenant(SQLModel):
            slug: str = Field(unique=True)
    """)
    write("app/seed.py", seeding("from app.models import Tenant\n"))
    assert "maps no table" in unleak("check", ".").stdout


# --- session factories from other modules (UL203) ----------------------------------------------

GET_USER = """
    def get_user(user_id):
        try:
            db = make_db()
            return db.get(User, user_id)
        finally:
            db.close()
"""


def test_sessionmaker_imported_under_an_alias_is_known_by_what_it_is() -> None:
    write("app/database.py", """
        from sqlalchemy.orm import sessionmaker as maker

        make_db = maker(autoflush=False)
    """)
    users = write("app/users.py", "from app.database import make_db as make_db\n\n" + textwrap.dedent(GET_USER).lstrip("\n"))
    result = unleak("apply", ".")
    assert result.exit_code == 0, result.output
    assert "    db = make_db()\n    try:\n" in users.read_text()


def test_a_function_returning_a_factory_session_is_a_factory() -> None:
    write("app/database.py", """
        from sqlalchemy.orm import sessionmaker

        SessionLocal = sessionmaker()


        def make_db():
            return SessionLocal()
    """)
    users = write("app/users.py", "from app.database import make_db\n\n" + textwrap.dedent(GET_USER).lstrip("\n"))
    assert unleak("apply", ".").exit_code == 0
    assert "    db = make_db()\n    try:\n" in users.read_text()


def test_a_same_named_function_that_is_not_a_factory_is_left_alone() -> None:
    write("app/database.py", "def make_db():\n    return object()\n")
    users = write("app/users.py", "from app.database import make_db\n\n" + textwrap.dedent(GET_USER).lstrip("\n"))
    before = users.read_text()
    assert unleak("apply", ".").exit_code == 0
    assert users.read_text() == before


COUNT_USERS = """
    def count_users():
        db = make_db()
        n = db.query(User).count()
        db.close()
        return n
"""
COUNTED_USERS = """
    def count_users():
        with make_db() as db:
            n = db.query(User).count()
        return n
"""


def test_ul202_manages_a_session_from_an_imported_factory() -> None:
    write("app/database.py", "from sqlalchemy.orm import sessionmaker as maker\n\nmake_db = maker()\n")
    users = write("app/users.py", "from app.database import make_db\n\n" + textwrap.dedent(COUNT_USERS).lstrip("\n"))
    assert unleak("apply", ".").exit_code == 0
    assert users.read_text() == "from app.database import make_db\n\n" + textwrap.dedent(COUNTED_USERS).lstrip("\n")


def test_ul202_leaves_an_imported_call_that_makes_no_session() -> None:
    write("app/database.py", "def make_db():\n    return object()\n")
    users = write("app/users.py", "from app.database import make_db\n\n" + textwrap.dedent(COUNT_USERS).lstrip("\n"))
    before = users.read_text()
    assert unleak("check", ".").exit_code == 0
    assert users.read_text() == before


@pytest.mark.parametrize(
    "imports",
    ["from app.db import manager as db_manager\n", "from .db import manager as db_manager\n", "import app.db.manager as db_manager\n"],
)
def test_ul202_manages_a_session_from_a_factory_reached_through_a_submodule(imports: str) -> None:
    write("app/__init__.py", "")
    write("app/db/__init__.py", "import logging\n")
    write("app/db/manager.py", "import sqlalchemy.orm\n\nSession = sqlalchemy.orm.scoped_session(sqlalchemy.orm.sessionmaker())\n")
    code = textwrap.dedent(COUNT_USERS).lstrip("\n").replace("make_db()", "db_manager.Session()")
    users = write("app/users.py", imports + "\n" + code)
    assert unleak("apply", ".").exit_code == 0
    assert users.read_text() == imports + "\n" + textwrap.dedent(COUNTED_USERS).lstrip("\n").replace("make_db()", "db_manager.Session()")


def test_a_package_name_that_is_no_submodule_stays_unknown() -> None:
    index = index_of(app__init="", app__db__init="import logging\n")
    view = view_from(index, "app/users.py", "from app.db import manager\n")
    assert view.session_factory("manager.Session").found is None


# --- the index itself ---------------------------------------------------------------------------


def index_of(**files: str) -> ProjectIndex:
    for name, text in files.items():
        write(name.replace("__", "/").replace("/init/", "/__init__") + ".py", text)
    return build_index(Path.cwd(), SettingsResolver(Overrides()))


def view_from(index: ProjectIndex, path: str, code: str) -> ProjectView:
    return index.view(module_facts(ast.parse(textwrap.dedent(code)), path))


def test_model_facts_of_each_kind() -> None:
    index = index_of(
        app__models="""
            from django.db import models
            from sqlalchemy import Column, ForeignKey, Index, Integer, String, UniqueConstraint
            from sqlalchemy.orm import Mapped, mapped_column, relationship
            from app.base import Base


            class Team(Base):
                __tablename__ = "teams"
                __table_args__ = (UniqueConstraint("org", "name"), Index("ix", "org", "slug", unique=True))
                id: Mapped[int] = mapped_column(primary_key=True)
                org: Mapped[str]
                name: Mapped[str]
                slug: Mapped[str]
                members = relationship("Member", cascade="all, delete-orphan")


            class Article(models.Model):
                author = models.ForeignKey("Author", on_delete=models.CASCADE)
                slug = models.SlugField(unique=True)

                class Meta:
                    db_table = "articles"
                    unique_together = [("author", "title")]
        """,
        app__base="from sqlalchemy.orm import DeclarativeBase\n\nclass Base(DeclarativeBase):\n    pass\n",
    )
    view = view_from(index, "app/api.py", "from app.models import Team, Article\n")
    team = view.model("Team").found
    assert team is not None and team.kind == "sqlalchemy" and team.table == "teams"
    assert team.primary_key == {"id"}
    assert set(team.unique) == {frozenset({"org", "name"}), frozenset({"org", "slug"})}
    assert team.relationships[0].cascade == "all, delete-orphan"
    article = view.model("Article").found
    assert article is not None and article.kind == "django" and article.table == "articles"
    assert article.primary_key == {"id"}, "Django adds an `id` key when none is declared"
    assert frozenset({"author", "title"}) in article.unique and frozenset({"slug"}) in article.unique
    assert article.relationships[0].cascade == "models.CASCADE"
    assert article.unique_key_within({"pk", "other"}) == frozenset({"pk"})


def test_session_factories_and_context_managers() -> None:
    index = index_of(
        app__db="""
            from contextlib import contextmanager
            from sqlalchemy.ext.asyncio import async_sessionmaker
            from sqlalchemy.orm import Session, scoped_session, sessionmaker

            AsyncLocal = async_sessionmaker()
            Scoped = scoped_session(sessionmaker())


            @contextmanager
            def session_scope():
                with Session(engine) as session:
                    yield session


            def get_db():
                db = AsyncLocal()
                yield db
        """
    )
    view = view_from(index, "app/api.py", "from app import db\nfrom app.db import get_db\n")
    assert view.session_factory("db.AsyncLocal").found.asynchronous is True
    assert view.session_factory("db.Scoped").found.how == "scoped_session"
    assert view.session_factory("get_db").found is None, "a generator is a dependency, not a factory"
    scope = view.context_manager("db.session_scope").found
    assert scope is not None and scope.session is not None and scope.session.asynchronous is False
    assert view.context_manager("get_db").found is None


def test_delete_listeners() -> None:
    index = index_of(
        app__models=textwrap.dedent(TENANT) + "\n\n@event.listens_for(Tenant, 'before_delete')\ndef audit(mapper, conn, target):\n    pass\n",
    )
    view = view_from(index, "app/jobs.py", "from app.models import Tenant\n")
    tenant = view.model("Tenant").found
    assert tenant is not None
    assert [listener.event for listener in view.delete_listeners(tenant)] == ["before_delete"]


def test_the_view_records_what_the_file_asked() -> None:
    index = index_of(app__models=TENANT)
    view = view_from(index, "app/jobs.py", "from app.models import Tenant\n")
    view.model("Tenant")
    view.model("Missing")
    assert set(view.used) == {("model", "Tenant"), ("model", "Missing")}


# --- the engine ---------------------------------------------------------------------------------


def test_jobs_1_and_jobs_2_give_the_same_output() -> None:
    write("app/models.py", TENANT)
    for number in range(4):
        write(f"app/seed_{number}.py", seeding("from app.models import Tenant\n"))
    serial = unleak("diff", ".", "--jobs", "1")
    parallel = unleak("diff", ".", "--jobs", "2")
    assert serial.exit_code == parallel.exit_code == 1
    assert serial.stdout == parallel.stdout
    assert serial.stdout.count("+    except IntegrityError:") == 4


def test_no_index_is_built_when_no_rule_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Path] = []
    monkeypatch.setattr(runner, "build_index", lambda root, resolver, known: built.append(root) or ProjectIndex())
    write("app/models.py", TENANT)
    write("app/worker.py", "try:\n    risky()\nexcept:\n    pass\n")
    unleak("check", ".")
    assert built == [], "no file may fire a rule that asks the index"
    write("app/seed.py", seeding("from app.models import Tenant\n"))
    unleak("check", ".", "--select", "UL401")
    assert built == []
    unleak("check", ".")
    assert built == [Path.cwd()]


def test_recorded_answers_do_not_depend_on_the_order_of_a_set() -> None:
    from unleak.knowledge.project import stable_repr

    assert stable_repr(frozenset({"b", "a", "c"})) == stable_repr(frozenset({"c", "a", "b"})) == "{'a', 'b', 'c'}"


def test_a_project_whose_root_folder_is_a_package() -> None:
    write("__init__.py", "")
    write("models.py", TENANT)
    seed = write("seed.py", seeding("from .models import Tenant\n"))
    assert unleak("apply", ".").exit_code == 0
    assert "except IntegrityError:" in seed.read_text()
