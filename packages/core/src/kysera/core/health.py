"""Database health checks: one-off `check_health` and a background `HealthMonitor`.

A check opens a connection (or uses the one it is given), runs one cheap statement that also
reports the server version, and classifies the result by latency. It never raises for a
database failure: an unreachable, hung or failing database is reported as ``"unhealthy"``
with the error, so a readiness endpoint can return the result as it is.

The timeout holds whatever the server does. When it expires the probe is cancelled;
SQLAlchemy then invalidates the connection it was using (the pool opens a fresh one next
time), so a timed-out check never leaves a half-read connection in the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import Pool
from sqlalchemy.sql import Executable

from kysera.core.engine_guards import guard_engine
from kysera.core.errors import BadRequestError, KyseraError, parse_database_error

__all__ = [
    "HealthCheckResult",
    "HealthMonitor",
    "HealthStatus",
    "PoolMetrics",
    "check_health",
]

logger = logging.getLogger(__name__)

# One statement per dialect that both proves the server answers and names its version.
_VERSION_QUERIES = {
    "postgresql": "SELECT current_setting('server_version')",
    "mysql": "SELECT VERSION()",
    "mariadb": "SELECT VERSION()",
    "sqlite": "SELECT sqlite_version()",
}

# Probes still running; a probe abandoned at its timeout finishes (or cleans up after its
# cancellation) in the background, and must not be garbage-collected mid-way.
_running_probes: set[asyncio.Task[Any]] = set()


class HealthStatus(str, enum.Enum):
    """Outcome of a health check; compares equal to its string value."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class PoolMetrics:
    """A snapshot of a connection pool.

    Attributes:
        size: The configured pool size (connections kept open).
        checked_in: Open connections idle in the pool.
        checked_out: Connections in use.
        overflow: Connections open beyond ``size`` (0 while the pool is not full).
    """

    size: int
    checked_in: int
    checked_out: int
    overflow: int

    @classmethod
    def from_pool(cls, pool: Pool) -> PoolMetrics | None:
        """Read a queue-style pool; ``None`` for pools without counters (NullPool, StaticPool)."""
        try:
            size = pool.size()  # type: ignore[attr-defined]
            checked_in = pool.checkedin()  # type: ignore[attr-defined]
            checked_out = pool.checkedout()  # type: ignore[attr-defined]
            overflow = pool.overflow()  # type: ignore[attr-defined]
        except AttributeError:
            return None
        return cls(
            size=int(size),
            checked_in=int(checked_in),
            checked_out=int(checked_out),
            overflow=max(0, int(overflow)),
        )


@dataclass(frozen=True, slots=True)
class HealthCheckResult:
    """The outcome of one health check.

    Attributes:
        status: ``"healthy"``, ``"degraded"`` or ``"unhealthy"``.
        latency_ms: How long the check took (connection checkout plus the probe), in
            milliseconds; for a timed-out check, the time until it gave up.
        database_version: The server version, e.g. ``"16.4"``, ``"10.11.6-MariaDB"``,
            ``"3.45.1"``; ``None`` when the server did not answer.
        dialect: The SQLAlchemy dialect name (``"postgresql"``, ``"mysql"``, ``"sqlite"``).
        pool: The engine's pool after the check, or ``None`` for pools without counters.
        error: Why the check is unhealthy (error class and message), else ``None``.
        checked_at: When the check started (UTC).
    """

    status: HealthStatus
    latency_ms: float
    database_version: str | None
    dialect: str
    pool: PoolMetrics | None
    error: str | None
    checked_at: datetime = field(compare=False)

    @property
    def is_healthy(self) -> bool:
        """Whether the status is ``"healthy"``."""
        return self.status is HealthStatus.HEALTHY

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict, e.g. for a readiness endpoint's body."""
        return {
            "status": self.status.value,
            "latency_ms": round(self.latency_ms, 3),
            "database_version": self.database_version,
            "dialect": self.dialect,
            "pool": None
            if self.pool is None
            else {
                "size": self.pool.size,
                "checked_in": self.pool.checked_in,
                "checked_out": self.pool.checked_out,
                "overflow": self.pool.overflow,
            },
            "error": self.error,
            "checked_at": self.checked_at.isoformat(),
        }


