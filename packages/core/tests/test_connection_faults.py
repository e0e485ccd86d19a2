"""Connection failures are bounded and classified, so retries and the breaker understand them.

SPEC §8: pool exhaustion, connect timeouts and DNS failures are transient
`DatabaseConnectionError`s that `with_retry` retries and the circuit breaker counts; a server
that accepts TCP and never answers opens the circuit; a wrong database name or role is a
connection error (not transient: retrying cannot fix a URL).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest
import pytest_asyncio
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import NullPool

from kysera.core import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    DatabaseConnectionError,
    check_health,
    classify_database_errors,
    is_transient_error,
    limit_connect_time,
    paginate,
    parse_database_error,
    retry_transaction,
    with_retry,
)
from kysera.core.pytest_plugin import create_test_engine
from kysera.core.testing import FaultProxy

T = TypeVar("T")

servers = pytest.mark.kysera_databases("postgresql", "mysql")

# A guard against a hang (the failure this file is about), not a timing assertion.
HANG = 60


def short_connect_timeout(url: str) -> dict[str, object]:
    """connect_args bounding a connection attempt to one second on the URL's driver."""
    if make_url(url).get_backend_name() == "postgresql":
        return {"timeout": 1}
    return {"connect_timeout": 1}


async def select_one(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(sa.text("SELECT 1")) or 0)


# --- a server that accepts TCP and never answers ----------------------------------------------


@servers
async def test_a_blackholed_server_fails_within_the_connect_timeout_and_opens_the_circuit(
    kysera_database_url: str, kysera_fault_proxy: FaultProxy
) -> None:
    proxy = kysera_fault_proxy
    engine = limit_connect_time(
        create_test_engine(
            proxy.url(kysera_database_url),
            poolclass=NullPool,
            connect_args=short_connect_timeout(kysera_database_url),
        )
    )
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=3600)
    proxy.blackhole()
    try:
        for _ in range(3):
            with pytest.raises(DatabaseConnectionError) as raised:
                await asyncio.wait_for(breaker.call(select_one, engine), HANG)
            assert raised.value.transient
        assert breaker.state is CircuitState.OPEN
        attempts = proxy.connections
        with pytest.raises(CircuitOpenError):
            await breaker.call(select_one, engine)
        assert proxy.connections == attempts  # failing fast: no new connection attempt
    finally:
        proxy.forward()
        await engine.dispose()


@pytest.mark.kysera_databases("mysql")
async def test_aiomysql_handshakes_are_bounded_by_the_default_timeout_without_settings(
    kysera_database_url: str, kysera_fault_proxy: FaultProxy
) -> None:
    """No connect_timeout anywhere: limit_connect_time's own bound still ends the attempt."""
    proxy = kysera_fault_proxy
    engine = limit_connect_time(
        create_test_engine(proxy.url(kysera_database_url), poolclass=NullPool), timeout=0.5
    )
    proxy.blackhole()
    try:
        with pytest.raises(DatabaseConnectionError) as raised:
            await asyncio.wait_for(classified(select_one, engine), HANG)
    finally:
        proxy.forward()
    try:
        assert raised.value.transient
        assert "handshake" in raised.value.message
        assert await select_one(engine) == 1  # the proxy forwards again: the engine works
    finally:
        await engine.dispose()


@servers
async def test_paginate_bounds_the_engine_it_is_given(
    kysera_database_url: str, kysera_fault_proxy: FaultProxy
) -> None:
    proxy = kysera_fault_proxy
    engine = create_test_engine(
        proxy.url(kysera_database_url),
        poolclass=NullPool,
        connect_args=short_connect_timeout(kysera_database_url),
    )
    statement = sa.select(sa.literal(1).label("one"))
    proxy.blackhole()
    try:
        with pytest.raises(DatabaseConnectionError) as raised:
            await asyncio.wait_for(paginate(engine, statement, page=1, limit=5), HANG)
    finally:
        proxy.forward()
        await engine.dispose()
    assert raised.value.transient


def test_limit_connect_time_refuses_a_bad_timeout() -> None:
    engine = create_test_engine("sqlite+aiosqlite://")
    with pytest.raises(ValueError, match="positive"):
        limit_connect_time(engine, timeout=0)
    assert limit_connect_time(engine) is engine
    assert limit_connect_time(engine) is engine  # idempotent


