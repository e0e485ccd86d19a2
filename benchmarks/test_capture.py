"""What capture_queries costs on a primary-key fetch while active, and after it exits (PostgreSQL).

Four ways to fetch one row by primary key on a connection held for the whole batch:

* raw asyncpg (its statement cache prepares the query once): the floor;
* plain SQLAlchemy Core, the statement built on every call: the baseline capture is held to;
* the same Core code inside an active ``capture_queries(engine)`` block (buffer full, so every
  statement also evicts one: the steady state of a long capture);
* the same Core code on an engine that has been captured before and no longer is.

The pytest-benchmark tests time each way on its own. ``test_capture_overhead_interleaved``
takes turns between them, batch by batch, in one loop, so that a noisy machine slows every
way alike, and prints the median ratios recorded in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from kysera.core import capture_queries

BATCH = 200
ROWS = 1000
items = sa.Table(
    "bench_cap_items",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50), nullable=False),
)
RAW_FETCH = "SELECT id, name FROM bench_cap_items WHERE id = $1"


@pytest.fixture(scope="module")
def engine(postgres_url: str, runner: asyncio.Runner) -> Iterator[AsyncEngine]:
    engine = create_async_engine(postgres_url, pool_size=2)

    async def setup() -> None:
        async with engine.begin() as conn:
            await conn.run_sync(items.metadata.drop_all)
            await conn.run_sync(items.metadata.create_all)
            await conn.execute(
                items.insert(), [{"id": i, "name": f"item {i}"} for i in range(ROWS)]
            )

    async def teardown() -> None:
        async with engine.begin() as conn:
            await conn.run_sync(items.metadata.drop_all)
        await engine.dispose()

    runner.run(setup())
    yield engine
    runner.run(teardown())


@pytest.fixture(scope="module")
def held(engine: AsyncEngine, runner: asyncio.Runner) -> Iterator[AsyncConnection]:
    async def connect() -> AsyncConnection:
        return await engine.connect()

    conn = runner.run(connect())
    yield conn
    runner.run(conn.close())


@pytest.fixture(scope="module")
def raw(asyncpg_dsn: str, runner: asyncio.Runner, engine: AsyncEngine) -> Iterator[Any]:
    conn = runner.run(asyncpg.connect(asyncpg_dsn))
    yield conn
    runner.run(conn.close())


def core_fetch(conn: AsyncConnection) -> Callable[[int], Awaitable[Any]]:
    async def fetch(id_: int) -> Any:
        return (await conn.execute(sa.select(items).where(items.c.id == id_))).one()

    return fetch


def raw_fetch(conn: Any) -> Callable[[int], Awaitable[Any]]:
    async def fetch(id_: int) -> Any:
        return await conn.fetchrow(RAW_FETCH, id_)

    return fetch


async def batch(fetch: Callable[[int], Awaitable[Any]]) -> None:
    for i in range(BATCH):
        await fetch(i % ROWS)


def run_batches(
    benchmark: Any, runner: asyncio.Runner, fetch: Callable[[int], Awaitable[Any]]
) -> None:
    runner.run(batch(fetch))  # warm up caches
    benchmark(lambda: runner.run(batch(fetch)))


@pytest.mark.benchmark(group="capture: primary-key fetch x200, connection held")
def test_raw_asyncpg(benchmark: Any, runner: asyncio.Runner, raw: Any) -> None:
    run_batches(benchmark, runner, raw_fetch(raw))


@pytest.mark.benchmark(group="capture: primary-key fetch x200, connection held")
def test_core(benchmark: Any, runner: asyncio.Runner, held: AsyncConnection) -> None:
    run_batches(benchmark, runner, core_fetch(held))


@pytest.mark.benchmark(group="capture: primary-key fetch x200, connection held")
def test_core_capture_active(
    benchmark: Any, runner: asyncio.Runner, engine: AsyncEngine, held: AsyncConnection
) -> None:
    with capture_queries(engine) as captured:
        run_batches(benchmark, runner, core_fetch(held))
    assert captured.count >= BATCH


@pytest.mark.benchmark(group="capture: primary-key fetch x200, connection held")
def test_core_after_capture(
    benchmark: Any, runner: asyncio.Runner, engine: AsyncEngine, held: AsyncConnection
) -> None:
    with capture_queries(engine) as captured:
        runner.run(batch(core_fetch(held)))
    run_batches(benchmark, runner, core_fetch(held))
    assert captured.count == BATCH


def test_capture_overhead_interleaved(
    runner: asyncio.Runner, engine: AsyncEngine, held: AsyncConnection, raw: Any
) -> None:
    """Median wall and client CPU time per batch of each way, taking turns for 40 rounds."""
    capture = capture_queries(engine)
    fetch_core = core_fetch(held)

    async def core_in_capture() -> None:
        with capture:
            await batch(fetch_core)

    ways: dict[str, Callable[[], Awaitable[None]]] = {
        "raw asyncpg": lambda: batch(raw_fetch(raw)),
        "Core": lambda: batch(fetch_core),
        "Core, capture active": core_in_capture,
        "Core, after a capture": lambda: batch(fetch_core),  # `capture` has exited by now
    }
    wall: dict[str, list[float]] = {name: [] for name in ways}
    cpu: dict[str, list[float]] = {name: [] for name in ways}

    async def rounds() -> None:
        for make in ways.values():  # warm-up, and fill the capture's buffer once
            await make()
        for _ in range(40):
            order = list(ways.items())
            random.shuffle(order)
            for name, make in order:
                started, started_cpu = time.perf_counter(), time.process_time()
                await make()
                cpu[name].append(time.process_time() - started_cpu)
                wall[name].append(time.perf_counter() - started)

    runner.run(rounds())
    print()
    for label, timings in (("wall", wall), ("client CPU", cpu)):
        medians = {name: statistics.median(values) for name, values in timings.items()}
        floor, core = medians["raw asyncpg"], medians["Core"]
        for name, median in medians.items():
            print(
                f"{label:10} {name:22} {median / BATCH * 1e6:7.1f} µs/fetch  "
                f"{median / floor:5.2f}x raw  {median / core:5.3f}x Core"
            )
    assert capture.count >= BATCH * 41
