"""Fixtures of the audit tests: the audited tables and the audit table, per database."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine

sys.path.insert(0, str(Path(__file__).parent))

from audit_support import metadata

from kysera.audit import audit_log_table, create_audit_table

AUDIT_TABLE = "au_audit_logs"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def schema(kysera_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The test tables and the audit table on this database (dropped at the end)."""
    log = audit_log_table(MetaData(), AUDIT_TABLE)
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(log.drop, checkfirst=True)
    await create_audit_table(kysera_engine, AUDIT_TABLE)
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield kysera_engine
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(log.drop, checkfirst=True)


@pytest_asyncio.fixture(loop_scope="session")
async def engine(schema: AsyncEngine) -> AsyncEngine:
    """The engine, with every test table and the audit log empty."""
    log = audit_log_table(MetaData(), AUDIT_TABLE)
    async with schema.begin() as connection:
        for table in [*reversed(metadata.sorted_tables), log]:
            await connection.execute(table.delete())
    return schema
