"""with_retry and @retryable: what is retried, how often, how long it waits, what is raised."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import (
    BadRequestError,
    DatabaseConnectionError,
    DatabaseError,
    DeadlockError,
    NotFoundError,
    UniqueConstraintError,
    retryable,
    with_retry,
)


class Flaky:
    """An async callable failing with the given errors, in order, then returning "done"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def deadlock() -> DeadlockError:
    return DeadlockError("deadlock detected", dialect="postgresql", sqlstate="40P01")


async def test_transient_failures_are_retried_until_success() -> None:
    flaky = Flaky(deadlock(), deadlock())

    assert await with_retry(flaky, base_delay=0) == "done"
    assert flaky.calls == 3


async def test_the_last_error_is_raised_when_attempts_run_out() -> None:
    flaky = Flaky(*(deadlock() for _ in range(5)))

    with pytest.raises(DeadlockError):
        await with_retry(flaky, max_attempts=4, base_delay=0)
    assert flaky.calls == 4


async def test_errors_that_are_not_transient_are_raised_at_once() -> None:
    for error in (
        UniqueConstraintError("duplicate"),
        NotFoundError(entity="users"),
        ValueError("bug"),
    ):
        flaky = Flaky(error)
        with pytest.raises(type(error)):
            await with_retry(flaky, base_delay=0)
        assert flaky.calls == 1


async def test_retry_on_decides_what_is_retried() -> None:
    flaky = Flaky(TimeoutError("slow"), TimeoutError("slow"))

    result = await with_retry(
        flaky, base_delay=0, retry_on=lambda error: isinstance(error, TimeoutError)
    )

    assert (result, flaky.calls) == ("done", 3)


async def test_on_retry_sees_each_failed_attempt_and_its_backoff() -> None:
    seen: list[tuple[int, str, float]] = []
    flaky = Flaky(deadlock(), deadlock(), deadlock(), deadlock())

    await with_retry(
        flaky,
        max_attempts=5,
        base_delay=0.001,
        max_delay=0.003,
        jitter=0,
        on_retry=lambda attempt, error, delay: seen.append((attempt, type(error).__name__, delay)),
    )

    # Doubling from base_delay, capped at max_delay.
    assert seen == [
        (1, "DeadlockError", pytest.approx(0.001)),
        (2, "DeadlockError", pytest.approx(0.002)),
        (3, "DeadlockError", pytest.approx(0.003)),
        (4, "DeadlockError", pytest.approx(0.003)),
    ]


async def test_jitter_only_shortens_the_wait() -> None:
    delays: list[float] = []
    flaky = Flaky(*(deadlock() for _ in range(30)))

    with pytest.raises(DeadlockError):
        await with_retry(
            flaky,
            max_attempts=30,
            base_delay=0.0001,
            max_delay=0.0001,
            jitter=0.5,
            on_retry=lambda _attempt, _error, delay: delays.append(delay),
        )

    assert all(0.00005 <= delay <= 0.0001 for delay in delays)
    assert len(set(delays)) > 1


async def test_an_async_on_retry_is_awaited() -> None:
    awaited: list[int] = []

    async def record(attempt: int, _error: BaseException, _delay: float) -> None:
        awaited.append(attempt)

    await with_retry(Flaky(deadlock()), base_delay=0, on_retry=record)

    assert awaited == [1]


async def test_decorated_functions_retry_each_call() -> None:
    calls: list[int] = []

    @retryable(max_attempts=2, base_delay=0)
    async def fetch(user_id: int, *, fail_first: bool) -> int:
        calls.append(user_id)
        if fail_first and len(calls) == 1:
            raise deadlock()
        return user_id * 10

    assert await fetch(7, fail_first=True) == 70
    assert await fetch(8, fail_first=False) == 80
    assert calls == [7, 7, 8]
    assert fetch.__name__ == "fetch"


@pytest.mark.parametrize(
    "options",
    [
        {"max_attempts": 0},
        {"max_attempts": 1.5},
        {"base_delay": -1},
        {"max_delay": -0.1},
        {"jitter": 1.5},
    ],
)
async def test_options_out_of_range_are_rejected(options: dict[str, float]) -> None:
    flaky = Flaky()

    with pytest.raises(BadRequestError):
        await with_retry(flaky, **options)  # type: ignore[arg-type]
    with pytest.raises(BadRequestError):
        retryable(**options)  # type: ignore[arg-type]
    assert flaky.calls == 0


async def test_database_errors_are_raised_classified(kysera_engine: AsyncEngine) -> None:
    attempts = 0

    async def query_missing_table() -> None:
        nonlocal attempts
        attempts += 1
        async with kysera_engine.connect() as conn:
            await conn.execute(sa.text("SELECT * FROM retry_no_such_table"))

    with pytest.raises(DatabaseError) as caught:
        await with_retry(query_missing_table, base_delay=0)

    assert caught.value.dialect == kysera_engine.dialect.name
    assert not caught.value.transient
    assert caught.value.__cause__ is not None
    assert attempts == 1


async def test_a_refused_connection_is_retried_then_raised_classified() -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    # Nothing listens on port 1.
    engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    retries: list[int] = []

    async def connect() -> None:
        async with engine.connect():
            pass

    try:
        with pytest.raises(DatabaseConnectionError):
            await with_retry(
                connect,
                base_delay=0,
                on_retry=lambda attempt, _error, _delay: retries.append(attempt),
            )
    finally:
        await engine.dispose()
    assert retries == [1, 2]