async def check_health(
    executor: AsyncEngine | AsyncConnection,
    timeout: float = 5.0,
    healthy_ms: float = 100.0,
    degraded_ms: float = 500.0,
    *,
    query: str | Executable | None = None,
) -> HealthCheckResult:
    """Check that the database answers, how fast, and which version it runs.

    Given an engine, the check checks out a connection of its own; given a connection, it
    runs on it (inside the caller's transaction, which it never commits).

    Args:
        executor: The engine (usual) or a connection to check.
        timeout: Seconds before the check gives up and reports ``"unhealthy"``. It holds
            even when the server hangs.
        healthy_ms: Latency under which the status is ``"healthy"``.
        degraded_ms: Latency under which the status is still ``"degraded"``; at or above
            it the database counts as ``"unhealthy"`` even though it answered.
        query: The probe statement. By default a version query for the dialect; pass one
            that reads a table your service needs to check that too. With a custom probe,
            ``database_version`` comes from what the dialect learnt when connecting.

    Returns:
        The result. It is never an exception for a database failure: failures, timeouts
        and unreachable servers are reported as ``"unhealthy"`` with ``error`` set.

    Raises:
        BadRequestError: ``timeout`` is not positive or the thresholds are out of order.
    """
    return await _check(executor, timeout, healthy_ms, degraded_ms, query)


async def _check(
    executor: AsyncEngine | AsyncConnection,
    timeout: float,
    healthy_ms: float,
    degraded_ms: float,
    query: str | Executable | None,
    probes: set[asyncio.Task[Any]] | None = None,
) -> HealthCheckResult:
    """Run one check (`check_health` without the public signature).

    Every probe task is added to ``probes`` (when given) until it ends, so that a
    `HealthMonitor` can wait for its probes, including one interrupted by ``stop()``.
    """
    if timeout <= 0:
        raise BadRequestError(f"timeout must be positive, got {timeout}")
    if not 0 <= healthy_ms <= degraded_ms:
        raise BadRequestError(
            f"need 0 <= healthy_ms <= degraded_ms, got {healthy_ms} and {degraded_ms}"
        )
    engine = executor if isinstance(executor, AsyncEngine) else executor.engine
    dialect = engine.dialect
    checked_at = datetime.now(UTC)
    started = time.perf_counter()
    # A task of its own, so that the timeout does not have to wait for the probe to unwind.
    probe = asyncio.ensure_future(_probe(executor, query))
    _running_probes.add(probe)
    probe.add_done_callback(_forget_probe)
    if probes is not None:
        probes.add(probe)
        probe.add_done_callback(probes.discard)
    version: str | None = None
    error: str | None = None
    try:
        done, _ = await asyncio.wait({probe}, timeout=timeout)
    except asyncio.CancelledError:
        _stop_probe(probe, dialect.name)
        raise
    latency_ms = (time.perf_counter() - started) * 1000.0
    if not done:
        _stop_probe(probe, dialect.name)
        error = f"health check timed out after {timeout:g} s"
    else:
        exc = probe.exception()
        if exc is None:
            version = probe.result() if query is None else _version_from(dialect)
        else:
            error = _describe(exc, dialect.name)
    if error is not None:
        status = HealthStatus.UNHEALTHY
    elif latency_ms < healthy_ms:
        status = HealthStatus.HEALTHY
    elif latency_ms < degraded_ms:
        status = HealthStatus.DEGRADED
    else:
        status = HealthStatus.UNHEALTHY
        error = f"latency {latency_ms:.1f} ms is at or above {degraded_ms:g} ms"
    return HealthCheckResult(
        status=status,
        latency_ms=latency_ms,
        database_version=version,
        dialect=dialect.name,
        pool=PoolMetrics.from_pool(engine.sync_engine.pool),
        error=error,
        checked_at=checked_at,
    )


async def _probe(executor: AsyncEngine | AsyncConnection, query: str | Executable | None) -> str:
    if isinstance(executor, AsyncConnection):
        return await _run_probe(executor, query)
    async with guard_engine(executor).connect() as conn:
        return await _run_probe(conn, query)


async def _run_probe(conn: AsyncConnection, query: str | Executable | None) -> str:
    if query is None:
        statement: Executable = text(_VERSION_QUERIES.get(conn.dialect.name, "SELECT 1"))
    elif isinstance(query, str):
        statement = text(query)
    else:
        statement = query
    result = await conn.execute(statement)
    value = result.scalar()
    if query is None and conn.dialect.name not in _VERSION_QUERIES:
        return _version_from(conn.dialect) or ""
    return str(value)


