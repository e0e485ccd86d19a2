"""Fixtures of the TTL tests: the tables (emptied before each test) and an ORM with the plugin."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core.pytest_plugin import kysera_schema_fixture

sys.path.insert(0, str(Path(__file__).parent))

from ttl_support import metadata

from kysera.repository import Orm, create_orm
from kysera.ttl import TTLPlugin

engine = kysera_schema_fixture(metadata)


@pytest_asyncio.fixture(loop_scope="session")
async def orm(engine: AsyncEngine) -> Orm:
    return await create_orm(engine, plugins=[TTLPlugin()], relations="foreign_keys")
