"""What soft delete + timestamps cost a read: repository reads through both plugins vs. none.

Target (issue 8): reads through the soft-delete (and timestamps) plugins cost at most 1.05x
the same repository without plugins. Same method as test_plugin_overhead.py: each repository
has its own identical table (with `created_at`, `updated_at` and `deleted_at` columns, no
row deleted), both share one
held connection and take turns batch by batch, alternating which goes first; the median of
the per-round client CPU ratios is checked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import AwareDatetime, BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from kysera.repository import Repository, create_orm
from kysera.soft_delete import SoftDeletePlugin
from kysera.timestamps import TimestampsPlugin

BATCH = 100  # awaits per timed batch
ROUNDS = 40  # batches per implementation, interleaved
TARGET = 1.05

metadata = sa.MetaData()


def item_table(name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    )


plain_items = item_table("bench_sd_plain")
plugged_items = item_table("bench_sd_plugged")


class Item(BaseModel):
    id: int
    name: str
    quantity: int
    created_at: AwareDatetime | None
    updated_at: AwareDatetime | None
    deleted_at: AwareDatetime | None


def plugins() -> list[object]:
    return [SoftDeletePlugin(), TimestampsPlugin()]


class Setup:
    engine: AsyncEngine
    connection: AsyncConnection
    plain: Repository[Item]
    plugged: Repository[Item]


@pytest.fixture(scope="module")
def setup(runner: asyncio.Runner, postgres_url: str) -> Iterator[Setup]:
    state = Setup()

    async def start() -> None:
        state.engine = create_async_engine(postgres_url)
        async with state.engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
            await connection.run_sync(metadata.create_all)
            for table in (plain_items, plugged_items):
                await connection.execute(
                    table.insert(), [{"name": f"item-{i}", "quantity": i} for i in range(100)]
                )
        state.connection = await state.engine.connect()
        without = await create_orm(state.engine)
        plugged = await create_orm(state.engine, plugins=plugins())
        state.plain = without.repository(plain_items, entity=Item).with_executor(state.connection)
        state.plugged = plugged.repository(plugged_items, entity=Item).with_executor(
            state.connection
        )

    async def stop() -> None:
        await state.connection.close()  # first: asyncpg's prepared statements lock the table
        async with state.engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
        await state.engine.dispose()

    runner.run(start())
    yield state
    runner.run(stop())


async def find_by_id(repo: Repository[Item], key: int) -> Any:
    return await repo.find_by_id(key % 100 + 1)


async def find_page(repo: Repository[Item], key: int) -> Any:
    return await repo.find({"quantity": {"$gte": key % 50}}, order_by="id", limit=20)


READS: dict[str, Callable[[Repository[Item], int], Awaitable[Any]]] = {
    "find_by_id": find_by_id,
    "find": find_page,
}


# On a quiet machine: 1.03-1.04x client CPU for find_by_id (once the repository cached result
# keys per statement object, plugin-rewritten ones included) and 1.04-1.05x for find.
@pytest.mark.parametrize("read", list(READS))
def test_reads_through_soft_delete_and_timestamps(
    benchmark: Any, compare_interleaved: Callable[..., Any], setup: Setup, read: str
) -> None:
    call = READS[read]
    ratio = benchmark.pedantic(
        compare_interleaved,
        args=(lambda key: call(setup.plain, key), lambda key: call(setup.plugged, key)),
        kwargs={"rounds": ROUNDS, "batch": BATCH},
        rounds=1,
        iterations=1,
    )
    benchmark.extra_info.update(ratio.info())
    print(
        f"\n{read}: no plugins {ratio.base_us:.1f} us, {len(plugins())} plugin(s) "
        f"{ratio.other_us:.1f} us; paired ratio: wall {ratio.wall:.3f}, client CPU "
        f"{ratio.cpu:.3f} (target <= {TARGET})"
    )
    assert ratio.cpu <= TARGET