def _version_from(dialect: Dialect) -> str | None:
    info = getattr(dialect, "server_version_info", None)
    return ".".join(str(part) for part in info) if info else None


def _describe(exc: BaseException, dialect: str) -> str:
    if not isinstance(exc, KyseraError):
        with contextlib.suppress(Exception):
            exc = parse_database_error(exc, dialect)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {message}"


def _stop_probe(probe: asyncio.Task[Any], dialect: str) -> None:
    """Stop a probe the check no longer waits for.

    Over a network, cancelling is right: SQLAlchemy invalidates the connection the probe
    was using, so a half-read connection never goes back to the pool. SQLite is different:
    its statement runs in aiosqlite's thread and cannot be interrupted while it waits on a
    lock, and a cancelled statement keeps its SHARED lock until the garbage collector finds
    it. There the probe is left to finish on its own (within SQLite's busy timeout) and
    returns its connection normally.
    """
    if dialect != "sqlite":
        probe.cancel()


def _forget_probe(task: asyncio.Task[Any]) -> None:
    _running_probes.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved


HealthChangeCallback = Callable[[HealthCheckResult | None, HealthCheckResult], object]
"""``on_change(old, new)``: a plain function, or a coroutine function (it is awaited)."""


class HealthMonitor:
    """Checks an engine's health on an interval and reports status changes.

    ```python
    async with HealthMonitor(engine, interval=10, on_change=alert) as monitor:
        ...
        monitor.last  # the latest HealthCheckResult
    ```

    Starting runs the first check at once, so ``last`` is set inside the block. Then a
    background task checks every ``interval`` seconds. ``on_change(old, new)`` is called
    once per change of status, including the first result (with ``old=None``); it may be a
    plain function or a coroutine function, and an exception it raises is logged, not
    propagated. Stopping cancels the task and waits for it, so nothing is left running.

    Args:
        engine: The engine to watch.
        interval: Seconds between the end of one check and the start of the next.
        on_change: Called with the previous and the new result when the status changes.
        timeout: Passed to `check_health`.
        healthy_ms: Passed to `check_health`.
        degraded_ms: Passed to `check_health`.
        query: Passed to `check_health`.

    Raises:
        BadRequestError: ``interval`` is not positive.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        interval: float = 30.0,
        on_change: HealthChangeCallback | None = None,
        *,
        timeout: float = 5.0,
        healthy_ms: float = 100.0,
        degraded_ms: float = 500.0,
        query: str | Executable | None = None,
    ) -> None:
        if interval <= 0:
            raise BadRequestError(f"interval must be positive, got {interval}")
        self.engine = engine
        self.interval = interval
        self.on_change = on_change
        self._options = (timeout, healthy_ms, degraded_ms, query)
        self._last: HealthCheckResult | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._probes: set[asyncio.Task[Any]] = set()

    @property
    def last(self) -> HealthCheckResult | None:
        """The most recent result, or ``None`` before the first check."""
        return self._last

    @property
    def running(self) -> bool:
        """Whether the background task is checking on its interval."""
        return self._task is not None and not self._task.done()

    async def check_now(self) -> HealthCheckResult:
        """Run a check now, update `last` and report a status change."""
        async with self._lock:
            timeout, healthy_ms, degraded_ms, query = self._options
            result = await _check(
                self.engine, timeout, healthy_ms, degraded_ms, query, self._probes
            )
            previous, self._last = self._last, result
            if previous is None or previous.status is not result.status:
                await self._notify(previous, result)
            return result

    async def start(self) -> None:
        """Run the first check and start checking on the interval (no-op when running)."""
        if self.running:
            return
        await self.check_now()
        self._task = asyncio.create_task(self._run(), name=f"kysera-health-monitor-{id(self)}")

    async def stop(self) -> None:
        """Stop checking and wait until the background task and any timed-out probe end."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._probes:
            await asyncio.gather(*self._probes, return_exceptions=True)

    async def __aenter__(self) -> HealthMonitor:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check_now()
            except Exception:  # pragma: no cover - check_health reports, it does not raise
                logger.exception("health check failed unexpectedly")

    async def _notify(self, previous: HealthCheckResult | None, new: HealthCheckResult) -> None:
        if self.on_change is None:
            return
        try:
            outcome = self.on_change(previous, new)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            logger.exception("HealthMonitor on_change callback failed")
