"""check_health and HealthMonitor against real servers: up, slow, hung, locked and gone."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.core import (
    BadRequestError,
    HealthCheckResult,
    HealthMonitor,
    HealthStatus,
    PoolMetrics,
    check_health,
)
from kysera.core.pytest_plugin import create_test_engine

metadata = sa.MetaData()
probe_table = sa.Table("health_probe", metadata, sa.Column("id", sa.Integer, primary_key=True))
COUNT_PROBE = sa.select(sa.func.count()).select_from(probe_table)
# Never reached in a passing test: each bounds a check whose timeout is far shorter.
HANG_GUARD_S = 10.0
# A healthy threshold no loaded CI machine misses, for tests about something else.
ALWAYS_FAST = {"healthy_ms": 60_000.0, "degraded_ms": 120_000.0}


@pytest.fixture
async def engine(kysera_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    async with kysera_engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        yield kysera_engine
    finally:
        async with kysera_engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)


@pytest.fixture
async def small_engine(kysera_database_url: str) -> AsyncIterator[AsyncEngine]:
    """One pooled connection: a broken connection left in the pool would show at once."""
    engine = create_test_engine(kysera_database_url, pool_size=1, max_overflow=0)
    try:
        yield engine
    finally:
        await engine.dispose()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: connecting to it is refused


def unreachable_url(url: str, tmp_path: Path) -> str:
    if url.startswith("sqlite"):
        return f"sqlite+aiosqlite:///{tmp_path / 'no-such-directory' / 'db.sqlite'}"
    return make_url(url).set(host="127.0.0.1", port=closed_port()).render_as_string(False)


async def test_a_working_database_is_healthy(engine: AsyncEngine) -> None:
    result = await check_health(engine, **ALWAYS_FAST)

    assert result.status == "healthy"
    assert result.status is HealthStatus.HEALTHY
    assert result.is_healthy
    assert result.error is None
    assert result.dialect == engine.dialect.name
    assert result.database_version
    assert result.database_version[0].isdigit()
    assert result.latency_ms > 0
    assert isinstance(result.pool, PoolMetrics)
    assert result.pool.checked_out == 0
    assert result.to_dict()["status"] == "healthy"


async def test_latency_thresholds_decide_between_healthy_degraded_unhealthy(
    engine: AsyncEngine,
) -> None:
    # Any real latency is >= 0 ms and < 2 minutes: the thresholds alone pick the status.
    degraded = await check_health(engine, healthy_ms=0, degraded_ms=120_000)
    slow = await check_health(engine, healthy_ms=0, degraded_ms=0)

    assert degraded.status == "degraded"
    assert degraded.error is None
    assert slow.status == "unhealthy"
    assert slow.error is not None
    assert slow.error.startswith("latency ")
    assert slow.database_version  # it answered, only too slowly


async def test_pool_metrics_count_checked_out_connections(kysera_database_url: str) -> None:
    engine = create_test_engine(kysera_database_url, pool_size=2, max_overflow=1)
    try:
        async with engine.connect() as held:
            await held.execute(sa.text("SELECT 1"))
            result = await check_health(engine, **ALWAYS_FAST)
    finally:
        await engine.dispose()
    assert result.pool == PoolMetrics(size=2, checked_in=1, checked_out=1, overflow=0)


async def test_on_a_connection_it_runs_inside_the_callers_transaction(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        await conn.execute(sa.insert(probe_table).values(id=1))
        result = await check_health(conn, query=COUNT_PROBE, **ALWAYS_FAST)
        assert result.status == "healthy"
        assert conn.in_transaction()  # not committed by the check
        await conn.rollback()
    async with engine.connect() as conn:
        assert (await conn.execute(COUNT_PROBE)).scalar_one() == 0


async def test_an_unreachable_server_is_unhealthy_not_an_exception(
    kysera_database_url: str, tmp_path: Path
) -> None:
    engine = create_test_engine(unreachable_url(kysera_database_url, tmp_path))
    try:
        result = await asyncio.wait_for(check_health(engine, timeout=5.0), HANG_GUARD_S)
    finally:
        await engine.dispose()

    assert result.status == "unhealthy"
    assert result.error is not None
    assert result.error.startswith("DatabaseConnectionError: ")
    assert result.database_version is None
    assert result.latency_ms < 5_000


@pytest.mark.kysera_databases("postgresql", "mysql")
async def test_a_server_that_accepts_but_never_answers_times_out(
    kysera_database_url: str,
) -> None:
    connections: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = make_url(kysera_database_url).set(host="127.0.0.1", port=port)
    engine = create_test_engine(url.render_as_string(False))
    try:
        started = time.monotonic()
        result = await asyncio.wait_for(check_health(engine, timeout=0.3), HANG_GUARD_S)
        elapsed = time.monotonic() - started
    finally:
        await engine.dispose()
        for writer in connections:
            writer.close()
        server.close()
        await server.wait_closed()

    assert connections, "the driver never reached the fake server"
    assert result.status == "unhealthy"
    assert result.error == "health check timed out after 0.3 s"
    assert elapsed < HANG_GUARD_S / 2


SLEEP_PROBES = {"postgresql": "SELECT pg_sleep(30)", "mysql": "SELECT SLEEP(30)"}


@pytest.mark.kysera_databases("postgresql", "mysql")
async def test_a_hanging_query_times_out_and_leaves_a_working_pool(
    small_engine: AsyncEngine,
) -> None:
    sleep = SLEEP_PROBES[small_engine.dialect.name]
    result = await asyncio.wait_for(
        check_health(small_engine, timeout=0.3, query=sleep), HANG_GUARD_S
    )
    assert result.status == "unhealthy"
    assert result.error == "health check timed out after 0.3 s"

    # The pool's only connection was invalidated, not handed back mid-query.
    after = await asyncio.wait_for(check_health(small_engine, **ALWAYS_FAST), HANG_GUARD_S)
    assert after.status == "healthy"
    assert after.pool is not None
    assert after.pool.checked_out == 0


async def test_an_exhausted_pool_times_out_then_recovers(small_engine: AsyncEngine) -> None:
    async with small_engine.connect() as only_connection:
        await only_connection.execute(sa.text("SELECT 1"))
        waiting = await asyncio.wait_for(check_health(small_engine, timeout=0.3), HANG_GUARD_S)
    assert waiting.status == "unhealthy"
    assert waiting.error == "health check timed out after 0.3 s"
    assert waiting.pool == PoolMetrics(size=1, checked_in=0, checked_out=1, overflow=0)

    after = await asyncio.wait_for(check_health(small_engine, **ALWAYS_FAST), HANG_GUARD_S)
    assert after.status == "healthy"


async def hold_exclusive_lock(conn: AsyncConnection) -> None:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        await conn.execute(sa.text("LOCK TABLE health_probe IN ACCESS EXCLUSIVE MODE"))
    elif dialect == "mysql":
        await conn.execute(sa.text("LOCK TABLES health_probe WRITE"))
    else:
        # On the driver connection: through SQLAlchemy, the test engine's own BEGIN would
        # come first, and SQLite cannot upgrade it to an exclusive lock in place.
        raw = await conn.get_raw_connection()
        await raw.driver_connection.execute("BEGIN EXCLUSIVE")


async def release_lock(conn: AsyncConnection) -> None:
    if conn.dialect.name == "mysql":
        await conn.execute(sa.text("UNLOCK TABLES"))
    elif conn.dialect.name == "sqlite":
        raw = await conn.get_raw_connection()
        await raw.driver_connection.execute("ROLLBACK")
    await conn.rollback()


async def test_a_query_blocked_on_a_lock_times_out_and_leaves_a_working_pool(
    engine: AsyncEngine, small_engine: AsyncEngine
) -> None:
    async with engine.connect() as holder:
        await hold_exclusive_lock(holder)
        try:
            started = time.monotonic()
            result = await asyncio.wait_for(
                check_health(small_engine, timeout=0.3, query=COUNT_PROBE), HANG_GUARD_S
            )
            elapsed = time.monotonic() - started
        finally:
            await release_lock(holder)

    assert result.status == "unhealthy"
    assert result.error == "health check timed out after 0.3 s"
    # SQLite's busy handler would wait 5 s for the lock: the timeout does not.
    assert elapsed < 4
    after = await asyncio.wait_for(
        check_health(small_engine, query=COUNT_PROBE, **ALWAYS_FAST), HANG_GUARD_S
    )
    assert after.status == "healthy", after.error


async def test_a_failing_probe_reports_the_classified_error(engine: AsyncEngine) -> None:
    result = await check_health(engine, query="SELECT * FROM health_no_such_table")
    assert result.status == "unhealthy"
    assert result.error is not None
    assert result.error.startswith("DatabaseError: ")
    assert "health_no_such_table" in result.error


async def test_bad_arguments_raise_bad_request(engine: AsyncEngine) -> None:
    with pytest.raises(BadRequestError, match="timeout"):
        await check_health(engine, timeout=0)
    with pytest.raises(BadRequestError, match="healthy_ms"):
        await check_health(engine, healthy_ms=500, degraded_ms=100)
    with pytest.raises(BadRequestError, match="interval"):
        HealthMonitor(engine, interval=0)


# --- HealthMonitor ---------------------------------------------------------------------


class Changes:
    """Collects on_change calls and lets a test wait for the next one."""

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, str]] = []
        self.event = asyncio.Event()

    async def __call__(self, old: HealthCheckResult | None, new: HealthCheckResult) -> None:
        self.seen.append((None if old is None else old.status.value, new.status.value))
        self.event.set()

    async def next(self) -> None:
        await asyncio.wait_for(self.event.wait(), HANG_GUARD_S)
        self.event.clear()


async def test_monitor_reports_each_status_change_once(engine: AsyncEngine) -> None:
    changes = Changes()
    monitor = HealthMonitor(
        engine, interval=3600, on_change=changes, query=COUNT_PROBE, **ALWAYS_FAST
    )
    async with monitor:
        assert monitor.last is not None
        assert monitor.last.status == "healthy"
        await monitor.check_now()
        async with engine.begin() as conn:
            await conn.run_sync(probe_table.drop)
        assert (await monitor.check_now()).status == "unhealthy"
        await monitor.check_now()
        async with engine.begin() as conn:
            await conn.run_sync(probe_table.create)
        await monitor.check_now()

    assert changes.seen == [
        (None, "healthy"),
        ("healthy", "unhealthy"),
        ("unhealthy", "healthy"),
    ]


async def test_monitor_checks_on_its_interval(engine: AsyncEngine) -> None:
    changes = Changes()
    async with HealthMonitor(
        engine, interval=0.02, on_change=changes, query=COUNT_PROBE, **ALWAYS_FAST
    ) as monitor:
        await changes.next()  # the first check, run by start()
        assert monitor.running
        async with engine.begin() as conn:
            await conn.run_sync(probe_table.drop)
        await changes.next()  # noticed by the background task, nobody called check_now
        async with engine.begin() as conn:
            await conn.run_sync(probe_table.create)
        await changes.next()

    assert changes.seen == [
        (None, "healthy"),
        ("healthy", "unhealthy"),
        ("unhealthy", "healthy"),
    ]


async def test_monitor_stops_cleanly_leaving_no_task(small_engine: AsyncEngine) -> None:
    before = asyncio.all_tasks()
    monitor = HealthMonitor(small_engine, interval=0.01)
    await monitor.start()
    await monitor.start()  # already running: no second task
    assert len(asyncio.all_tasks() - before) == 1
    await asyncio.sleep(0.05)
    await monitor.stop()
    await monitor.stop()

    assert not monitor.running
    assert asyncio.all_tasks() - before == set()
    checked = monitor.last
    await asyncio.sleep(0.05)
    assert monitor.last is checked  # no check ran after stop()


async def test_monitor_stop_waits_for_a_timed_out_probe(
    engine: AsyncEngine, small_engine: AsyncEngine
) -> None:
    before = asyncio.all_tasks()
    async with engine.connect() as holder:
        await hold_exclusive_lock(holder)
        try:
            monitor = HealthMonitor(small_engine, interval=3600, timeout=0.2, query=COUNT_PROBE)
            await monitor.start()
            assert monitor.last is not None
            assert monitor.last.status == "unhealthy"
        finally:
            await release_lock(holder)
    await asyncio.wait_for(monitor.stop(), HANG_GUARD_S)
    assert asyncio.all_tasks() - before == set()


async def test_a_failing_on_change_is_logged_and_monitoring_goes_on(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[HealthCheckResult] = []

    def broken(old: HealthCheckResult | None, new: HealthCheckResult) -> None:
        calls.append(new)
        raise RuntimeError("alerting is down")

    with caplog.at_level(logging.ERROR, logger="kysera.core.health"):
        async with HealthMonitor(engine, on_change=broken, **ALWAYS_FAST) as monitor:
            result = await monitor.check_now()
    assert result.status == "healthy"
    assert len(calls) == 1
    assert "on_change callback failed" in caplog.text
