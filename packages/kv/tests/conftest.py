"""Fixtures of the kv tests: a store on the test database, emptied before each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.kv import KV


@pytest_asyncio.fixture(loop_scope="session")
async def kv(kysera_engine: AsyncEngine) -> AsyncIterator[KV]:
    """A `KV` on the table ``kysera_kv_test``, empty."""
    store = await KV.open(kysera_engine, table="kysera_kv_test")
    async with kysera_engine.begin() as conn:
        await conn.execute(sa.text("DELETE FROM kysera_kv_test"))
    yield store
