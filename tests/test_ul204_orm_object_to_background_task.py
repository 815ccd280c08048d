"""UL204 orm-object-to-background-task: cases beyond the embedded examples, and generated variants."""

from __future__ import annotations

import ast
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import run_rules
from unleak.knowledge.project import ProjectView
from unleak.settings import Settings
from unleak.transforms.ul204_orm_object_to_background_task import OrmObjectToBackgroundTask

RULES = (OrmObjectToBackgroundTask,)


def _messages(code: str) -> list[str]:
    result = run_rules(textwrap.dedent(code), RULES, fixing=False)
    assert result.error is None
    return [finding.message for finding in result.findings]


REPORTED = {
    "seed 003 #1: object and session to add_task": (
        """
        from fastapi import BackgroundTasks, Depends
        from sqlalchemy.orm import Session

        def create(payload, background_tasks: BackgroundTasks, db: Session = Depends(get_db)):
            incident = IncidentReport(**payload)
            db.add(incident)
            db.flush()
            background_tasks.add_task(IncidentAnalyzer.analyze_incident, incident, db)
            db.commit()
        """,
        ["`incident` is an ORM object", "`db` is a database session"],
    ),
    "keyword argument, Annotated session, query().first()": (
        """
        from typing import Annotated
        from sqlalchemy.orm import Session as S

        def ship(order_id, tasks: BackgroundTasks, db: Annotated[S, Depends(get_db)]):
            order = db.query(Order).filter(Order.id == order_id).first()
            tasks.add_task(send_receipt, order=order)
        """,
        ["`order` is an ORM object"],
    ),
    "BackgroundTasks created in the function, session from a module sessionmaker": (
        """
        from sqlalchemy.orm import sessionmaker

        SessionLocal = sessionmaker()

        def later(user_id):
            jobs = BackgroundTasks()
            session = SessionLocal()
            user = session.get(User, user_id)
            jobs.add_task(welcome, user)
            return jobs
        """,
        ["`user` is an ORM object"],
    ),
    "celery delay with scalars(select(...)).one()": (
        """
        def resend(invoice_id, db: Session = Depends(get_session)):
            invoice = db.scalars(select(Invoice).where(Invoice.id == invoice_id)).one()
            send_invoice.delay(invoice)
        """,
        ["`invoice` is an ORM object"],
    ),
    "celery apply_async positional args tuple and kwargs dict": (
        """
        def resend(invoice_id, db: Session = Depends(get_db)):
            invoice = db.execute(select(Invoice)).scalar_one()
            send_invoice.apply_async((invoice_id,), {"invoice": invoice, "db": db})
        """,
        ["`invoice` is an ORM object", "`db` is a database session"],
    ),
    "flask-sqlalchemy db.session": (
        """
        from flask_sqlalchemy import SQLAlchemy

        db = SQLAlchemy()

        def archive(post_id):
            archive_post.delay(post_id, db.session)
        """,
        ["`db.session` is a database session"],
    ),
    "a session-like factory the function runs a transaction on": (
        """
        async def refresh(feed_id):
            session = AsyncSessionLocal()
            feed = Feed(id=feed_id)
            session.add(feed)
            await session.commit()
            refresh_feed.delay(feed, session)
        """,
        ["`feed` is an ORM object", "`session` is a database session"],
    ),
}


@pytest.mark.parametrize(("code", "expected"), REPORTED.values(), ids=REPORTED.keys())
def test_reported_at_the_call_without_a_fix(code: str, expected: list[str]) -> None:
    messages = _messages(code)
    assert len(messages) == 1
    for part in expected:
        assert part in messages[0]
    result = run_rules(textwrap.dedent(code), RULES)
    assert result.fixed is None


