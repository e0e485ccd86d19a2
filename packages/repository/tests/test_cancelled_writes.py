"""A cancelled write on SQLite leaves no connection holding the write lock (issue 15 item 7).

Cancelling ``bulk_update`` while a statement ran (twice, as a timeout around a cancelled
task does) used to drop the connection outside the pool with its transaction open: every
later writer failed with "database is locked", even after ``engine.dispose()``. Now the
transaction runs to the end of its statements and rolls back; the next write succeeds, and
the table holds all of a change or none of it.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core.pytest_plugin import create_test_engine, kysera_schema_fixture
from kysera.repository import create_repository

metadata = sa.MetaData()
rows = sa.Table(
    "cw_rows",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("value", sa.Integer, nullable=False),
)
engine = kysera_schema_fixture(metadata)
COUNT = 2000
TRIALS = 40


@pytest.mark.kysera_databases("sqlite")
async def test_cancelled_bulk_updates_release_the_write_lock(engine: AsyncEngine) -> None:
    # A short busy timeout: a lock left behind fails the next write within a second.
    quick = create_test_engine(engine.url, connect_args={"timeout": 1})
    try:
        async with quick.begin() as connection:
            await connection.execute(
                rows.insert(), [{"id": n, "value": 0} for n in range(1, COUNT + 1)]
            )
        repo = create_repository(quick, rows)
        for trial in range(1, TRIALS + 1):
            task = asyncio.create_task(
                repo.bulk_update([(n, {"value": trial}) for n in range(1, COUNT + 1)])
            )
            await asyncio.sleep(0.002 * (trial % 20))
            task.cancel()
            if trial % 2:
                await asyncio.sleep(0)
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task  # cancelled (or, on a fast machine, done already)

            await repo.update(1, {"value": -trial})  # the write lock is free
            values = {row["value"] for row in await repo.find({"id": {"$gt": 1}})}
            assert len(values) == 1  # all of a bulk update, or none of it
    finally:
        await quick.dispose()
