"""create_many(..., returning=False): the bulk path (COPY on PostgreSQL) keeps every promise
of the executemany it replaces: types converted, one transaction, nothing committed on a
caller's connection, errors classified."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from repository_support import Kind, events, writes
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import UniqueConstraintError
from kysera.core.capture import capture_queries
from kysera.core.testing import snapshot_table
from kysera.repository import create_repository

MANY = 600  # above the COPY threshold


def event_rows(count: int, start: int = 0) -> list[dict[str, Any]]:
    moment = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    return [
        {
            "kind": Kind.LOGIN if n % 2 else Kind.SIGNUP,
            "payload": {"n": n, "tags": ["a", "b"]},
            "happened_at": moment + dt.timedelta(seconds=n),
            "email": f"e{n}@example.com",
        }
        for n in range(start, start + count)
    ]


async def test_many_rows_go_in_with_their_types(engine: AsyncEngine) -> None:
    repo = create_repository(engine, events)

    with capture_queries(engine) as log:
        assert await repo.create_many(event_rows(MANY), returning=False) == MANY
    # PostgreSQL: COPY, which is not a SQL statement the cursor events see.
    assert len(writes(log)) == (0 if engine.dialect.name == "postgresql" else 1)

    stored = await snapshot_table(engine, events)
    assert len(stored) == MANY
    assert stored[1]["kind"] is Kind.LOGIN
    assert stored[1]["payload"] == {"n": 1, "tags": ["a", "b"]}
    assert stored[1]["happened_at"].replace(tzinfo=dt.UTC) == dt.datetime(
        2026, 1, 2, 3, 4, 6, tzinfo=dt.UTC
    )


async def test_a_failing_bulk_insert_writes_nothing(engine: AsyncEngine) -> None:
    repo = create_repository(engine, events)
    rows = event_rows(MANY)
    rows[-1]["email"] = rows[0]["email"]

    with pytest.raises(UniqueConstraintError):
        await repo.create_many(rows, returning=False)
    assert await snapshot_table(engine, events) == []


async def test_a_bulk_insert_on_a_callers_connection_is_not_committed(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        repo = create_repository(connection, events)
        assert await repo.create_many(event_rows(MANY), returning=False) == MANY
        assert await repo.count() == MANY
        await connection.rollback()
    assert await snapshot_table(engine, events) == []

    async with engine.begin() as connection:
        repo = create_repository(connection, events)
        await repo.create_many(event_rows(MANY), returning=False)
        await repo.create_many(event_rows(MANY, start=MANY), returning=False)
    assert len(await snapshot_table(engine, events)) == 2 * MANY
