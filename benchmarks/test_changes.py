"""What the change feed costs a write, and how soon a consumer sees a change (issue 22).

Overhead (target <= 1.3x for both): the same write through a repository with
`ChangeFeedPlugin` and one without, each on its own identical table, both on the engine (each
write commits its own transaction), taking turns batch by batch and alternating which goes
first (`compare_interleaved`); the figure is the median of the per-round wall ratios.
`create`: rounds of 100 creates; `create_many`: rounds of one create_many of 1,000 rows.

Latency (reported, no target): the time from a committed `create` returning to the consumer
receiving its change, woken by NOTIFY (`orm.changes`, polling set to 300 s so only the
notification can wake it) and by polling alone (`follow_changes(notify=False)`, 50 ms).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kysera.changes import ChangeFeedPlugin, change_tables, follow_changes
from kysera.repository import Orm, Repository, create_orm

metadata = sa.MetaData()
CHANGES = "bench_changes"
change_tables(metadata, CHANGES)
TARGET = 1.3


def account_table(name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(100), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("balance", sa.Numeric(12, 2), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
    )


plain_accounts = account_table("bench_changes_plain")
fed_accounts = account_table("bench_changes_fed")


class Setup:
    engine: AsyncEngine
    orm: Orm
    plain: Repository[Any]
    fed: Repository[Any]


@pytest.fixture(scope="module")
def setup(runner: asyncio.Runner, postgres_url: str) -> Iterator[Setup]:
    state = Setup()

    async def start() -> None:
        state.engine = create_async_engine(postgres_url)
        async with state.engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
            await connection.run_sync(metadata.create_all)
        state.plain = (await create_orm(state.engine)).repository(plain_accounts)
        state.orm = await create_orm(state.engine, plugins=[ChangeFeedPlugin(table=CHANGES)])
        state.fed = state.orm.repository(fed_accounts)

    async def stop() -> None:
        async with state.engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
        await state.engine.dispose()

    runner.run(start())
    yield state
    runner.run(stop())


counter = iter(range(10**9))


def account() -> dict[str, Any]:
    n = next(counter)
    return {"email": f"u{n}@example.com", "name": f"user {n}", "balance": n, "active": True}


BULK_ROWS = 1000
BATCH = {"create": 100, "create_many": 1}  # writes per timed batch


@pytest.mark.parametrize("path", ["create", "create_many"])
def test_change_feed_overhead(
    path: str, benchmark: Any, compare_interleaved: Callable[..., Any], setup: Setup
) -> None:
    def writes(repo: Repository[Any]) -> Callable[[int], Awaitable[Any]]:
        async def create(_index: int) -> Any:
            return await repo.create(account())

        async def create_many(_index: int) -> Any:
            return await repo.create_many([account() for _ in range(BULK_ROWS)])

        return create if path == "create" else create_many

    ratio = benchmark.pedantic(
        compare_interleaved,
        args=(writes(setup.plain), writes(setup.fed)),
        kwargs={"rounds": 30 if path == "create" else 15, "batch": BATCH[path]},
        rounds=1,
        iterations=1,
    )
    benchmark.extra_info.update(ratio.info())
    print(
        f"\n{path}: plain {ratio.base_us:.0f} us, with the change feed {ratio.other_us:.0f} us; "
        f"paired ratio: wall {ratio.wall:.2f}, client CPU {ratio.cpu:.2f} (target <= {TARGET})"
    )
    assert ratio.wall <= TARGET


WRITES = 50


@pytest.mark.parametrize("wakeup", ["notify", "polling"])
def test_change_latency(wakeup: str, runner: asyncio.Runner, setup: Setup) -> None:
    async def measure() -> list[float]:
        async with setup.engine.connect() as connection:
            start = await connection.scalar(sa.text(f"SELECT coalesce(max(id), 0) FROM {CHANGES}"))
        if wakeup == "notify":
            stream = setup.orm.changes(after=int(start), poll_interval=300)
        else:
            stream = follow_changes(
                setup.engine, after=int(start), table=CHANGES, poll_interval=0.05, notify=False
            )
        received: asyncio.Queue[float] = asyncio.Queue()

        async def consume() -> None:
            async for _change in stream:
                received.put_nowait(time.perf_counter())

        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0.5)  # the listener is in place
        latencies = []
        try:
            for _ in range(WRITES):
                await setup.fed.create(account())
                committed = time.perf_counter()
                latencies.append(await asyncio.wait_for(received.get(), timeout=10) - committed)
                await asyncio.sleep(0.02)
        finally:
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)
        return latencies

    latencies = sorted(runner.run(measure()))
    median = statistics.median(latencies) * 1e3
    p95 = latencies[int(len(latencies) * 0.95) - 1] * 1e3
    print(f"\nlatency ({wakeup}): median {median:.2f} ms, p95 {p95:.2f} ms over {WRITES} writes")
