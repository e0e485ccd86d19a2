"""Repositories classify and bound connection failures (SPEC §8).

Failures before anything reached the server (an exhausted pool, a DNS failure, a server that
never answers the handshake) are transient `DatabaseConnectionError`s: `with_retry` reruns
the write, and since nothing was sent it is written once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from kysera.core import (
    CircuitBreaker,
    CircuitState,
    DatabaseConnectionError,
    with_retry,
)
from kysera.core.pytest_plugin import create_test_engine
from kysera.core.testing import FaultProxy, count_rows
from kysera.repository import create_orm, create_repository

metadata = sa.MetaData()
notes = sa.Table(
    "connection_fault_notes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("body", sa.String(40), nullable=False),
)
HANG = 60  # a guard against a hang, not a timing assertion


@pytest_asyncio.fixture(loop_scope="session")
async def table(kysera_engine: AsyncEngine) -> AsyncIterator[sa.Table]:
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
    try:
        yield notes
    finally:
        async with kysera_engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)


async def test_pool_exhaustion_is_transient_and_a_retried_write_lands_once(
    kysera_database_url: str, kysera_engine: AsyncEngine, table: sa.Table
) -> None:
    engine = create_test_engine(kysera_database_url, pool_size=1, max_overflow=0, pool_timeout=0.05)
    repo = create_repository(engine, notes)
    held = await engine.connect()
    try:
        with pytest.raises(DatabaseConnectionError, match="pool exhausted") as raised:
            await repo.count()
        assert raised.value.transient
        with pytest.raises(DatabaseConnectionError, match="pool exhausted"):
            await repo.paginate(page=1, limit=10)

        async def release(attempt: int, error: BaseException, delay: float) -> None:
            await held.close()

        await with_retry(lambda: repo.create({"body": "once"}), base_delay=0, on_retry=release)
    finally:
        await held.close()
        await engine.dispose()
    assert await count_rows(kysera_engine, notes) == 1


@pytest.mark.kysera_databases("postgresql", "mysql")
async def test_a_dns_failure_is_a_transient_connection_error(
    kysera_database_url: str, table: sa.Table
) -> None:
    url = make_url(kysera_database_url).set(host="kysera-no-such-host.invalid")
    engine = create_test_engine(url.render_as_string(hide_password=False))
    try:
        with pytest.raises(DatabaseConnectionError, match="DNS") as raised:
            await create_repository(engine, notes).count()
    finally:
        await engine.dispose()
    assert raised.value.transient


@pytest.mark.kysera_databases("postgresql", "mysql")
async def test_a_blackholed_server_opens_the_circuit_around_repository_calls(
    kysera_database_url: str, kysera_fault_proxy: FaultProxy, table: sa.Table
) -> None:
    """The repository bounds its engine's connection attempts itself (aiomysql included):
    only the driver's usual connect timeout setting is given."""
    proxy = kysera_fault_proxy
    connect_args = (
        {"timeout": 1}
        if make_url(kysera_database_url).get_backend_name() == "postgresql"
        else {"connect_timeout": 1}
    )
    engine = create_test_engine(
        proxy.url(kysera_database_url), poolclass=NullPool, connect_args=connect_args
    )
    orm = await create_orm(engine)
    repo = orm.repository(notes)
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=3600)
    proxy.blackhole()
    try:
        for call in (repo.count, lambda: repo.create({"body": "never"})):
            with pytest.raises(DatabaseConnectionError) as raised:
                await asyncio.wait_for(breaker.call(call), HANG)
            assert raised.value.transient  # nothing was sent: safe to retry
        assert breaker.state is CircuitState.OPEN
    finally:
        proxy.forward()
        await engine.dispose()
