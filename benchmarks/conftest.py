"""Shared benchmark fixtures: the PostgreSQL URL and an event loop for timing async code.

Benchmarks are plain (sync) pytest-benchmark tests. Time async work by running a batch of
awaits inside one ``runner.run(...)`` call, so the loop's own hand-off cost is spread over
the batch instead of inflating (and flattening) every ratio.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Benchmark modules share helpers (scenarios.py) as plain imports.
sys.path.insert(0, str(Path(__file__).parent))

BENCH_URL_ENV = "KYSERA_BENCH_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The SQLAlchemy URL of the benchmark database (``postgresql+asyncpg://...``)."""
    url = os.environ.get(BENCH_URL_ENV) or os.environ.get("KYSERA_TEST_POSTGRES_URL")
    if not url:
        pytest.fail(f"benchmarks need PostgreSQL: set {BENCH_URL_ENV} or KYSERA_TEST_POSTGRES_URL")
    return url


@pytest.fixture(scope="session")
def asyncpg_dsn(postgres_url: str) -> str:
    """The same database as a DSN raw asyncpg accepts."""
    return postgres_url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture(scope="session")
def runner() -> Iterator[asyncio.Runner]:
    """One event loop for the whole benchmark session."""
    with asyncio.Runner() as loop_runner:
        yield loop_runner


Call = Callable[[int], Awaitable[Any]]


@dataclass(frozen=True)
class PairedRatio:
    """Two implementations timed turn by turn: medians per call and per-round ratios."""

    base_us: float
    other_us: float
    wall: float
    cpu: float

    def info(self) -> dict[str, float]:
        """For ``benchmark.extra_info``."""
        return {
            "base_us": round(self.base_us, 1),
            "other_us": round(self.other_us, 1),
            "wall_ratio": round(self.wall, 3),
            "cpu_ratio": round(self.cpu, 3),
        }


@pytest.fixture(scope="session")
def compare_interleaved(runner: asyncio.Runner) -> Callable[..., PairedRatio]:
    """Time ``other`` against ``base`` in alternating batches; return their paired ratios.

    Each call is ``await fn(index)``. Both warm up first (prepared statements, caches); then
    ``rounds`` rounds run one batch of each back to back, alternating which goes first (the
    second of a pair tends to measure faster), and each ratio is the median of the rounds'
    own ratios, which cancels the machine's drift. Client CPU time (``process_time``) leaves
    the database's share out of the base, so it is the stricter ratio.
    """

    async def per_call(fn: Call, batch: int) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        for index in range(batch):
            await fn(index)
        return (time.perf_counter() - wall) / batch, (time.process_time() - cpu) / batch

    def compare(base: Call, other: Call, *, rounds: int, batch: int) -> PairedRatio:
        for fn in (base, other):
            runner.run(per_call(fn, batch))
        samples: dict[int, list[tuple[float, float]]] = {0: [], 1: []}
        turns = [(0, base), (1, other)]
        for _ in range(rounds):
            for side, fn in turns:
                samples[side].append(runner.run(per_call(fn, batch)))
            turns.reverse()
        pairs = list(zip(samples[0], samples[1], strict=True))
        return PairedRatio(
            base_us=statistics.median(wall for wall, _ in samples[0]) * 1e6,
            other_us=statistics.median(wall for wall, _ in samples[1]) * 1e6,
            wall=statistics.median(o[0] / b[0] for b, o in pairs),
            cpu=statistics.median(o[1] / b[1] for b, o in pairs),
        )

    return compare


@dataclass(frozen=True)
class RepositoryPair:
    """The same kind of table behind two repositories on one held connection."""

    plain: Any
    plugged: Any


@pytest.fixture(scope="session")
def repository_pair(
    runner: asyncio.Runner, postgres_url: str
) -> Callable[..., AbstractContextManager[RepositoryPair]]:
    """Open a plugin-free repository and a plugged one, each on its own identical table.

    One table per repository: SQLAlchemy's compiled cache favours the statement object it
    compiled first, so two repositories sharing a table would measure who ran first.
    """
    from sqlalchemy.ext.asyncio import create_async_engine

    from kysera.repository import create_orm

    @contextmanager
    def open_pair(
        metadata: Any,
        plain_table: Any,
        plugged_table: Any,
        *,
        entity: Any,
        plugins: list[object],
        rows: list[dict[str, Any]],
    ) -> Iterator[RepositoryPair]:
        engine = create_async_engine(postgres_url)

        async def start() -> tuple[Any, RepositoryPair]:
            async with engine.begin() as connection:
                await connection.run_sync(metadata.drop_all)
                await connection.run_sync(metadata.create_all)
                for table in (plain_table, plugged_table):
                    await connection.execute(table.insert(), rows)
            connection = await engine.connect()
            without = await create_orm(engine)
            plugged = await create_orm(engine, plugins=plugins)
            return connection, RepositoryPair(
                plain=without.repository(plain_table, entity=entity).with_executor(connection),
                plugged=plugged.repository(plugged_table, entity=entity).with_executor(connection),
            )

        async def stop(connection: Any) -> None:
            await connection.rollback()
            await connection.close()  # first: asyncpg's prepared statements lock the tables
            async with engine.begin() as cleanup:
                await cleanup.run_sync(metadata.drop_all)
            await engine.dispose()

        connection, pair = runner.run(start())
        try:
            yield pair
        finally:
            runner.run(stop(connection))

    return open_pair
