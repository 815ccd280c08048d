"""Deleting a user's messages one conversation at a time leaves half of them deleted (seed 001 #5, rule UL302).

`delete_messages()` deletes the messages of each conversation with its own `DELETE` and commits
after each one. The database refuses to delete the messages of conversation 3 (a trigger stands
in for a lock, a foreign key or a crash): by then the messages of conversations 1 and 2 are
committed as deleted, and the rollback in `main()` only undoes the failed statement. After
`unleak apply`, one `DELETE ... WHERE conversation_id IN (...)` fails as a whole: nothing is deleted.

Run: `python purge.py` (a fresh SQLite file in a temporary directory each time).
Exit status 0: the failed delete changed nothing; 1: it left the messages half deleted.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from sqlalchemy import ForeignKey, create_engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

MESSAGES_PER_CONVERSATION = 2
LOCKED_CONVERSATION = 3
# The injected failure: the database refuses to delete the messages of the third conversation.
LOCK = f"""
CREATE TRIGGER message_locked BEFORE DELETE ON message
WHEN old.conversation_id = {LOCKED_CONVERSATION}
BEGIN SELECT RAISE(ABORT, 'conversation {LOCKED_CONVERSATION} is locked'); END
"""


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "user_account"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    conversations: Mapped[list[Conversation]] = relationship(order_by="Conversation.id")


class Conversation(Base):
    __tablename__ = "conversation"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))


class Message(Base):
    __tablename__ = "message"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"))
    text: Mapped[str]


def delete_messages(session: Session, user: User) -> None:
    # one DELETE per conversation, committed as it goes
    for conversation in user.conversations:
        session.query(Message).filter(Message.conversation_id == conversation.id).delete()
        session.commit()


def seed(session: Session) -> None:
    user = User(id=1, name="ada")
    session.add(user)
    for number in range(1, LOCKED_CONVERSATION + 1):
        session.add(Conversation(id=number, user_id=user.id))
        for _ in range(MESSAGES_PER_CONVERSATION):
            session.add(Message(conversation_id=number, text=f"hello from {number}"))
    session.commit()


def messages_left(session: Session) -> dict[int, int]:
    rows = session.execute(
        select(Conversation.id, func.count(Message.id))
        .outerjoin(Message, Message.conversation_id == Conversation.id)
        .group_by(Conversation.id)
        .order_by(Conversation.id)
    )
    return {conversation: count for conversation, count in rows}


def main(folder: Path) -> int:
    engine = create_engine(f"sqlite:///{folder / 'chat.db'}")
    try:
        Base.metadata.create_all(engine)
        with engine.begin() as connection:
            connection.exec_driver_sql(LOCK)
        with Session(engine) as session:
            seed(session)
            user = session.get_one(User, 1)
            try:
                delete_messages(session, user)
            except SQLAlchemyError as error:
                session.rollback()
                print(f"delete failed: {error.orig}")
        with Session(engine) as session:
            left = messages_left(session)
    finally:
        engine.dispose()
    print("messages left per conversation:", ", ".join(f"{key}: {count}" for key, count in left.items()))
    if len(set(left.values())) > 1:
        print("half deleted: the messages of some conversations are gone, the others remain")
        return 1
    print("all or nothing: the failed delete left no half-deleted conversations")
    return 0


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as temporary:
        status = main(Path(temporary))
    sys.exit(status)
