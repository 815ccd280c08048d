"""Revoking tokens with a commit per row leaves the revocation half done (rule UL302, the per-object form).

`revoke_all()` hands each token to `session.delete(token)` and commits after each one. The
database refuses to delete token 3 (a trigger stands in for a lock, a foreign key or a crash):
by then tokens 1 and 2 are committed as deleted, and the rollback in `main()` only undoes the
failed row. After `unleak apply` the loop deletes every token and commits once, after it: the
failure rolls the whole revocation back, and nothing is half done.

Run: `python revoke.py` (a fresh SQLite file in a temporary directory each time).
Exit status 0: the failed revocation changed nothing; 1: it left the tokens half deleted.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

TOKENS = 5
LOCKED_TOKEN = 3
# The injected failure: the database refuses to delete the third token.
LOCK = f"""
CREATE TRIGGER token_locked BEFORE DELETE ON token
WHEN old.id = {LOCKED_TOKEN}
BEGIN SELECT RAISE(ABORT, 'token {LOCKED_TOKEN} is locked'); END
"""


class Base(DeclarativeBase):
    pass


class Token(Base):
    __tablename__ = "token"
    id: Mapped[int] = mapped_column(primary_key=True)
    user: Mapped[str]


def revoke_all(session: Session, tokens: list[Token]) -> None:
    for token in tokens:
        session.delete(token)
        session.commit()


def main(folder: Path) -> int:
    engine = create_engine(f"sqlite:///{folder / 'auth.db'}")
    try:
        Base.metadata.create_all(engine)
        with engine.begin() as connection:
            connection.exec_driver_sql(LOCK)
        with Session(engine) as session:
            session.add_all([Token(id=number, user="ada") for number in range(1, TOKENS + 1)])
            session.commit()
            tokens = list(session.scalars(select(Token).order_by(Token.id)))
            try:
                revoke_all(session, tokens)
            except SQLAlchemyError as error:
                session.rollback()
                print(f"revoke failed: {error.orig}")
        with Session(engine) as session:
            left = list(session.scalars(select(Token.id).order_by(Token.id)))
    finally:
        engine.dispose()
    print("tokens left:", ", ".join(map(str, left)))
    if 0 < len(left) < TOKENS:
        print("half revoked: some tokens are gone, the others remain")
        return 1
    print("all or nothing: the failed revocation left no tokens half revoked")
    return 0


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as temporary:
        status = main(Path(temporary))
    sys.exit(status)
