"""An `AsyncSession.delete()` that is never awaited deletes nothing (rule UL303).

`remove_expired` deletes the expired tokens and commits, on an `AsyncSession` over SQLite
(aiosqlite). `session.delete(token)` is a coroutine on an `AsyncSession`: called without
`await` it never runs, so the commit has nothing to write and the tokens stay. Python only warns
"coroutine ... was never awaited" when the coroutine is garbage-collected. After `unleak apply`
the call is awaited and the tokens are gone.

Run: `python cleanup.py`. Exit status 0: the expired tokens were deleted; 1: they are still there.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import warnings
from pathlib import Path

from sqlalchemy import Boolean, Column, Integer, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class Token(Base):
    __tablename__ = "tokens"
    id = Column(Integer, primary_key=True)
    expired = Column(Boolean, nullable=False)


async def remove_expired(session: AsyncSession) -> int:
    tokens = (await session.scalars(select(Token).where(Token.expired))).all()
    for token in tokens:
        session.delete(token)
    await session.commit()
    return len(tokens)


async def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        engine = create_async_engine(f"sqlite+aiosqlite:///{Path(folder) / 'app.db'}")
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        make_session = async_sessionmaker(engine)
        async with make_session() as session:
            session.add_all([Token(id=n, expired=n <= 3) for n in range(1, 6)])
            await session.commit()
        async with make_session() as session:
            print(f"removing {await remove_expired(session)} expired tokens")
        async with make_session() as session:
            left = await session.scalar(select(func.count()).select_from(Token).where(Token.expired))
        await engine.dispose()
    print(f"expired tokens left: {left}")
    return 0 if left == 0 else 1


if __name__ == "__main__":
    warnings.simplefilter("ignore", RuntimeWarning)  # "coroutine ... was never awaited": the bug, shown by the count
    sys.exit(asyncio.run(main()))
