"""Seed 001 #2: a service method that commits, fails on a unique constraint and swallows the
error leaves its session in a failed transaction; the next call on the same session fails.

`TagService.create()` adds a tag and commits. The second "urgent" violates the unique name, and
the handler logs and returns None without rolling back. The service keeps its session, so the
next, valid call ("billing") raises PendingRollbackError. Exit 1 when that happens.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import IntegrityError, PendingRollbackError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Tag(Base):
    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)


class TagService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(self, name: str) -> Tag | None:
        try:
            tag = Tag(name=name)
            self.session.add(tag)
            self.session.commit()
        except IntegrityError:
            print(f"create {name!r}: already exists")
            return None
        print(f"create {name!r}: ok")
        return tag


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'app.db'}")
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            service = TagService(session)
            try:
                for name in ("urgent", "urgent", "billing"):
                    service.create(name)
            except PendingRollbackError:
                print("create 'billing': PendingRollbackError: the session still holds the failed transaction")
                return 1
            print(f"tags: {session.scalar(select(func.count()).select_from(Tag))}")
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