UNTOUCHED = {
    "the id is passed": """
        def create(payload, background_tasks: BackgroundTasks, db: Session = Depends(get_db)):
            incident = Incident(**payload)
            db.add(incident)
            db.commit()
            background_tasks.add_task(analyze, incident.id)
        """,
    "a plain dict": """
        def create(payload, background_tasks: BackgroundTasks, db: Session = Depends(get_db)):
            data = {"id": 1}
            background_tasks.add_task(analyze, data, payload)
        """,
    "delay on a non-task without session arguments": """
        def tick(animation, frames):
            animation.delay(frames, 0.5)
        """,
    "add_task with only primitives": """
        def notify(background_tasks: BackgroundTasks):
            background_tasks.add_task(send_mail, "a@b.c", 3, None)
        """,
    "add_task on something that is not a BackgroundTasks": """
        def queue_up(queue, db: Session = Depends(get_db)):
            item = db.get(Item, 1)
            queue.add_task(handle, item)
        """,
    "added to a set, not a session": """
        def collect(background_tasks: BackgroundTasks):
            seen = set()
            item = make_item()
            seen.add(item)
            background_tasks.add_task(handle, item)
        """,
    "name re-assigned to its id": """
        def create(payload, background_tasks: BackgroundTasks, db: Session = Depends(get_db)):
            incident = db.get(Incident, payload.id)
            incident = incident.id
            background_tasks.add_task(analyze, incident)
        """,
    "a column query and a count": """
        def stats(background_tasks: BackgroundTasks, db: Session = Depends(get_db)):
            names = db.query(User.name).first()
            total = db.execute(select(func.count())).scalar_one()
            background_tasks.add_task(publish, names, total)
        """,
    "an unannotated db parameter is unknown": """
        def create(payload, background_tasks, db):
            background_tasks.add_task(analyze, db)
        """,
    "request.session is a dict": """
        def login(request, background_tasks: BackgroundTasks):
            background_tasks.add_task(audit, request.session)
        """,
    "the session of an HTTP client": """
        import requests

        def crawl(url, tasks: BackgroundTasks):
            session = requests.Session()
            page = session.get(url)
            tasks.add_task(store, session, page)
        """,
    "the task function itself is an ORM object": """
        def create(background_tasks: BackgroundTasks, db: Session = Depends(get_db)):
            job = db.get(Job, 1)
            background_tasks.add_task(job, 1)
        """,
    "apply_async options are not arguments": """
        def create(db: Session = Depends(get_db)):
            job = db.get(Job, 1)
            run_job.apply_async(args=[1], link=job)
        """,
}


@pytest.mark.parametrize("code", UNTOUCHED.values(), ids=UNTOUCHED.keys())
def test_leaves_alone(code: str) -> None:
    assert _messages(code) == []


def test_could_fire_needs_a_name_handed_over() -> None:
    assert OrmObjectToBackgroundTask.could_fire(ast.parse("t.add_task(f, incident)\n"))
    assert OrmObjectToBackgroundTask.could_fire(ast.parse("t.delay(db.session)\n"))
    assert not OrmObjectToBackgroundTask.could_fire(ast.parse("t.add_task(f, 1, 'x')\n"))
    assert not OrmObjectToBackgroundTask.could_fire(ast.parse("t.delay(1)\nprint(x)\n"))


# --- generated variants ------------------------------------------------------------------------

SESSIONS = {  # parameter or statement that gives the session, by style
    "annotated": ("from sqlalchemy.orm import Session\n\n", "{s}: Session", ""),
    "depends": ("", "{s}=Depends(get_db)", ""),
    "sessionmaker": (
        "from sqlalchemy.orm import sessionmaker\n\nFactory = sessionmaker()\n\n",
        "",
        "{s} = Factory()\n",
    ),
}
FETCHES = {  # how the object is obtained, and whether it is an ORM object
    "{o} = {s}.get(Model, key)": True,
    "{o} = {s}.query(Model).filter(Model.id == key).first()": True,
    "{o} = {s}.scalars(select(Model)).one()": True,
    "{o} = Model(key=key)\n{s}.add({o})": True,
    "{o} = {s}.query(Model.key).first()": False,
    "{o} = key": False,
    "{o} = {{'key': key}}": False,
}
CALLS = (
    "background_tasks.add_task(work, {args})",
    "work.delay({args})",
    "work.apply_async(args=[{args}])",
)


