"""Fixtures of the discovery tests: the Sakila sample schema, per database."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

sys.path.insert(0, str(Path(__file__).parent))

from sakila import create_sakila, drop_sakila


@pytest_asyncio.fixture(loop_scope="session")
async def engine(kysera_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The engine, with the Sakila tables and view created afresh and a few rows."""
    await create_sakila(kysera_engine)
    # The tables were dropped and created again: statements asyncpg prepared on pooled
    # connections for the old ones would fail once (InvalidCachedStatementError).
    await kysera_engine.dispose()
    try:
        yield kysera_engine
    finally:
        await drop_sakila(kysera_engine)
