"""Shared benchmark fixtures: the PostgreSQL URL and an event loop for timing async code.

Benchmarks are plain (sync) pytest-benchmark tests. Time async work by running a batch of
awaits inside one ``runner.run(...)`` call, so the loop's own hand-off cost is spread over
the batch instead of inflating (and flattening) every ratio.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

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
