"""SQL capture: record the statements an engine or connection sends, for tests and debugging.

```python
async with capture_queries(engine) as captured:
    await load_orders_with_customers(engine)
captured.assert_count(2)  # fails listing every statement when an N+1 creeps in
```

Capture listens to SQLAlchemy's cursor events (``before_cursor_execute``,
``after_cursor_execute`` and ``handle_error``), so it sees the SQL exactly as the driver
received it, with the dialect's placeholders (``$1`` on asyncpg, ``?`` on SQLite, ``%s`` on
MySQL) and the parameters as sent. The listeners are removed when the block exits, and the
engine's "has event listeners" flags are put back as they were, so an engine that was once
captured costs nothing afterwards.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from time import perf_counter
from types import TracebackType
from typing import Any

import sqlparse
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, ExceptionContext, ExecutionContext
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.core.errors import BadRequestError, parse_database_error

__all__ = [
    "CapturedQuery",
    "QueryProfiler",
    "QuerySummary",
    "capture_queries",
    "format_sql",
]

logger = logging.getLogger(__name__)

CaptureTarget = AsyncEngine | AsyncConnection | Engine | Connection
"""What a capture can watch: an engine (all its connections) or one connection."""


@dataclass(slots=True)
class CapturedQuery:
    """One statement as it was sent to the database.

    A plain record (no validation, built in well under a microsecond): capture runs inside
    every statement's execution, so it keeps its own cost small.

    Attributes:
        sql: The SQL string the driver received, with the dialect's placeholders.
        params: The parameters as sent: a tuple or dict for one execution, a sequence of
            them for ``executemany``.
        duration_ms: Wall time from handing the statement to the driver until it returned
            (or failed), in milliseconds.
        rowcount: Rows the driver reports as affected or returned; ``None`` when it does not
            know (most drivers for a ``SELECT``).
        error: The error the statement failed with (a classified
            `kysera.core.DatabaseError` for database failures), or ``None``.
        executemany: Whether the statement ran once per parameter set (``executemany``).
        started_at_epoch: When the statement was sent, as a Unix timestamp; `started_at`
            gives it as a UTC ``datetime``.
    """

    sql: str
    params: Any
    duration_ms: float
    rowcount: int | None
    error: BaseException | None
    executemany: bool
    started_at_epoch: float = field(repr=False)

    @property
    def started_at(self) -> datetime:
        """When the statement was sent (UTC)."""
        return datetime.fromtimestamp(self.started_at_epoch, UTC)

    def formatted(self) -> str:
        """Return the SQL re-indented for reading (see `format_sql`)."""
        return format_sql(self.sql)


@dataclass(frozen=True, slots=True)
class QuerySummary:
    """Aggregate figures over captured statements.

    Attributes:
        total: Statements executed while capturing, including any the ring buffer dropped.
        total_ms: Their summed duration in milliseconds.
        avg_ms: ``total_ms / total`` (0 when nothing ran).
        p95_ms: 95th percentile duration over the statements still held.
        p99_ms: 99th percentile duration over the statements still held.
        errors: How many statements failed.
        slowest: The slowest statement seen, or ``None`` when nothing ran.
    """

    total: int
    total_ms: float
    avg_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    slowest: CapturedQuery | None


@dataclass(slots=True)
class _Counters:
    total: int = 0
    total_ms: float = 0.0
    errors: int = 0
    slowest: CapturedQuery | None = None


@dataclass(slots=True)
class _Attachment:
    engine: Engine
    engine_had_events: bool
    dialect_had_events: bool


class QueryProfiler:
    """Records the statements run on an engine or a connection into a ring buffer.

    `capture_queries` returns one for a ``with`` / ``async with`` block; create one directly
    to profile a long-running process with `attach` and `detach`::

        profiler = QueryProfiler(engine, max_queries=10_000).attach()
        ...
        for query in profiler.slowest(5):
            print(query.duration_ms, query.formatted())
        profiler.detach()

    Args:
        executor: An `AsyncEngine` (every connection it hands out), an `AsyncConnection`
            (only that connection), or their sync counterparts.
        slow_query_ms: Statements at least this slow are passed to ``on_slow_query``.
        on_slow_query: Called with each slow `CapturedQuery`, inside the statement's
            execution: keep it quick. If it raises, the error is logged, not propagated.
        max_queries: How many statements to keep; older ones are dropped first. Counts and
            totals still include dropped statements.

    Raises:
        BadRequestError: ``max_queries`` is not positive, or the connection is not started.
    """

    def __init__(
        self,
        executor: CaptureTarget,
        *,
        slow_query_ms: float | None = None,
        on_slow_query: Callable[[CapturedQuery], object] | None = None,
        max_queries: int = 1000,
    ) -> None:
        if max_queries < 1:
            raise BadRequestError(f"max_queries must be at least 1, got {max_queries}")
        self._engine, self._connection = _resolve(executor)
        self._on_slow_query = on_slow_query
        self._slow_threshold_ms = slow_query_ms if on_slow_query is not None else None
        self._queries: deque[CapturedQuery] = deque(maxlen=max_queries)
        self._counters = _Counters()
        self._attachment: _Attachment | None = None
        # Read by the listeners; set while attached.
        self._watched: Connection | None = None
        self._in_flight: dict[int, float] = {}
        # perf_counter() times statements; this turns its readings into Unix timestamps.
        self._epoch_offset = 0.0

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def attached(self) -> bool:
        """Whether statements are being recorded now."""
        return self._attachment is not None

    def attach(self) -> QueryProfiler:
        """Start recording (no-op when already recording); returns the profiler."""
        if self._attachment is not None:
            return self
        engine = self._engine
        self._attachment = _Attachment(
            engine=engine,
            engine_had_events=engine._has_events,
            dialect_had_events=engine.dialect._has_events,
        )
        self._watched = self._connection
        self._in_flight = {}
        self._epoch_offset = time.time() - perf_counter()
        event.listen(engine, "before_cursor_execute", self._before, retval=True)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(engine, "handle_error", self._on_error)
        return self

    def detach(self) -> None:
        """Stop recording (no-op when not recording). What was recorded stays readable."""
        attachment = self._attachment
        if attachment is None:
            return
        self._attachment = None
        engine = attachment.engine
        event.remove(engine, "before_cursor_execute", self._before)
        event.remove(engine, "after_cursor_execute", self._after)
        event.remove(engine, "handle_error", self._on_error)
        # SQLAlchemy leaves its "has listeners" flags set after the last listener goes, and
        # every execution then walks the (empty) event lists; put them back when nobody
        # else is listening, so a captured engine runs as fast as before.
        if not attachment.engine_had_events and not _has_listeners(engine.dispatch):
            engine._has_events = False
        if not attachment.dialect_had_events and not _has_listeners(engine.dialect.dispatch):
            engine.dialect._has_events = False

    def clear(self) -> None:
        """Forget everything recorded so far (recording continues if attached)."""
        self._queries.clear()
        self._counters = _Counters()

    def __enter__(self) -> QueryProfiler:
        return self.attach()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.detach()

    async def __aenter__(self) -> QueryProfiler:
        return self.attach()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.detach()

    # --- results -----------------------------------------------------------------------

    @property
    def queries(self) -> list[CapturedQuery]:
        """The statements still held, oldest first (at most ``max_queries``)."""
        return list(self._queries)

    @property
    def count(self) -> int:
        """How many statements ran while recording, including any the buffer dropped."""
        return self._counters.total

    def summary(self) -> QuerySummary:
        """Return totals, average, 95th/99th percentile and the slowest statement."""
        counters = self._counters
        durations = [query.duration_ms for query in self._queries]
        if len(durations) >= 2:
            cuts = statistics.quantiles(durations, n=100, method="inclusive")
            p95, p99 = cuts[94], cuts[98]
        else:
            p95 = p99 = durations[0] if durations else 0.0
        return QuerySummary(
            total=counters.total,
            total_ms=counters.total_ms,
            avg_ms=counters.total_ms / counters.total if counters.total else 0.0,
            p95_ms=p95,
            p99_ms=p99,
            errors=counters.errors,
            slowest=counters.slowest,
        )

    def slowest(self, n: int = 10) -> list[CapturedQuery]:
        """Return the ``n`` slowest statements still held, slowest first."""
        return sorted(self._queries, key=lambda query: query.duration_ms, reverse=True)[:n]

    def assert_count(self, expected: int) -> None:
        """Assert that exactly ``expected`` statements ran; for tests (N+1 detection).

        Raises:
            AssertionError: With the number that ran and every statement held, numbered.
        """
        if self.count == expected:
            return
        lines = [f"expected {expected} statement(s), {self.count} ran:"]
        lines += [
            f"  {number}. {' '.join(query.sql.split())}  params={query.params!r}"
            + (f"  error={query.error!r}" if query.error is not None else "")
            for number, query in enumerate(self._queries, start=1)
        ]
        if self.count > len(self._queries):
            lines.append(f"  ({self.count - len(self._queries)} older statement(s) dropped)")
        raise AssertionError("\n".join(lines))

    def __repr__(self) -> str:
        state = "attached" if self.attached else "detached"
        return f"<QueryProfiler {state} count={self.count}>"

    # --- event listeners ---------------------------------------------------------------
    # These run inside every statement's execution while attached: keep them lean.

    def _before(
        self,
        conn: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: ExecutionContext | None,
        executemany: bool,
    ) -> tuple[str, Any]:
        watched = self._watched
        if watched is None or conn is watched:
            # A connection runs one statement at a time, so it keys the statement in flight.
            self._in_flight[id(conn)] = perf_counter()
        return statement, parameters

    def _after(
        self,
        conn: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: ExecutionContext | None,
        executemany: bool,
    ) -> None:
        started = self._in_flight.pop(id(conn), None)
        if started is not None:
            rowcount = cursor.rowcount
            self._record(
                statement,
                parameters,
                started,
                rowcount if isinstance(rowcount, int) and rowcount >= 0 else None,
                None,
                executemany,
            )

    def _on_error(self, context: ExceptionContext) -> None:
        if context.statement is None or context.connection is None:
            return
        started = self._in_flight.pop(id(context.connection), None)
        if started is None:
            return
        error: BaseException = context.original_exception
        if context.sqlalchemy_exception is not None:
            error = parse_database_error(context.sqlalchemy_exception, context.dialect.name)
        execution = context.execution_context
        self._record(
            context.statement,
            context.parameters,
            started,
            None,
            error,
            bool(execution is not None and execution.executemany),
        )

    def _record(
        self,
        statement: str,
        parameters: Any,
        started: float,
        rowcount: int | None,
        error: BaseException | None,
        executemany: bool,
    ) -> None:
        duration_ms = (perf_counter() - started) * 1000.0
        query = CapturedQuery(
            statement,
            parameters,
            duration_ms,
            rowcount,
            error,
            executemany,
            started + self._epoch_offset,
        )
        self._queries.append(query)
        counters = self._counters
        counters.total += 1
        counters.total_ms += duration_ms
        if error is not None:
            counters.errors += 1
        slowest = counters.slowest
        if slowest is None or duration_ms > slowest.duration_ms:
            counters.slowest = query
        threshold = self._slow_threshold_ms
        if threshold is not None and duration_ms >= threshold:
            try:
                self._on_slow_query(query)  # type: ignore[misc]
            except Exception:
                logger.exception("on_slow_query callback failed for %s", statement)


def capture_queries(
    executor: CaptureTarget,
    *,
    slow_query_ms: float | None = None,
    on_slow_query: Callable[[CapturedQuery], object] | None = None,
    max_queries: int = 1000,
) -> QueryProfiler:
    """Record every statement run on ``executor`` inside a ``with`` or ``async with`` block.

    Args:
        executor: An `AsyncEngine` (any connection it hands out) or an `AsyncConnection`
            (only that connection); sync engines and connections work too.
        slow_query_ms: Statements at least this slow are passed to ``on_slow_query``.
        on_slow_query: Called with each slow `CapturedQuery`.
        max_queries: Ring-buffer size: only the newest ``max_queries`` statements are kept.

    Returns:
        A `QueryProfiler` that records while the block runs and stays readable afterwards:
        ``.queries``, ``.count``, ``.summary()``, ``.assert_count(n)``.
    """
    return QueryProfiler(
        executor,
        slow_query_ms=slow_query_ms,
        on_slow_query=on_slow_query,
        max_queries=max_queries,
    )


def format_sql(sql: str) -> str:
    """Return ``sql`` re-indented with upper-case keywords, for logs and test failures.

    Formatting only changes whitespace and keyword case (via `sqlparse`); placeholders and
    literals are left as they are.
    """
    formatted: str = sqlparse.format(sql, reindent=True, keyword_case="upper")
    return formatted.strip()


def _resolve(executor: CaptureTarget) -> tuple[Engine, Connection | None]:
    if isinstance(executor, AsyncEngine):
        return executor.sync_engine, None
    if isinstance(executor, AsyncConnection):
        connection = executor.sync_connection
        if connection is None:
            raise BadRequestError(
                "capture_queries needs a started AsyncConnection: "
                "use it inside 'async with engine.connect() as conn:'"
            )
        return connection.engine, connection
    if isinstance(executor, Engine):
        return executor, None
    if isinstance(executor, Connection):
        return executor.engine, executor
    raise BadRequestError(
        f"capture_queries needs an engine or a connection, got {type(executor).__name__}"
    )


def _has_listeners(dispatch: Any) -> bool:
    names: list[str] | None = getattr(type(dispatch), "_event_names", None)
    if names is None:  # pragma: no cover - SQLAlchemy changed its internals: keep the flag
        return True
    return any(getattr(dispatch, name) for name in names)
