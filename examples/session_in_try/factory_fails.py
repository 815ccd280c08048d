"""Seed 002 #22: a session created inside `try` hides the error that stopped it being created.

`open_session()` connects right away (like a pool pre-ping), so when the database cannot be
opened it raises SQLAlchemy's OperationalError. `count_events()` creates the session inside its
`try`: the handler re-raises, then `finally: db.close()` runs on a name that was never bound and
the caller gets UnboundLocalError instead of the database error. Exit 1 when that happens.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

SessionLocal = sessionmaker()


def open_session() -> Session:
    """A session whose connection is known to work: it connects now, not at the first query."""
    session = SessionLocal()
    session.connection()
    return session


def count_events() -> int:
    try:
        db = open_session()
        return db.execute(text("select count(*) from events")).scalar_one()
    except OperationalError:
        print("handler: database error, re-raising")
        raise
    finally:
        db.close()


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        # SQLite cannot create a database file in a folder that does not exist: a real connect error.
        engine = create_engine(f"sqlite:///{Path(folder) / 'missing' / 'app.db'}")
        SessionLocal.configure(bind=engine)
        try:
            count_events()
        except UnboundLocalError as error:
            print(f"caller sees UnboundLocalError: {error}")
            print(f"the database error is only in __context__: {type(error.__context__).__name__}")
            return 1
        except OperationalError as error:
            print(f"caller sees the database error: OperationalError: {error.orig}")
            return 0
        finally:
            engine.dispose()
    return 2


if __name__ == "__main__":
    sys.exit(main())
