"""retry_transaction really isolates (SPEC §8, issue 15 item 5): concurrent read-modify-write
transactions lose no update, on every database.

On SQLite the driver used to begin the transaction at the first write, so ``fn``'s read
ran outside it and 50 concurrent increments left 1. Now the transaction begins before ``fn``
runs (``BEGIN IMMEDIATE`` for SERIALIZABLE: writers queue at BEGIN), both on engines with
SQLAlchemy's SQLite transaction recipe (the pytest plugin's) and on plain engines.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from kysera.core import retry_transaction
from kysera.core.capture import capture_queries

metadata = sa.MetaData()
counters = sa.Table(
    "rti_counters",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("value", sa.Integer, nullable=False),
)
TASKS = 50


@pytest_asyncio.fixture(loop_scope="session")
async def counter(kysera_engine: AsyncEngine) -> AsyncIterator[None]:
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
        await connection.execute(counters.insert(), {"id": 1, "value": 0})
    yield
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)


async def increment(connection: AsyncConnection) -> None:
    statement = sa.select(counters.c.value).where(counters.c.id == 1)
    value = (await connection.execute(statement)).scalar_one()
    await asyncio.sleep(0)  # let the other tasks read too
    await connection.execute(sa.update(counters).where(counters.c.id == 1).values(value=value + 1))


async def run_increments(engine: AsyncEngine) -> int:
    await asyncio.gather(
        *(
            retry_transaction(
                engine,
                increment,
                isolation_level="SERIALIZABLE",
                max_attempts=200,
                base_delay=0.001,
                max_delay=0.05,
            )
            for _ in range(TASKS)
        )
    )
    async with engine.connect() as connection:
        return int((await connection.execute(sa.select(counters.c.value))).scalar_one())


async def test_serializable_increments_lose_nothing(
    kysera_engine: AsyncEngine, counter: None
) -> None:
    assert await run_increments(kysera_engine) == TASKS


@pytest.mark.kysera_databases("sqlite")
async def test_serializable_on_a_plain_sqlite_engine(
    kysera_engine: AsyncEngine, counter: None
) -> None:
    # No transaction recipe: the sqlite3 module's own (legacy) transaction handling.
    plain = create_async_engine(kysera_engine.url)
    try:
        assert await run_increments(plain) == TASKS
    finally:
        await plain.dispose()


@pytest.mark.kysera_databases("sqlite")
async def test_default_level_reads_inside_the_transaction_on_sqlite(
    kysera_engine: AsyncEngine, counter: None
) -> None:
    # Without a level the transaction is deferred but begun before fn: a second connection
    # that writes in between makes the first fail (and retry) rather than lose the update.
    assert await run_increments_default(kysera_engine) == TASKS


async def run_increments_default(engine: AsyncEngine) -> int:
    await asyncio.gather(
        *(
            retry_transaction(engine, increment, max_attempts=500, base_delay=0.001, max_delay=0.02)
            for _ in range(TASKS)
        )
    )
    async with engine.connect() as connection:
        return int((await connection.execute(sa.select(counters.c.value))).scalar_one())


@pytest.mark.kysera_databases("sqlite")
async def test_begin_immediate_is_sent_before_fn(kysera_engine: AsyncEngine, counter: None) -> None:
    seen: list[bool] = []

    async def look(connection: AsyncConnection) -> None:
        driver = await connection.get_raw_connection()
        seen.append(bool(driver.driver_connection.in_transaction))  # type: ignore[union-attr]

    with capture_queries(kysera_engine):
        await retry_transaction(kysera_engine, look, isolation_level="SERIALIZABLE")
    assert seen == [True]
