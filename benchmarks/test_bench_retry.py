"""What retry_transaction, with_retry and CircuitBreaker cost when nothing fails (PostgreSQL).

Each benchmark runs a batch of 100 short transactions (a primary-key read) or calls, side by
side with the same work written by hand with SQLAlchemy Core.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from kysera.core import CircuitBreaker, retry_transaction, with_retry

BATCH = 100
items = sa.Table(
    "bench_rt_items",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50), nullable=False),
)


@pytest.fixture(scope="module")
def engine(postgres_url: str, runner: asyncio.Runner) -> Iterator[AsyncEngine]:
    engine = create_async_engine(postgres_url, pool_size=2)

    async def setup() -> None:
        async with engine.begin() as conn:
            await conn.run_sync(items.metadata.drop_all)
            await conn.run_sync(items.metadata.create_all)
            await conn.execute(items.insert(), [{"id": 1, "name": "one"}])

    async def teardown() -> None:
        async with engine.begin() as conn:
            await conn.run_sync(items.metadata.drop_all)
        await engine.dispose()

    runner.run(setup())
    yield engine
    runner.run(teardown())


async def read_item(conn: AsyncConnection) -> Any:
    return (await conn.execute(sa.select(items).where(items.c.id == 1))).one()


def run_batch(
    benchmark: Any, runner: asyncio.Runner, make_call: Callable[[], Awaitable[Any]]
) -> None:
    async def batch() -> None:
        for _ in range(BATCH):
            await make_call()

    runner.run(batch())  # warm up the pool and statement caches
    benchmark(lambda: runner.run(batch()))


@pytest.mark.benchmark(group="transaction")
def test_transaction_by_hand(benchmark: Any, runner: asyncio.Runner, engine: AsyncEngine) -> None:
    async def by_hand() -> Any:
        async with engine.begin() as conn:
            return await read_item(conn)

    run_batch(benchmark, runner, by_hand)


@pytest.mark.benchmark(group="transaction")
def test_transaction_retry_transaction(
    benchmark: Any, runner: asyncio.Runner, engine: AsyncEngine
) -> None:
    run_batch(benchmark, runner, lambda: retry_transaction(engine, read_item))


@pytest.mark.benchmark(group="serializable")
def test_serializable_by_hand(benchmark: Any, runner: asyncio.Runner, engine: AsyncEngine) -> None:
    async def by_hand() -> Any:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="SERIALIZABLE")
            async with conn.begin():
                return await read_item(conn)

    run_batch(benchmark, runner, by_hand)


@pytest.mark.benchmark(group="serializable")
def test_serializable_retry_transaction(
    benchmark: Any, runner: asyncio.Runner, engine: AsyncEngine
) -> None:
    run_batch(
        benchmark,
        runner,
        lambda: retry_transaction(engine, read_item, isolation_level="SERIALIZABLE"),
    )


@pytest.fixture
def held_connection(engine: AsyncEngine, runner: asyncio.Runner) -> Iterator[AsyncConnection]:
    async def connect() -> AsyncConnection:
        return await engine.connect()

    conn = runner.run(connect())
    yield conn
    runner.run(conn.close())


@pytest.mark.benchmark(group="call")
def test_call_direct(
    benchmark: Any, runner: asyncio.Runner, held_connection: AsyncConnection
) -> None:
    run_batch(benchmark, runner, lambda: read_item(held_connection))


@pytest.mark.benchmark(group="call")
def test_call_with_retry(
    benchmark: Any, runner: asyncio.Runner, held_connection: AsyncConnection
) -> None:
    run_batch(benchmark, runner, lambda: with_retry(lambda: read_item(held_connection)))


@pytest.mark.benchmark(group="call")
def test_call_circuit_breaker(
    benchmark: Any, runner: asyncio.Runner, held_connection: AsyncConnection
) -> None:
    breaker = CircuitBreaker()
    run_batch(benchmark, runner, lambda: breaker.call(read_item, held_connection))
