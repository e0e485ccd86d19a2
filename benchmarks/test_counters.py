"""What `repo.increment` costs against the hand-written Core statement it replaces.

Both run ``UPDATE ... SET hits = hits + :n WHERE id = :id RETURNING ...`` on one held
connection and return a validated pydantic entity; they take turns batch by batch and the
median of the per-round client-CPU ratios is checked against issue 21's bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from kysera.repository import create_orm

BATCH = 50  # awaits per timed batch
ROUNDS = 100  # batches per implementation, interleaved
# Issue 21's bound for increment against a hand-written Core UPDATE.
TARGET = 1.3

metadata = sa.MetaData()


def counter_table(name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("hits", sa.BigInteger, nullable=False),
    )


# One table each: SQLAlchemy's compiled cache favours the statement object it compiled first.
core_counters = counter_table("bench_ct_core")
repo_counters = counter_table("bench_ct_repo")


class Counter(BaseModel):
    id: int
    hits: int


@pytest.fixture(scope="module")
def calls(runner: asyncio.Runner, postgres_url: str) -> Iterator[tuple[Any, Any]]:
    engine = create_async_engine(postgres_url)
    state: dict[str, AsyncConnection] = {}

    async def start() -> tuple[Any, Any]:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
            await connection.run_sync(metadata.create_all)
            for table in (core_counters, repo_counters):
                await connection.execute(table.insert(), [{"hits": 0} for _ in range(100)])
        connection = state["connection"] = await engine.connect()
        orm = await create_orm(engine)
        repo = orm.repository(repo_counters, entity=Counter).with_executor(connection)
        bump = (
            sa.update(core_counters)
            .where(core_counters.c.id == sa.bindparam("key"))
            .values(hits=core_counters.c.hits + sa.bindparam("delta"))
            .returning(core_counters.c.id, core_counters.c.hits)
        )

        async def by_hand(index: int) -> Counter:
            result = await connection.execute(bump, {"key": index % 100 + 1, "delta": 1})
            return Counter.model_validate(dict(result.one()._mapping))

        async def through_kysera(index: int) -> Counter:
            entity: Counter = await repo.increment(index % 100 + 1, hits=1)
            return entity

        return by_hand, through_kysera

    async def stop() -> None:
        await state["connection"].rollback()
        await state["connection"].close()
        async with engine.begin() as cleanup:
            await cleanup.run_sync(metadata.drop_all)
        await engine.dispose()

    pair = runner.run(start())
    try:
        yield pair
    finally:
        runner.run(stop())


def test_increment_against_a_hand_written_update(
    benchmark: Any, compare_interleaved: Callable[..., Any], calls: tuple[Any, Any]
) -> None:
    by_hand, through_kysera = calls
    ratio = benchmark.pedantic(
        compare_interleaved,
        args=(by_hand, through_kysera),
        kwargs={"rounds": ROUNDS, "batch": BATCH},
        rounds=1,
        iterations=1,
    )
    benchmark.extra_info.update(ratio.info())
    print(
        f"\nincrement: Core by hand {ratio.base_us:.1f} us, repo.increment "
        f"{ratio.other_us:.1f} us; paired ratio: wall {ratio.wall:.3f}, client CPU "
        f"{ratio.cpu:.3f} (target <= {TARGET})"
    )
    assert ratio.cpu <= TARGET
