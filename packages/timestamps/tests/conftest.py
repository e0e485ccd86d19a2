"""Fixtures of the timestamps tests: the tables (created once per database, emptied before
each test), a hand-moved clock and an ORM with the plugin on that clock."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core.pytest_plugin import kysera_schema_fixture

sys.path.insert(0, str(Path(__file__).parent))

from timestamps_support import Clock, metadata

from kysera.repository import Orm, create_orm
from kysera.timestamps import TimestampsPlugin

# The engine, with every test table empty.
engine = kysera_schema_fixture(metadata)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest_asyncio.fixture(loop_scope="session")
async def orm(engine: AsyncEngine, clock: Clock) -> Orm:
    """An ORM whose timestamps come from ``clock``."""
    return await create_orm(engine, plugins=[TimestampsPlugin(now=clock)])
