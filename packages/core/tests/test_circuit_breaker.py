"""CircuitBreaker: closed → open → half_open → closed, driven by a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kysera.core import (
    BadRequestError,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    DatabaseConnectionError,
    UniqueConstraintError,
)

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Outage(Exception):
    """Stands in for a lost connection; the breakers below count it."""


def counts_outages(error: BaseException) -> bool:
    return isinstance(error, Outage)


async def succeed() -> str:
    return "ok"


async def fail() -> None:
    raise Outage("connection lost")


async def fail_with_duplicate() -> None:
    raise UniqueConstraintError("duplicate key")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def transitions() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def breaker(clock: FakeClock, transitions: list[tuple[str, str]]) -> CircuitBreaker:
    return CircuitBreaker(
        failure_threshold=3,
        reset_timeout=10.0,
        counts=counts_outages,
        on_state_change=lambda old, new: transitions.append((old, new)),
        clock=clock,
    )


async def trip(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.failure_threshold):
        with pytest.raises(Outage):
            await breaker.call(fail)


async def test_the_state_is_a_string_enum() -> None:
    assert CircuitState.HALF_OPEN == "half_open"
    assert str(CircuitState.OPEN) == "open"
    assert CircuitBreaker().state == "closed"


async def test_failures_in_a_row_open_the_circuit(
    breaker: CircuitBreaker, transitions: list[tuple[str, str]]
) -> None:
    for expected_count in (1, 2):
        with pytest.raises(Outage):
            await breaker.call(fail)
        assert (breaker.state, breaker.failure_count) == (CLOSED, expected_count)

    with pytest.raises(Outage):
        await breaker.call(fail)

    assert breaker.state == OPEN
    assert transitions == [("closed", "open")]


async def test_an_open_circuit_fails_fast_without_calling(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    await trip(breaker)
    calls = 0

    async def count_call() -> None:
        nonlocal calls
        calls += 1

    clock.advance(9.9)
    with pytest.raises(CircuitOpenError, match=r"another 0\.1 s"):
        await breaker.call(count_call)
    with pytest.raises(CircuitOpenError):
        async with breaker:
            await count_call()
    assert calls == 0


async def test_a_successful_probe_after_the_timeout_closes_it(
    breaker: CircuitBreaker, clock: FakeClock, transitions: list[tuple[str, str]]
) -> None:
    await trip(breaker)
    clock.advance(10.0)

    assert breaker.state == HALF_OPEN
    assert await breaker.call(succeed) == "ok"

    assert breaker.state == CLOSED
    assert transitions == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


async def test_a_failed_probe_reopens_it_for_another_timeout(
    breaker: CircuitBreaker, clock: FakeClock, transitions: list[tuple[str, str]]
) -> None:
    await trip(breaker)
    clock.advance(10.0)

    with pytest.raises(Outage):
        await breaker.call(fail)

    assert breaker.state == OPEN
    clock.advance(9.0)
    assert breaker.state == OPEN
    clock.advance(1.0)
    assert breaker.state == HALF_OPEN
    assert transitions == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "half_open"),
    ]


async def test_a_success_while_closed_resets_the_count(breaker: CircuitBreaker) -> None:
    for _ in range(3):
        for _ in range(breaker.failure_threshold - 1):
            with pytest.raises(Outage):
                await breaker.call(fail)
        await breaker.call(succeed)
        assert breaker.failure_count == 0

    assert breaker.state == CLOSED


async def test_errors_that_do_not_count_are_no_outage(breaker: CircuitBreaker) -> None:
    for _ in range(10):
        with pytest.raises(UniqueConstraintError):
            await breaker.call(fail_with_duplicate)

    assert (breaker.state, breaker.failure_count) == (CLOSED, 0)


@pytest.mark.parametrize("form", ["call", "async with"])
async def test_exactly_one_probe_runs_under_concurrency(
    breaker: CircuitBreaker, clock: FakeClock, form: str
) -> None:
    await trip(breaker)
    clock.advance(10.0)
    release = asyncio.Event()
    probes = 0

    async def slow_probe() -> str:
        nonlocal probes
        probes += 1
        await release.wait()
        return "ok"

    async def guarded_probe() -> str:
        async with breaker:
            return await slow_probe()

    def probe() -> Awaitable[str]:
        return breaker.call(slow_probe) if form == "call" else guarded_probe()

    tasks = [asyncio.ensure_future(probe()) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    assert probes == 1
    assert results.count("ok") == 1
    assert sum(isinstance(result, CircuitOpenError) for result in results) == 19
    assert breaker.state == CLOSED


async def test_half_open_max_calls_probes_must_all_succeed(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        failure_threshold=1,
        reset_timeout=5.0,
        half_open_max_calls=3,
        counts=counts_outages,
        clock=clock,
    )
    with pytest.raises(Outage):
        await breaker.call(fail)
    clock.advance(5.0)
    release = asyncio.Event()

    async def slow_probe() -> str:
        await release.wait()
        return "ok"

    tasks = [asyncio.ensure_future(breaker.call(slow_probe)) for _ in range(10)]
    await asyncio.sleep(0)
    assert sum(task.done() for task in tasks) == 7  # rejected at once
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    assert results.count("ok") == 3
    assert breaker.state == CLOSED


async def test_a_cancelled_probe_frees_its_slot(breaker: CircuitBreaker, clock: FakeClock) -> None:
    await trip(breaker)
    clock.advance(10.0)
    probe = asyncio.ensure_future(breaker.call(asyncio.sleep, 3600))
    await asyncio.sleep(0)
    with pytest.raises(CircuitOpenError):
        await breaker.call(succeed)

    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe

    assert breaker.state == HALF_OPEN
    assert await breaker.call(succeed) == "ok"
    assert breaker.state == CLOSED


async def test_a_late_failure_from_before_the_circuit_opened_is_ignored(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    release = asyncio.Event()

    async def slow_failure() -> None:
        await release.wait()
        raise Outage("late")

    slow = asyncio.ensure_future(breaker.call(slow_failure))
    await asyncio.sleep(0)
    await trip(breaker)
    clock.advance(10.0)
    assert breaker.state == HALF_OPEN

    release.set()
    with pytest.raises(Outage):
        await slow

    assert breaker.state == HALF_OPEN
    await breaker.call(succeed)
    assert breaker.state == CLOSED


async def test_async_with_counts_like_call(breaker: CircuitBreaker, clock: FakeClock) -> None:
    for _ in range(3):
        with pytest.raises(Outage):
            async with breaker:
                raise Outage("connection lost")
    assert breaker.state == OPEN

    clock.advance(10.0)
    async with breaker:
        pass
    assert breaker.state == CLOSED


async def test_concurrent_async_with_blocks_keep_their_own_outcome(
    breaker: CircuitBreaker,
) -> None:
    async def guarded(should_fail: bool) -> None:
        async with breaker:
            await asyncio.sleep(0)
            if should_fail:
                raise Outage("connection lost")

    results = await asyncio.gather(
        *(guarded(index % 2 == 0) for index in range(4)), return_exceptions=True
    )

    assert sum(isinstance(result, Outage) for result in results) == 2
    assert breaker.state == CLOSED


async def test_reset_closes_the_circuit(breaker: CircuitBreaker) -> None:
    await trip(breaker)

    breaker.reset()

    assert (breaker.state, breaker.failure_count) == (CLOSED, 0)
    assert await breaker.call(succeed) == "ok"


@pytest.mark.parametrize(
    "options",
    [{"failure_threshold": 0}, {"reset_timeout": -1.0}, {"half_open_max_calls": 0}],
)
def test_options_out_of_range_are_rejected(options: dict[str, float]) -> None:
    with pytest.raises(BadRequestError):
        CircuitBreaker(**options)  # type: ignore[arg-type]


# Sequential calls against a model of the specified behaviour.
EVENTS = st.lists(
    st.one_of(
        st.sampled_from(["success", "outage", "duplicate"]),
        st.floats(min_value=0.0, max_value=15.0),  # time passes
    ),
    max_size=60,
)


@settings(deadline=None, max_examples=200)
@given(events=EVENTS)
async def test_any_sequence_of_calls_follows_the_specified_state_machine(
    events: list[str | float],
) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(
        failure_threshold=3, reset_timeout=10.0, counts=counts_outages, clock=clock
    )
    state, failures, opened_at = "closed", 0, 0.0
    calls: dict[str, tuple[Callable[[], Awaitable[object]], type[Exception] | None]] = {
        "success": (succeed, None),
        "outage": (fail, Outage),
        "duplicate": (fail_with_duplicate, UniqueConstraintError),
    }

    for event in events:
        if isinstance(event, float):
            clock.advance(event)
            continue
        if state == "open" and clock.now - opened_at >= 10.0:
            state = "half_open"
        call, expected_error = calls[event]
        ran = False

        async def tracked(call: Callable[[], Awaitable[object]] = call) -> object:
            nonlocal ran
            ran = True
            return await call()

        try:
            await breaker.call(tracked)
        except (CircuitOpenError, Outage, UniqueConstraintError) as error:
            raised: type[BaseException] | None = type(error)
        else:
            raised = None

        if state == "open":
            assert (raised, ran) == (CircuitOpenError, False)  # failed fast
            continue
        assert (raised, ran) == (expected_error, True)
        if event == "outage" and (state == "half_open" or failures + 1 >= 3):
            state, failures, opened_at = "open", 0, clock.now
        elif event == "outage":
            failures += 1
        else:  # a success, or an error that does not count
            state, failures = "closed", 0
        assert (breaker.state, breaker.failure_count) == (state, failures)


# --- with real databases: the default `counts` is `is_transient_error` -------------------

metadata = sa.MetaData()
cb_items = sa.Table(
    "cb_items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
)


@pytest.fixture
async def engine(kysera_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    async with kysera_engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
        await conn.execute(cb_items.insert(), {"id": 1})
    yield kysera_engine
    async with kysera_engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)


async def test_a_real_unique_violation_does_not_count(engine: AsyncEngine) -> None:
    breaker = CircuitBreaker(failure_threshold=1)

    for _ in range(3):
        with pytest.raises(UniqueConstraintError):
            async with breaker, engine.begin() as conn:
                await conn.execute(cb_items.insert(), {"id": 1})

    assert breaker.state == CLOSED


async def test_a_refused_connection_counts_and_opens_the_circuit(clock: FakeClock) -> None:
    # Nothing listens on port 1.
    unreachable = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    breaker = CircuitBreaker(failure_threshold=2, clock=clock)

    async def ping() -> None:
        async with unreachable.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    try:
        for _ in range(2):
            with pytest.raises(DatabaseConnectionError):
                await breaker.call(ping)
        with pytest.raises(CircuitOpenError):
            await breaker.call(ping)
    finally:
        await unreachable.dispose()
    assert breaker.state == OPEN
