"""Two requests tag their notes with the same new tag at once (rule UL301, the caller-commits form).

`ensure_tag` creates the tag when it is missing; the caller adds its note first and commits both
together, as a request handler does. Two requests run at once and wait for each other between
the check and the insert: both see "no tag", both add it, and the second commit fails on the
tag's primary key -- taking its note down with it. After `unleak apply` the insert runs in a SAVEPOINT
(`with db.begin_nested():`), so the conflict rolls back only the tag and the note is kept.

The sessions come from `sessionmaker(autoflush=False)`, as in FastAPI's tutorial.

Run: `python tags.py`. Exit status 0: both notes were saved; 1: a request failed.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path

from sqlalchemy import Column, ForeignKey, Integer, String, create_engine, func, select
from sqlalchemy.orm import Session, declarative_base, sessionmaker

REQUESTS = 2
CATCH_UP_SECONDS = 0.5

Base = declarative_base()


class Tag(Base):
    __tablename__ = "tags"
    name = Column(String, primary_key=True)


class Note(Base):
    __tablename__ = "notes"
    id = Column(Integer, primary_key=True)
    text = Column(String, nullable=False)
    tag = Column(String, ForeignKey("tags.name"), nullable=False)


line_up = threading.Barrier(REQUESTS)


def lined_up(name: str) -> str:
    """Wait (briefly) until the other request gets here too, as a slow request would.

    SQLite lets one transaction write at a time: a request that has already written (the fixed
    code flushes the note first) holds the lock, the other cannot get here, and the wait ends
    after CATCH_UP_SECONDS.
    """
    try:
        line_up.wait(CATCH_UP_SECONDS)
    except threading.BrokenBarrierError:
        pass
    return name


def ensure_tag(db: Session, name: str) -> None:
    if db.get(Tag, name) is None:
        db.add(Tag(name=lined_up(name)))


def save_note(SessionLocal: sessionmaker, text: str, failures: dict[str, str]) -> None:
    with SessionLocal() as db:
        try:
            db.add(Note(text=text, tag="urgent"))
            ensure_tag(db, "urgent")
            db.commit()
        except Exception as error:  # the request would answer 500 here
            failures[text] = type(error).__name__


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'app.db'}", connect_args={"timeout": 10})
        Base.metadata.create_all(engine)
        SessionLocal = sessionmaker(engine, autoflush=False)
        failures: dict[str, str] = {}
        texts = [f"note {number}" for number in range(1, REQUESTS + 1)]
        requests = [threading.Thread(target=save_note, args=(SessionLocal, text, failures)) for text in texts]
        for request in requests:
            request.start()
        for request in requests:
            request.join()
        with SessionLocal() as db:
            notes = db.scalar(select(func.count()).select_from(Note))
            tags = db.scalar(select(func.count()).select_from(Tag))
        engine.dispose()
    for name in sorted(set(failures.values())):
        count = sum(1 for failure in failures.values() if failure == name)
        print(f"{count} of {REQUESTS} requests failed with {name}")
    print(f"notes saved: {notes}, tags: {tags}")
    return 1 if failures or notes != REQUESTS else 0


if __name__ == "__main__":
    sys.exit(main())
