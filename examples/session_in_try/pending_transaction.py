"""Seed 002 #22 / seed 001 #2: an `except` handler that does not roll back keeps the failed
transaction open while it runs ("idle in transaction"), with the database's locks held.

`import_batch()` inserts a batch's rows, flushes them (the transaction now holds SQLite's write
lock), then validates the batch. A bad batch raises ValueError; the handler records the failure
with a session of its own. Without a rollback in the handler, the import's transaction still
holds the write lock, so recording the failure waits 0.2 s and fails with "database is locked":
the failure is lost. Exit 1 when that happens.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    batch: Mapped[int]
    name: Mapped[str]


class Failure(Base):
    __tablename__ = "failures"
    id: Mapped[int] = mapped_column(primary_key=True)
    batch: Mapped[int]
    reason: Mapped[str]


SessionLocal = sessionmaker()


def record_failure(batch: int, reason: str) -> None:
    with SessionLocal() as session:
        session.add(Failure(batch=batch, reason=reason))
        session.commit()


def validate(names: list[str]) -> None:
    bad = [name for name in names if not name.isalnum()]
    if bad:
        raise ValueError(f"invalid names {bad}")


def import_batch(batch: int, names: list[str]) -> None:
    db = SessionLocal()
    try:
        db.add_all([Item(batch=batch, name=name) for name in names])
        db.flush()  # the rows are sent: this transaction holds the write lock from here on
        validate(names)
        db.commit()
        print(f"batch {batch}: imported {names}")
    except ValueError as error:
        record_failure(batch, str(error))
        print(f"batch {batch}: rejected, failure recorded")
    finally:
        db.close()


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'app.db'}", connect_args={"timeout": 0.2})
        Base.metadata.create_all(engine)
        SessionLocal.configure(bind=engine)
        try:
            for batch, names in enumerate((["bolt", "nut"], ["washer", "bad name!"], ["gear"]), start=1):
                try:
                    import_batch(batch, names)
                except OperationalError as error:
                    print(f"batch {batch}: recording the failure failed: {error.orig}")
                    return 1
            with SessionLocal() as session:
                items = session.scalars(select(Item.name).order_by(Item.id)).all()
                failures = session.execute(select(Failure.batch, Failure.reason)).all()
            print(f"items: {items}")
            print(f"failures: {[tuple(failure) for failure in failures]}")
            return 0
        finally:
            engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
