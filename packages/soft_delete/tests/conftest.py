"""Fixtures of the soft-delete tests: the tables, created once per database and emptied
before every test that uses them."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.repository import Orm, create_orm
from kysera.soft_delete import SoftDeletePlugin

sys.path.insert(0, str(Path(__file__).parent))

from soft_delete_support import metadata


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


@pytest_asyncio.fixture(loop_scope="session")
async def orm(engine: AsyncEngine) -> Orm:
    return await create_orm(engine, plugins=[SoftDeletePlugin()])
