"""Fixtures of the row-level security tests: the tables (created once per database, emptied
before each test) and an ORM with the test policies."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core.pytest_plugin import kysera_schema_fixture

sys.path.insert(0, str(Path(__file__).parent))

from rls_support import metadata, rls_orm

from kysera.repository import Orm

# The engine, with every test table empty.
engine = kysera_schema_fixture(metadata)


@pytest_asyncio.fixture(loop_scope="session")
async def orm(engine: AsyncEngine) -> Orm:
    """An ORM with the test policies (application-level)."""
    return await rls_orm(engine)


@pytest_asyncio.fixture(loop_scope="session")
async def seeded(orm: Orm) -> Orm:
    """``orm`` over three projects (each with a task) per tenant 1 and 2."""
    from test_paths import seed

    await seed(orm)
    return orm
