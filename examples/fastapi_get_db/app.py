"""Seed 002 #22 in its FastAPI form: `get_db` creates the session inside its `try`.

`SessionLocal()` connects at once (like a pool pre-ping), and the SQLite file lives in a folder
that does not exist, so it raises SQLAlchemy's OperationalError. The dependency's `finally:
db.close()` then runs on a name that was never bound: the request fails with UnboundLocalError,
and the database error is only in its `__context__`. The app runs under FastAPI's TestClient;
exit 1 when the real error is hidden.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

MISSING_FOLDER = Path(tempfile.gettempdir()) / "unleak-example-no-such-folder" / "events.db"
engine = create_engine(f"sqlite:///{MISSING_FOLDER}")
_factory = sessionmaker(bind=engine)


def SessionLocal() -> Session:
    """A session whose connection is known to work: it connects now, not at the first query."""
    session = _factory()
    session.connection()
    return session


def get_db():
    try:
        db = SessionLocal()
        yield db
    finally:
        db.close()


app = FastAPI()


@app.get("/events/count")
def count_events(db: Session = Depends(get_db)) -> dict[str, int]:
    return {"count": db.execute(text("select count(*) from events")).scalar_one()}


def main() -> int:
    client = TestClient(app)
    try:
        client.get("/events/count")
    except OperationalError:
        print("the request failed with the database error: OperationalError")
        return 0
    except UnboundLocalError as error:
        print(f"the request failed with UnboundLocalError: {error}")
        print(f"the database error is only in __context__: {type(error.__context__).__name__}")
        return 1
    print("the request succeeded: the database folder exists after all")
    return 2


if __name__ == "__main__":
    sys.exit(main())
