"""Shared fixtures: an engine per configured database, cleaned of this package's tables."""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

# Every table these tests create (bookkeeping tables included) starts with this prefix.
TABLE_PREFIX = "mig_"


async def drop_test_tables(engine: AsyncEngine) -> None:
    """Drop every table whose name starts with ``mig_``, in foreign-key-safe order."""

    def drop(sync: sa.Connection) -> None:
        metadata = sa.MetaData()
        metadata.reflect(sync, only=lambda name, _: name.startswith(TABLE_PREFIX))
        metadata.drop_all(sync)

    async with engine.begin() as conn:
        await conn.run_sync(drop)


async def schema_snapshot(engine: AsyncEngine) -> dict[str, Any]:
    """The test tables' columns and indexes, and the rows of every bookkeeping table."""

    def inspect(sync: sa.Connection) -> dict[str, Any]:
        inspector = sa.inspect(sync)
        snapshot: dict[str, Any] = {}
        for name in sorted(inspector.get_table_names()):
            if not name.startswith(TABLE_PREFIX):
                continue
            columns = [(c["name"], str(c["type"])) for c in inspector.get_columns(name)]
            indexes = sorted(str(sorted(index.items())) for index in inspector.get_indexes(name))
            # Columns named in the statement: asyncpg's statement cache would reject a
            # cached "SELECT *" once a migration changed the table's shape.
            table = sa.Table(name, sa.MetaData(), autoload_with=sync)
            rows = sorted(map(tuple, sync.execute(sa.select(table)).all()))
            snapshot[name] = {"columns": columns, "indexes": indexes, "rows": rows}
        return snapshot

    async with engine.connect() as conn:
        return await conn.run_sync(inspect)


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    return {name for name in names if name.startswith(TABLE_PREFIX)}


@pytest.fixture
async def engine(kysera_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The session's engine for this database, with no ``mig_`` tables before or after."""
    await drop_test_tables(kysera_engine)
    yield kysera_engine
    await drop_test_tables(kysera_engine)


@pytest.fixture
def tables(engine: AsyncEngine) -> Callable[[], Awaitable[set[str]]]:
    """``await tables()``: the names of the ``mig_`` tables that exist now."""
    return lambda: table_names(engine)


@pytest.fixture
def snapshot(engine: AsyncEngine) -> Callable[[], Awaitable[dict[str, Any]]]:
    """``await snapshot()``: columns, indexes and rows of every ``mig_`` table."""
    return lambda: schema_snapshot(engine)


@pytest.fixture
def drop_tables(engine: AsyncEngine) -> Callable[[], Awaitable[None]]:
    """``await drop_tables()``: drop every ``mig_`` table now."""
    return lambda: drop_test_tables(engine)


@pytest.fixture(scope="session")
def kysera_migrate() -> str:
    """The installed ``kysera-migrate`` console script (next to this Python, else on PATH)."""
    beside = Path(sys.executable).with_name("kysera-migrate")
    found = str(beside) if beside.exists() else shutil.which("kysera-migrate")
    assert found, "kysera-migrate is not installed"
    return found
