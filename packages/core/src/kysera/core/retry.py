"""Retries with exponential backoff, and whole-transaction retries.

`with_retry` runs an async callable again when it fails with a transient error (by default
`is_transient_error`: serialization failures, deadlocks, lock timeouts, lost connections,
statement timeouts). `retry_transaction` is the supported way to use SERIALIZABLE and
REPEATABLE READ: each attempt runs the *whole* transaction on a fresh connection, because a
database that aborts a transaction has discarded everything that transaction did.

The backoff schedule comes from tenacity: attempt ``n`` waits
``min(max_delay, base_delay * 2 ** (n - 1))``, shortened by a random fraction of up to
``jitter`` so that conflicting clients do not retry in lockstep.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Awaitable, Callable, Coroutine
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction
from tenacity import RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential
from tenacity.asyncio import AsyncRetrying
from tenacity.wait import wait_base

from kysera.core._unusable_connections import may_have_been_sent
from kysera.core.engine_guards import guard_engine
from kysera.core.errors import (
    BadRequestError,
    CommitOutcomeUnknownError,
    DatabaseConnectionError,
    classify_database_errors,
    is_transient_error,
)

__all__ = [
    "retry_transaction",
    "retryable",
    "with_retry",
]

T = TypeVar("T")
P = ParamSpec("P")

RetryPredicate = Callable[[BaseException], bool]
"""Decides whether an error is worth another attempt (it receives the classified error)."""

OnRetry = Callable[[int, BaseException, float], Awaitable[None] | None]
"""Called before each retry as ``on_retry(failed_attempt, error, delay_seconds)``; may be async."""


class _ShortenedExponentialWait(wait_base):
    """tenacity's exponential wait, each delay shortened by a random fraction up to ``jitter``.

    Shortening (instead of spreading around the delay) keeps ``max_delay`` a real maximum
    while still spreading clients out once the delay has reached it.
    """

    def __init__(self, base_delay: float, max_delay: float, jitter: float) -> None:
        self._exponential = wait_exponential(multiplier=base_delay, max=max_delay)
        self._jitter = jitter

    def __call__(self, retry_state: RetryCallState) -> float:
        delay = min(float(self._exponential(retry_state)), self._exponential.max)
        return delay * (1.0 - self._jitter * random.random())


def _check_options(max_attempts: int, base_delay: float, max_delay: float, jitter: float) -> None:
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise BadRequestError(f"max_attempts must be an integer >= 1, got {max_attempts!r}")
    if base_delay < 0 or max_delay < 0:
        raise BadRequestError(
            f"base_delay and max_delay must be >= 0, got {base_delay!r} and {max_delay!r}"
        )
    if not 0 <= jitter <= 1:
        raise BadRequestError(f"jitter must be between 0 and 1, got {jitter!r}")


async def _call_classified(fn: Callable[[], Awaitable[T]]) -> T:
    # Retry decisions and the final error both see the Kysera error, never the driver's.
    async with classify_database_errors():
        return await fn()


async def with_retry(
    fn: Callable[[], Awaitable[T]],
    *,
    max_attempts: int = 3,
    base_delay: float = 0.05,
    max_delay: float = 2.0,
    jitter: float = 0.25,
    retry_on: RetryPredicate = is_transient_error,
    on_retry: OnRetry | None = None,
) -> T:
    """Await ``fn()``, calling it again after a transient failure, with exponential backoff.

    Database errors are classified first (`classify_database_errors`), so ``retry_on``,
    ``on_retry`` and the caller all see a `DatabaseError` subclass such as
    `SerializationError`, with the driver's exception as ``__cause__``. Non-database
    exceptions pass through unchanged; ``BaseException``s such as cancellation are never
    retried.

    Args:
        fn: An async callable taking no arguments (use a ``lambda`` or
            ``functools.partial`` to bind some).
        max_attempts: How many times ``fn`` may run in total (>= 1).
        base_delay: Seconds to wait before the first retry; doubles for each retry.
        max_delay: Upper bound on any single wait, in seconds.
        jitter: Each wait is shortened by a random fraction in ``[0, jitter]`` (0 to 1).
        retry_on: Whether an error deserves another attempt. Defaults to
            `is_transient_error`.
        on_retry: Called as ``on_retry(failed_attempt, error, delay)`` before sleeping;
            may be a coroutine function.

    Returns:
        What ``fn`` returned on the first successful attempt.

    Raises:
        BadRequestError: If an option is out of range.
        Exception: The (classified) error of the last attempt, when it is not retryable or
            the attempts have run out.
    """
    _check_options(max_attempts, base_delay, max_delay, jitter)
    # Fast path: most calls succeed at once, and then tenacity's bookkeeping (tens of
    # microseconds per call) is not worth paying.
    try:
        return await _call_classified(fn)
    except Exception as error:
        replay = [error]

    def should_retry(error: BaseException) -> bool:
        return isinstance(error, Exception) and retry_on(error)

    async def notify(retry_state: RetryCallState) -> None:
        assert on_retry is not None
        assert retry_state.outcome is not None
        error = retry_state.outcome.exception()
        assert error is not None
        outcome = on_retry(retry_state.attempt_number, error, retry_state.upcoming_sleep)
        if inspect.isawaitable(outcome):
            await outcome

    async def attempt() -> T:
        # tenacity's first attempt replays the failure already seen on the fast path.
        if replay:
            raise replay.pop()
        return await _call_classified(fn)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(max_attempts),
        wait=_ShortenedExponentialWait(base_delay, max_delay, jitter),
        retry=retry_if_exception(should_retry),
        before_sleep=notify if on_retry is not None else None,
        reraise=True,
    )
    result: T = await retrying(attempt)
    return result


def retryable(
    *,
    max_attempts: int = 3,
    base_delay: float = 0.05,
    max_delay: float = 2.0,
    jitter: float = 0.25,
    retry_on: RetryPredicate = is_transient_error,
    on_retry: OnRetry | None = None,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """Decorate an async function so that every call goes through `with_retry`.

    Takes the same options as `with_retry`; each call is retried on its own::

        @retryable(max_attempts=5)
        async def load_user(engine: AsyncEngine, user_id: int) -> dict[str, Any]: ...

    Raises:
        BadRequestError: At decoration time, if an option is out of range.
    """
    _check_options(max_attempts, base_delay, max_delay, jitter)

    def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        @wraps(fn)
        async def call_with_retry(*args: P.args, **kwargs: P.kwargs) -> T:
            return await with_retry(
                lambda: fn(*args, **kwargs),
                max_attempts=max_attempts,
                base_delay=base_delay,
                max_delay=max_delay,
                jitter=jitter,
                retry_on=retry_on,
                on_retry=on_retry,
            )

        return call_with_retry

    return decorate


async def retry_transaction(
    engine: AsyncEngine,
    fn: Callable[[AsyncConnection], Awaitable[T]],
    *,
    isolation_level: str | None = None,
    max_attempts: int = 3,
    base_delay: float = 0.05,
    max_delay: float = 2.0,
    jitter: float = 0.25,
    retry_on: RetryPredicate = is_transient_error,
    on_retry: OnRetry | None = None,
) -> T:
    """Run ``fn(conn)`` in a transaction, rerunning the whole transaction on transient errors.

    Every attempt checks out a fresh connection, begins a transaction (at
    ``isolation_level`` when given), awaits ``fn(conn)`` and commits. When the attempt fails
    with an error ``retry_on`` accepts (by default a serialization failure, deadlock, lock
    timeout, statement timeout, or a connection lost before COMMIT), the transaction is rolled
    back and ``fn`` runs again from the start, so it must do all its reads inside the
    transaction and must not commit or roll back itself. A connection lost *during* COMMIT is
    never retried: the outcome is unknown and `CommitOutcomeUnknownError` is raised (unless
    the driver shows COMMIT was never sent, as on a session the server had already ended,
    which rolled the transaction back: that is retried). A failure the server reports for
    COMMIT (such as PostgreSQL's serialization failure at commit) is definite and is
    retried like any other.

    Args:
        engine: The engine to take connections from.
        fn: An async callable receiving the connection; its return value is returned.
        isolation_level: For example ``"SERIALIZABLE"`` or ``"REPEATABLE READ"``; ``None``
            keeps the engine's default. The connection's level is restored on return to the
            pool.
        max_attempts: How many times the transaction may run in total.
        base_delay: Seconds to wait before the first retry; doubles for each retry.
        max_delay: Upper bound on any single wait, in seconds.
        jitter: Each wait is shortened by a random fraction in ``[0, jitter]``.
        retry_on: Whether an error deserves another attempt (default `is_transient_error`).
        on_retry: Called as ``on_retry(failed_attempt, error, delay)``; may be async.

    Returns:
        What ``fn`` returned in the attempt that committed.

    Raises:
        BadRequestError: If ``engine`` is not an `AsyncEngine`, the isolation level is
            unknown to the dialect, or a retry option is out of range.
        CommitOutcomeUnknownError: If the connection was lost during COMMIT.
        DatabaseError: The classified error of the last attempt.
    """
    if not isinstance(engine, AsyncEngine):
        raise BadRequestError(
            "retry_transaction needs an AsyncEngine: each attempt takes a fresh connection, "
            f"got {type(engine).__name__}"
        )

    guard_engine(engine)

    async def run_once() -> T:
        async with engine.connect() as conn:
            if isolation_level is not None:
                try:
                    await conn.execution_options(isolation_level=isolation_level)
                except sa_exc.ArgumentError as exc:
                    raise BadRequestError(str(exc)) from None
            async with conn.begin() as transaction:
                if engine.dialect.name == "sqlite":
                    await conn.run_sync(_begin_sqlite, isolation_level == "SERIALIZABLE")
                result = await fn(conn)
                if not transaction.is_active:
                    raise BadRequestError(
                        "the function given to retry_transaction must not end the "
                        "transaction itself (commit or rollback)"
                    )
                await _commit(transaction, engine.dialect.name)
            return result

    return await with_retry(
        run_once,
        max_attempts=max_attempts,
        base_delay=base_delay,
        max_delay=max_delay,
        jitter=jitter,
        retry_on=retry_on,
        on_retry=on_retry,
    )


def _begin_sqlite(sync: Connection, immediate: bool) -> None:
    """Make SQLite's transaction begin now, before ``fn`` reads (SPEC §8).

    The sqlite3 module (in its default mode) begins at the first INSERT/UPDATE/DELETE, so a
    read before it would run outside the transaction and a concurrent increment would be
    lost. For SERIALIZABLE the transaction takes the write lock at once (``BEGIN
    IMMEDIATE``): concurrent writers queue at BEGIN (for the driver's busy timeout) instead
    of failing when a read lock cannot be upgraded. An engine that already sent a deferred
    ``BEGIN`` (SQLAlchemy's SQLite transaction recipe) has run nothing in it yet, so it is
    ended and begun again as IMMEDIATE.
    """
    if sync.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        return
    pooled = sync.connection
    driver = pooled.driver_connection
    begun = bool(getattr(driver, "in_transaction", False))
    if begun and not immediate:
        return
    cursor = pooled.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if begun:
            cursor.execute("ROLLBACK")
        cursor.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    finally:
        cursor.close()


async def _commit(transaction: AsyncTransaction, dialect: str) -> None:
    try:
        async with classify_database_errors(dialect):
            await transaction.commit()
    except DatabaseConnectionError as exc:
        if not may_have_been_sent(exc):
            raise  # the server rolled the transaction back with its session: retry it
        raise CommitOutcomeUnknownError(
            "the connection was lost during COMMIT, so the transaction may or may not have "
            f"been committed; it was not retried ({exc.message})",
            dialect=exc.dialect,
            sqlstate=exc.sqlstate,
        ) from exc