@servers
async def test_a_connect_timeout_is_transient_for_with_retry_and_health(
    kysera_database_url: str, kysera_fault_proxy: FaultProxy
) -> None:
    proxy = kysera_fault_proxy

    def new_engine() -> AsyncEngine:
        return create_test_engine(
            proxy.url(kysera_database_url),
            poolclass=NullPool,
            connect_args=short_connect_timeout(kysera_database_url),
        )

    # An engine used straight through SQLAlchemy is bounded by limit_connect_time.
    engine = limit_connect_time(new_engine())
    attempts: list[BaseException] = []

    async def forward_again(attempt: int, error: BaseException, delay: float) -> None:
        attempts.append(error)
        proxy.forward()

    proxy.blackhole()
    try:
        result = await asyncio.wait_for(
            with_retry(lambda: select_one(engine), base_delay=0, on_retry=forward_again), HANG
        )
    finally:
        proxy.forward()
        await engine.dispose()
    assert result == 1
    assert [type(error) for error in attempts] == [DatabaseConnectionError]

    # check_health bounds the engine it is given by itself.
    engine = new_engine()
    proxy.blackhole()
    try:
        health = await asyncio.wait_for(check_health(engine, timeout=HANG), HANG)
    finally:
        proxy.forward()
        await engine.dispose()
    assert health.error is not None
    assert health.error.startswith(DatabaseConnectionError.__name__), health.error


# --- DNS, wrong database, wrong role ----------------------------------------------------------


@servers
async def test_a_dns_failure_is_a_transient_connection_error(kysera_database_url: str) -> None:
    engine = create_test_engine(
        make_url(kysera_database_url)
        .set(host="kysera-no-such-host.invalid")
        .render_as_string(hide_password=False)
    )
    breaker = CircuitBreaker(failure_threshold=1)
    try:
        with pytest.raises(DatabaseConnectionError) as raised:
            await breaker.call(select_one, engine)
    finally:
        await engine.dispose()
    assert raised.value.transient
    assert "DNS" in raised.value.message
    assert breaker.state is CircuitState.OPEN


@servers
@pytest.mark.parametrize("wrong", ["database", "username"])
async def test_a_wrong_database_or_role_is_a_connection_error_that_is_not_retried(
    kysera_database_url: str, wrong: str
) -> None:
    url = make_url(kysera_database_url).set(**{wrong: "kysera_no_such_name"})
    engine = create_test_engine(url.render_as_string(hide_password=False))
    calls = 0

    async def attempt() -> int:
        nonlocal calls
        calls += 1
        return await select_one(engine)

    try:
        with pytest.raises(DatabaseConnectionError) as raised:
            await with_retry(attempt, base_delay=0)
    finally:
        await engine.dispose()
    assert calls == 1
    assert not raised.value.transient
    assert "refused the connection" in raised.value.message
    assert "check the database URL" in raised.value.message


def test_refused_logins_the_server_can_report_are_connection_errors() -> None:
    """The codes a trust-authenticated test server cannot produce, from the drivers' own
    exception classes."""
    asyncpg = pytest.importorskip("asyncpg")
    pymysql = pytest.importorskip("pymysql")
    refused = [
        asyncpg.exceptions.InvalidPasswordError('password authentication failed for user "x"'),
        pymysql.err.OperationalError(1045, "Access denied for user 'x'@'h' (using password: YES)"),
        pymysql.err.OperationalError(1044, "Access denied for user 'x'@'h' to database 'd'"),
    ]
    for exc in refused:
        error = parse_database_error(exc)
        assert type(error) is DatabaseConnectionError, exc
        assert not error.transient


# --- pool exhaustion --------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def one_connection_engine(kysera_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_test_engine(kysera_database_url, pool_size=1, max_overflow=0, pool_timeout=0.05)
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_pool_exhaustion_is_a_transient_connection_error_everywhere(
    one_connection_engine: AsyncEngine,
) -> None:
    engine = one_connection_engine
    breaker = CircuitBreaker(failure_threshold=2)
    held = await engine.connect()
    try:
        with pytest.raises(DatabaseConnectionError, match="pool exhausted") as raised:
            await breaker.call(select_one, engine)
        assert raised.value.transient
        assert breaker.failure_count == 1

        # paginate reported it as a bad query (InvalidQueryError) before.
        with pytest.raises(DatabaseConnectionError, match="pool exhausted"):
            await paginate(engine, sa.select(sa.literal(1).label("one")), page=1, limit=5)

        async def release(attempt: int, error: BaseException, delay: float) -> None:
            assert is_transient_error(error)
            await held.close()

        assert await with_retry(lambda: select_one(engine), base_delay=0, on_retry=release) == 1
    finally:
        await held.close()


# --- a connection cut in the middle of an answer ----------------------------------------------


