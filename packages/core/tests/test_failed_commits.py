"""A COMMIT that fails is never applied later (SPEC §8).

SQLite answers a COMMIT it cannot complete within the busy timeout (another connection is
still reading) with "database is locked" and keeps the transaction open. Before
`guard_engine`, SQLAlchemy returned that connection to the pool as it was, and the next
transaction on it committed the failed one's writes too: a retried increment was applied
twice (seen as 52 increments out of 50 in CI).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from kysera.core import LockTimeoutError, guard_engine, retry_transaction
from kysera.core.testing._sqlite import use_real_transactions

metadata = sa.MetaData()
notes = sa.Table(
    "fc_notes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("text", sa.String(20), nullable=False),
)


def sqlite_engine(path: Path, *, real_transactions: bool) -> AsyncEngine:
    # A short busy timeout: the blocked COMMIT gives up at once.
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{path}",
        connect_args={"timeout": 0.05},
        poolclass=AsyncAdaptedQueuePool,  # the default from SQLAlchemy 2.0.38 on
        pool_size=1,
    )
    if real_transactions:
        use_real_transactions(engine)
    return engine


@pytest_asyncio.fixture(loop_scope="session", params=[True, False], ids=["recipe", "plain"])
async def engine(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[AsyncEngine]:
    engine = sqlite_engine(tmp_path / "commits.db", real_transactions=request.param)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def note_ids(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as connection:
        return list(
            (await connection.execute(sa.select(notes.c.id).order_by(notes.c.id))).scalars()
        )


async def reader_holding_a_read_lock(path: str) -> tuple[AsyncEngine, AsyncConnection]:
    reader = create_async_engine(path)
    use_real_transactions(reader)
    connection = await reader.connect()
    await connection.begin()
    await connection.execute(sa.select(notes))
    return reader, connection


async def write_note(connection: AsyncConnection) -> None:
    await connection.execute(notes.insert(), {"id": 1, "text": "failed"})


async def test_a_commit_refused_as_locked_is_not_applied_by_the_next_transaction(
    engine: AsyncEngine,
) -> None:
    reader, reading = await reader_holding_a_read_lock(str(engine.url))
    try:
        with pytest.raises(LockTimeoutError):
            await retry_transaction(engine, write_note, max_attempts=1)
    finally:
        await reading.rollback()
        await reading.close()
        await reader.dispose()

    # The pool's only connection is the one whose COMMIT failed: the next transaction on it
    # writes its own row and nothing else.
    async with engine.begin() as connection:
        await connection.execute(notes.insert(), {"id": 2, "text": "next"})
    assert await note_ids(engine) == [2]


async def test_a_retried_write_whose_commit_was_refused_is_applied_once(
    engine: AsyncEngine,
) -> None:
    reader, reading = await reader_holding_a_read_lock(str(engine.url))
    attempts = 0

    async def write_once_the_reader_is_gone(connection: AsyncConnection) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 2:  # the first COMMIT failed: let the retry commit
            await reading.rollback()
        await write_note(connection)

    try:
        await retry_transaction(
            engine, write_once_the_reader_is_gone, max_attempts=3, base_delay=0.001
        )
    finally:
        await reading.close()
        await reader.dispose()
    assert attempts == 2
    assert await note_ids(engine) == [1]


async def test_guard_engine_is_idempotent(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert guard_engine(engine) is engine
    assert guard_engine(engine) is engine
    await engine.dispose()
