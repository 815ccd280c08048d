"""Requests that get-or-create the same tag race each other (rule UL301, the two-statement form).

`get_or_create_tag` looks the tag up by name and creates it when the lookup found nothing, the
way most applications write it (`tag = q.first()`, then `if tag is None: ...`). Four requests
ask for the same new tag at once; a barrier lines them up between the lookup and the insert,
which is what a busy server does by chance: they all see "no tag", they all insert, and all
but one crash on the unique name with `IntegrityError`. After `unleak apply` the loser rolls
back and looks the tag up again, so every request gets the winner's row.

Run: `python tags.py`. Exit status 0: every request got the same tag and there is one row;
1: a request crashed or got something else.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path

from sqlalchemy import Column, Integer, String, create_engine, func, select
from sqlalchemy.orm import Session, declarative_base

REQUESTS = 4
LINE_UP_SECONDS = 5.0

Base = declarative_base()


class Tag(Base):
    __tablename__ = "tags"
    id = Column(Integer, primary_key=True)
    name = Column(String, unique=True, nullable=False)


line_up = threading.Barrier(REQUESTS)


def lined_up(name: str) -> str:
    line_up.wait(LINE_UP_SECONDS)  # every request has done its lookup by now
    return name


def get_or_create_tag(db: Session, name: str) -> Tag:
    tag = db.query(Tag).filter(Tag.name == name).first()
    if tag is None:
        tag = Tag(name=lined_up(name))
        db.add(tag)
        db.commit()
    return tag


def handle_request(engine, number: int, got: dict[int, object]) -> None:
    with Session(engine) as db:
        try:
            got[number] = get_or_create_tag(db, "python").id
        except Exception as error:  # the request would fail with a 500 here
            got[number] = type(error).__name__


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'app.db'}", connect_args={"timeout": 10})
        Base.metadata.create_all(engine)
        got: dict[int, object] = {}
        requests = [threading.Thread(target=handle_request, args=(engine, n, got)) for n in range(1, REQUESTS + 1)]
        for request in requests:
            request.start()
        for request in requests:
            request.join()
        with Session(engine) as db:
            rows = db.scalar(select(func.count()).select_from(Tag))
        engine.dispose()
    answers = sorted(got.values(), key=str)
    for answer in sorted(set(answers), key=str):
        print(f"{answers.count(answer)} of {REQUESTS} requests got {'tag id ' if isinstance(answer, int) else ''}{answer}")
    print(f"tag rows: {rows}")
    return 0 if len(set(answers)) == 1 and isinstance(answers[0], int) and rows == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
