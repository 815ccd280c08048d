"""Workers that seed the admin user at start-up race each other (seed 003 #2, rule UL301).

Every worker runs `seed_admin` against one SQLite file when it starts. The seeding checks for the
row first and inserts it when it is missing. Four workers start together; a barrier lines them
up between the check and the insert, which is what a busy server does by chance: they all see
"no admin", they all insert, and all but one crash on the primary key with `IntegrityError`.

Run: `python seed.py`. Exit status 0: every worker started and there is one admin;
1: a worker crashed.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path

from sqlalchemy import Column, Integer, String, create_engine, func, select
from sqlalchemy.orm import Session, declarative_base

WORKERS = 4
LINE_UP_SECONDS = 5.0

Base = declarative_base()


class User(Base):
    __tablename__ = "users"
    id = Column(Integer, primary_key=True)
    email = Column(String, nullable=False)


line_up = threading.Barrier(WORKERS)


def admin_email() -> str:
    line_up.wait(LINE_UP_SECONDS)  # every worker has done its check by now
    return "admin@example.com"


def seed_admin(db: Session) -> None:
    if not db.query(User).filter(User.id == 1).first():
        db.add(User(id=1, email=admin_email()))
        db.commit()


def start_worker(engine, number: int, crashes: dict[int, str]) -> None:
    with Session(engine) as db:
        try:
            seed_admin(db)
        except Exception as error:  # the worker process would die here
            crashes[number] = type(error).__name__


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'app.db'}", connect_args={"timeout": 10})
        Base.metadata.create_all(engine)
        crashes: dict[int, str] = {}
        workers = [threading.Thread(target=start_worker, args=(engine, n, crashes)) for n in range(1, WORKERS + 1)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        with Session(engine) as db:
            admins = db.scalar(select(func.count()).select_from(User))
        engine.dispose()
    for name in sorted(set(crashes.values())):
        count = sum(1 for crash in crashes.values() if crash == name)
        print(f"{count} of {WORKERS} workers crashed at start-up with {name}")
    if not crashes:
        print(f"all {WORKERS} workers started")
    print(f"admin rows: {admins}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