@servers
async def test_a_read_cut_mid_stream_is_transient_and_retried(
    kysera_database_url: str, kysera_fault_proxy: FaultProxy
) -> None:
    proxy = kysera_fault_proxy
    engine = create_test_engine(proxy.url(kysera_database_url))
    # Thousands of rows: the answer spans many chunks, so the cut falls inside it.
    numbers = sa.select(sa.literal_column("a.n * 100 + b.n").label("n")).select_from(
        sa.text(
            "(SELECT 0 AS n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 "
            "UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 "
            "UNION ALL SELECT 8 UNION ALL SELECT 9) AS a, "
            "(SELECT 0 AS n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 "
            "UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 "
            "UNION ALL SELECT 8 UNION ALL SELECT 9) AS b"
        )
    )

    async def read_all() -> list[int]:
        async with engine.connect() as connection:
            return [row.n for row in await connection.execute(numbers)]

    try:
        expected = await read_all()
        proxy.drop_mid_stream(after_bytes=64)
        with pytest.raises(DatabaseConnectionError) as raised:
            await classified(read_all)
        assert raised.value.transient
        proxy.drop_mid_stream(after_bytes=64)
        assert await with_retry(read_all, base_delay=0) == expected
        assert proxy.fired == 2
    finally:
        await engine.dispose()


async def classified(fn: Callable[..., Awaitable[T]], *args: object) -> T:
    """Await ``fn(*args)`` with database errors classified, as every Kysera entry point does."""
    async with classify_database_errors():
        return await fn(*args)


# --- the class: any OSError while connecting ---------------------------------------------------

OS_ERRORS = st.sampled_from(
    [
        OSError,
        TimeoutError,
        socket.gaierror,
        socket.herror,
        ConnectionRefusedError,
        ConnectionResetError,
        BrokenPipeError,
        PermissionError,
    ]
)


@settings(max_examples=40, deadline=None)
@given(kind=OS_ERRORS, message=st.text(max_size=20))
async def test_any_oserror_raised_while_connecting_is_a_transient_connection_error(
    kind: type[OSError], message: str
) -> None:
    """An OSError raised in SQLAlchemy's connection code (here by a do_connect listener, where
    a driver's connect would raise it) is classified wherever Kysera classifies; the same
    error (a file or DNS error) raised by code outside the database layer passes through
    unchanged and is not retried."""
    engine = create_test_engine("sqlite+aiosqlite://", poolclass=NullPool)

    @sa.event.listens_for(engine.sync_engine, "do_connect")
    def fail(*_: object) -> None:
        raise kind(message)

    breaker = CircuitBreaker(failure_threshold=1)
    try:
        with pytest.raises(DatabaseConnectionError) as raised:
            await breaker.call(select_one, engine)
    finally:
        await engine.dispose()
    assert raised.value.transient
    assert isinstance(raised.value.__cause__, kind)
    assert breaker.state is CircuitState.OPEN

    if issubclass(kind, ConnectionError):
        return  # a lost connection wherever it is raised (is_transient_error's rule)

    async def unrelated() -> None:
        raise kind(message)

    with pytest.raises(kind):
        await with_retry(unrelated, base_delay=0)


# --- a session the server ended before COMMIT was sent ----------------------------------------


@pytest.mark.kysera_databases("postgresql")
async def test_retry_transaction_reruns_a_transaction_the_server_ended_before_its_commit(
    kysera_engine: AsyncEngine, kysera_database_url: str, kysera_fault_proxy: FaultProxy
) -> None:
    # idle_in_transaction_session_timeout, say: the server rolled the transaction back with
    # its session, and the COMMIT fails before it is sent: rerunning it applies it once.
    proxy = kysera_fault_proxy
    table = sa.Table("cf_ended", sa.MetaData(), sa.Column("n", sa.Integer))
    async with kysera_engine.begin() as connection:
        await connection.run_sync(table.metadata.drop_all)
        await connection.run_sync(table.metadata.create_all)
    engine = create_test_engine(proxy.url(kysera_database_url))
    attempts = 0

    async def insert(connection: AsyncConnection) -> None:
        nonlocal attempts
        attempts += 1
        await connection.execute(table.insert().values(n=1))
        if attempts == 1:
            pid = await connection.scalar(sa.text("SELECT pg_backend_pid()"))
            proxy.hide_server_close()
            async with kysera_engine.connect() as killer:
                await killer.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await proxy.wait_fired()
            await asyncio.sleep(0.1)  # asyncpg reads the server's last message

    try:
        await asyncio.wait_for(retry_transaction(engine, insert, base_delay=0), HANG)
    finally:
        proxy.forward()
        await engine.dispose()
    async with kysera_engine.begin() as connection:
        assert await connection.scalar(sa.select(sa.func.count()).select_from(table)) == 1
        await connection.run_sync(table.metadata.drop_all)
    assert attempts == 2
