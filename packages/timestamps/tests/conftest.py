"""Fixtures of the timestamps tests: the tables (created once per database, emptied before
each test), a hand-moved clock and an ORM with the plugin on that clock."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

sys.path.insert(0, str(Path(__file__).parent))

from timestamps_support import Clock, metadata

from kysera.repository import Orm, create_orm
from kysera.timestamps import TimestampsPlugin


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def schema(kysera_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The test tables on this database (dropped at the end of the session)."""
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
    yield kysera_engine
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)


@pytest_asyncio.fixture(loop_scope="session")
async def engine(schema: AsyncEngine) -> AsyncEngine:
    """The engine, with every test table empty."""
    async with schema.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            await connection.execute(table.delete())
    return schema


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest_asyncio.fixture(loop_scope="session")
async def orm(engine: AsyncEngine, clock: Clock) -> Orm:
    """An ORM whose timestamps come from ``clock``."""
    return await create_orm(engine, plugins=[TimestampsPlugin(now=clock)])
