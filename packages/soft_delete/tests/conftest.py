"""Fixtures of the soft-delete tests: the tables, created once per database and emptied
before every test that uses them, and an ORM with the plugin."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core.pytest_plugin import kysera_schema_fixture
from kysera.repository import Orm, create_orm
from kysera.soft_delete import SoftDeletePlugin

sys.path.insert(0, str(Path(__file__).parent))

from soft_delete_support import metadata

# The engine, with every test table empty.
engine = kysera_schema_fixture(metadata)


@pytest_asyncio.fixture(loop_scope="session")
async def orm(engine: AsyncEngine) -> Orm:
    return await create_orm(engine, plugins=[SoftDeletePlugin()])
