"""Methods taking many keys or rows never reach a bind-parameter limit (SPEC §7, issue 15
item 9): PostgreSQL allows 32,767 parameters per statement, SQLite 32,766, MySQL 65,535.

Each test passes 40,001 keys or rows, more than PostgreSQL and SQLite allow as one
parameter each.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core.capture import capture_queries
from kysera.core.pytest_plugin import kysera_schema_fixture
from kysera.repository import create_repository

N = 40_001

metadata = sa.MetaData()
many = sa.Table(
    "bl_many",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("code", sa.String(20), nullable=False, unique=True),
    sa.Column("value", sa.Integer, nullable=False),
)
coded = sa.Table(
    "bl_coded",
    metadata,
    sa.Column("code", sa.String(20), primary_key=True),
    sa.Column("value", sa.Integer, nullable=False),
)
engine = kysera_schema_fixture(metadata)


def rows(count: int = N) -> list[dict[str, object]]:
    return [{"id": n, "code": f"c{n}", "value": n} for n in range(1, count + 1)]


async def fill(engine: AsyncEngine, table: sa.Table, values: list[dict[str, object]]) -> None:
    async with engine.begin() as connection:
        await connection.execute(table.insert(), values)


async def test_create_many_and_find_by_ids(engine: AsyncEngine) -> None:
    repo = create_repository(engine, many)
    created = await repo.create_many(rows())
    assert len(created) == N

    found = await repo.find_by_ids(list(range(1, N + 1)))
    assert sorted(row["id"] for row in found) == list(range(1, N + 1))
    assert await repo.create_many(rows(0), returning=False) == 0


async def test_in_lists(engine: AsyncEngine) -> None:
    await fill(engine, many, rows())
    repo = create_repository(engine, many)

    assert await repo.count({"id": {"$in": list(range(N + 1))}}) == N
    assert await repo.count({"id": {"$nin": list(range(2, N + 1))}}) == 1
    assert await repo.count({"value": {"$in": list(range(N))}}) == N - 1


async def test_delete_many(engine: AsyncEngine) -> None:
    await fill(engine, many, rows())
    repo = create_repository(engine, many)

    assert await repo.delete_many([*range(1, N + 1), N + 5]) == N
    assert await repo.count() == 0


async def test_bulk_update(engine: AsyncEngine) -> None:
    await fill(engine, many, rows())
    repo = create_repository(engine, many)

    updated = await repo.bulk_update([(n, {"value": -n}) for n in range(1, N + 1)])

    assert len(updated) == N
    assert await repo.count({"value": {"$lt": 0}}) == N


async def test_upsert_many(engine: AsyncEngine) -> None:
    await fill(engine, many, rows(N // 2))
    repo = create_repository(engine, many)

    stored = await repo.upsert_many([{**row, "value": 0} for row in rows()])

    assert len(stored) == N
    assert await repo.count({"value": 0}) == N


async def test_string_keys(engine: AsyncEngine) -> None:
    await fill(engine, coded, [{"code": f"k{n}", "value": n} for n in range(N)])
    repo = create_repository(engine, coded)

    assert len(await repo.find_by_ids([f"k{n}" for n in range(N)])) == N
    assert await repo.delete_many([f"k{n}" for n in range(N)]) == N


@pytest.mark.kysera_databases("postgresql")
async def test_postgresql_binds_one_array_for_a_key_list(engine: AsyncEngine) -> None:
    await fill(engine, many, rows(10))
    repo = create_repository(engine, many)

    with capture_queries(engine) as queries:
        await repo.find_by_ids(list(range(1, N + 1)))
        await repo.delete_many(list(range(1, N + 1)))

    assert queries.count == 2
    assert all("ANY" in query.sql for query in queries.queries)