@st.composite
def programs(draw: st.DrawFn) -> tuple[str, bool, bool]:
    style = draw(st.sampled_from(sorted(SESSIONS)))
    header, parameter, statement = SESSIONS[style]
    session = draw(st.sampled_from(("db", "session", "sess")))
    obj = draw(st.sampled_from(("incident", "item", "row")))
    fetch = draw(st.sampled_from(sorted(FETCHES)))
    handed = draw(
        st.lists(st.sampled_from(("obj", "obj.id", "session", "literal")), min_size=1, max_size=3, unique=True)
    )
    spelled = {"obj": obj, "obj.id": f"{obj}.id", "session": session, "literal": "'x'"}
    args = ", ".join(spelled[part] for part in handed)
    call = draw(st.sampled_from(CALLS)).format(args=args)
    parameters = ", ".join(p for p in ("key", "background_tasks: BackgroundTasks", parameter.format(s=session)) if p)
    comment = "    # hand it over\n" if draw(st.booleans()) else ""
    body = statement.format(s=session) + fetch.format(o=obj, s=session) + "\n" + comment + call + "\n"
    code = f"{header}def endpoint({parameters}):\n" + textwrap.indent(body, "    ")
    reports = ("obj" in handed and FETCHES[fetch]) or "session" in handed
    return code, reports, "obj" in handed and FETCHES[fetch]


@settings(max_examples=40, deadline=None)
@given(programs())
def test_generated_variants_report_exactly_the_objects_and_sessions(program: tuple[str, bool, bool]) -> None:
    code, reports, orm_object = program
    compile(code, "generated.py", "exec")
    messages = _messages(code)
    assert len(messages) == (1 if reports else 0), code
    if messages:
        assert ("is an ORM object" in messages[0]) == orm_object
    assert run_rules(code, RULES).fixed is None


_HANDED = "def view({parameters}):\n{body}    background_tasks.add_task(work, {handed})\n"


@pytest.mark.parametrize(
    ("parameters", "body", "handed", "possible"),
    [
        ("background_tasks, case", "", "case_id=case.id", False),  # an attribute, not the object
        ("background_tasks, db_session: DbSession", "", "db_session=db_session", False),  # not SQLAlchemy's class
        ("background_tasks, db: Session", "", "db", True),
        ("background_tasks, db: S", "", "db", False),
        ("background_tasks, db=Depends(get_db)", "", "db", True),
        ("background_tasks, db: Annotated[object, Depends(get_session)]", "", "db", True),
        ("background_tasks, x", "    db.add(x)\n", "x", True),
        ("background_tasks", "    old = CaseRead.from_orm(case)\n", "old", True),  # any project may know the callee
        ("background_tasks", "    row = await db.get(Case, 1)\n", "row", True),
        ("background_tasks", "    row = await fetch(1)\n", "row", False),
        ("background_tasks", "    row = 1\n    row = db.get(Case, row)\n", "row", False),  # bound twice
        ("background_tasks", "    for row in rows:\n        pass\n", "row", False),
        ("background_tasks", "", "db.session", True),
    ],
)
def test_could_fire_asks_how_the_handed_name_is_bound(parameters: str, body: str, handed: str, possible: bool) -> None:
    """A handed name is reported only when its function binds it once, as a session parameter,
    a call's value or an object added to a session."""
    code = _HANDED.format(parameters=parameters, body=body, handed=handed)
    assert OrmObjectToBackgroundTask.could_fire(ast.parse(code)) is possible


def test_could_fire_in_asks_the_project_about_factories() -> None:
    code = "def view(background_tasks):\n    old = CaseRead.from_orm(case)\n    background_tasks.add_task(work, old)\n"
    assert not OrmObjectToBackgroundTask.could_fire_in(ast.parse(code), Settings(), ProjectView.empty())
    aliased = "from sqlalchemy.orm import Session as S\n\n" + code.replace("CaseRead.from_orm", "S")
    assert OrmObjectToBackgroundTask.could_fire_in(ast.parse(aliased), Settings(), ProjectView.empty())
