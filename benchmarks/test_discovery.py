"""What `discover` costs against plain ``MetaData.reflect`` (issue 19), at 50 and 250 tables.

Both read the same tables on PostgreSQL, each call on a fresh connection from the same
engine, taking turns (`compare_interleaved`). `discover` is ``MetaData.reflect`` plus the
pydantic models and relations it builds from the result, so the ratio is the price of the
models; the target is "not slower" in catalog work, which the constant query count (a test in
packages/schema/tests) already shows, and the ratio here is reported.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kysera.schema import discover

SIZES = (50, 250)


def schema_of(size: int) -> tuple[sa.MetaData, list[str]]:
    """``size`` tables like an application's: a key, a few typed columns, a foreign key."""
    metadata = sa.MetaData()
    names = [f"bench_disc_{i:03d}" for i in range(size)]
    for index, name in enumerate(names):
        columns: list[Any] = [
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("name", sa.String(100), nullable=False),
            sa.Column("amount", sa.Numeric(12, 2)),
            sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
            sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        ]
        if index:
            columns.append(sa.Column("parent_id", sa.ForeignKey(f"{names[index - 1]}.id")))
        sa.Table(name, metadata, *columns)
    return metadata, names


@pytest.fixture(scope="module")
def engine(runner: asyncio.Runner, postgres_url: str) -> Iterator[AsyncEngine]:
    created = create_async_engine(postgres_url)
    metadata, _ = schema_of(max(SIZES))

    async def setup() -> None:
        async with created.begin() as connection:
            await connection.run_sync(metadata.drop_all)
            await connection.run_sync(metadata.create_all)

    async def teardown() -> None:
        async with created.begin() as connection:
            await connection.run_sync(metadata.drop_all)
        await created.dispose()

    runner.run(setup())
    yield created
    runner.run(teardown())


@pytest.mark.parametrize("size", SIZES)
def test_discover_against_metadata_reflect(
    size: int, benchmark: Any, compare_interleaved: Callable[..., Any], engine: AsyncEngine
) -> None:
    _, names = schema_of(size)

    async def reflect(_index: int) -> None:
        async with engine.connect() as connection:
            await connection.run_sync(lambda sync: sa.MetaData().reflect(sync, only=names))

    async def discovered(_index: int) -> None:
        await discover(engine, include=names)

    ratio = benchmark.pedantic(
        compare_interleaved,
        args=(reflect, discovered),
        kwargs={"rounds": 5, "batch": 1},
        rounds=1,
        iterations=1,
    )
    benchmark.extra_info.update(ratio.info())
    print(
        f"\n{size} tables: MetaData.reflect {ratio.base_us / 1e3:.1f} ms, "
        f"discover {ratio.other_us / 1e3:.1f} ms; wall {ratio.wall:.2f}x, CPU {ratio.cpu:.2f}x"
    )
