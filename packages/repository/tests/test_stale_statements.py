"""Reads and writes keep working after a schema change made while the pool is warm.

On PostgreSQL, asyncpg prepares statements per pooled connection; after ``ALTER TABLE ...
TYPE`` each of them fails once (InvalidCachedStatementError) and the driver drops what it
had prepared. A repository outside a caller's transaction runs such work again; inside a
transaction the error is the caller's, as `StaleStatementError` (transient).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import StaleStatementError, is_transient_error
from kysera.repository import create_orm

metadata = sa.MetaData()
notes = sa.Table(
    "stale_notes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("title", sa.String(20), nullable=False),
)

WIDEN = {
    "postgresql": "ALTER TABLE stale_notes ALTER COLUMN title TYPE varchar(40)",
    "mysql": "ALTER TABLE stale_notes MODIFY title VARCHAR(40) NOT NULL",
    "sqlite": "ALTER TABLE stale_notes ADD COLUMN body TEXT",
}


@pytest_asyncio.fixture(loop_scope="session")
async def engine(kysera_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
        await connection.execute(notes.insert(), [{"id": i, "title": f"n{i}"} for i in range(5)])
    try:
        yield kysera_engine
    finally:
        async with kysera_engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
        await kysera_engine.dispose()  # no statement prepared for the dropped table stays


async def test_a_warm_pool_survives_a_column_type_change(engine: AsyncEngine) -> None:
    repo = (await create_orm(engine)).repository(notes)

    async def use_every_path(round_: int) -> None:
        await repo.find({"title": {"$like": "n%"}}, order_by="id", limit=3)
        await repo.find_by_id(1)
        await repo.count({"title": "n2"})
        await repo.paginate_cursor(limit=2)
        await repo.update(round_, {"title": f"r{round_}"})

    # Several pooled connections, each with its statements prepared.
    for _ in range(2):
        await asyncio.gather(*(use_every_path(i) for i in range(4)))
    async with engine.begin() as connection:
        await connection.execute(sa.text(WIDEN[engine.dialect.name]))
    await asyncio.gather(*(use_every_path(i) for i in range(4)))
    assert (await repo.get(3))["title"] == "r3"


def test_a_stale_statement_is_transient() -> None:
    error = StaleStatementError("cached statement plan is invalid")
    assert error.code == "DATABASE_STALE_STATEMENT"
    assert is_transient_error(error)


@pytest.mark.parametrize("dialect", ["postgresql"])
def test_asyncpg_invalid_cached_statement_is_classified(dialect: str) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    from kysera.core import parse_database_error

    driver_error = asyncpg.exceptions.InvalidCachedStatementError("cached plan is invalid")
    assert isinstance(parse_database_error(driver_error, dialect), StaleStatementError)
