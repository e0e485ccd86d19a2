"""shutdown_database drains in-flight work before disposing; GracefulShutdown runs it on SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
import textwrap
import weakref
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import (
    BadRequestError,
    DatabaseConnectionError,
    GracefulShutdown,
    is_transient_error,
    shutdown_database,
)
from kysera.core.pytest_plugin import create_test_engine

# Never reached in a passing test: bounds waits that should end much sooner.
HANG_GUARD_S = 20.0


@pytest.fixture
async def engine(kysera_database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine of the test's own: these tests shut it down."""
    engine = create_test_engine(kysera_database_url, pool_size=3)
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_waits_for_in_flight_work_then_disposes(engine: AsyncEngine) -> None:
    events: list[str] = []
    async with engine.connect() as idle:  # leaves one idle connection in the pool
        await idle.execute(sa.text("SELECT 1"))
    in_flight = await engine.connect()
    await in_flight.execute(sa.text("SELECT 1"))

    shutdown = asyncio.create_task(shutdown_database(engine, timeout=HANG_GUARD_S))
    shutdown.add_done_callback(lambda _: events.append("disposed"))
    await asyncio.sleep(0)  # let the shutdown start

    # New work is refused, whether it would reuse the idle connection or open one.
    for _ in range(2):
        with pytest.raises(DatabaseConnectionError, match="shut down") as refused:
            await engine.connect()
        assert not is_transient_error(refused.value)
    # Work already holding a connection carries on.
    assert (await in_flight.execute(sa.text("SELECT 2"))).scalar_one() == 2
    assert not shutdown.done()
    events.append("in-flight work returned its connection")
    await in_flight.close()

    assert await asyncio.wait_for(shutdown, HANG_GUARD_S) is True
    assert events == ["in-flight work returned its connection", "disposed"]
    assert engine.sync_engine.pool.checkedin() == 0  # type: ignore[attr-defined]
    with pytest.raises(DatabaseConnectionError):
        await engine.connect()


async def test_gives_up_waiting_at_the_timeout(engine: AsyncEngine) -> None:
    stuck = await engine.connect()
    await stuck.execute(sa.text("SELECT 1"))
    try:
        drained = await asyncio.wait_for(shutdown_database(engine, timeout=0.1), HANG_GUARD_S)
    finally:
        await stuck.close()  # returned to a disposed pool: closed, not kept
    assert drained is False
    assert engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    with pytest.raises(DatabaseConnectionError):
        await engine.connect()


async def test_is_idempotent_and_concurrent_calls_share_one_shutdown(
    engine: AsyncEngine,
) -> None:
    in_flight = await engine.connect()
    await in_flight.execute(sa.text("SELECT 1"))
    first = asyncio.create_task(shutdown_database(engine, timeout=HANG_GUARD_S))
    second = asyncio.create_task(shutdown_database(engine, timeout=0))
    await asyncio.sleep(0)
    await in_flight.close()

    assert await asyncio.wait_for(asyncio.gather(first, second), HANG_GUARD_S) == [True, True]
    assert await shutdown_database(engine) is True


async def test_an_unused_engine_shuts_down_at_once(engine: AsyncEngine) -> None:
    assert await asyncio.wait_for(shutdown_database(engine, timeout=60), HANG_GUARD_S)


async def test_bad_timeout_is_a_bad_request(engine: AsyncEngine) -> None:
    with pytest.raises(BadRequestError):
        await shutdown_database(engine, timeout=-1)
    with pytest.raises(BadRequestError):
        GracefulShutdown(engine, timeout=-1)


async def test_leaving_the_block_shuts_down_once(engine: AsyncEngine) -> None:
    calls: list[str] = []
    async with GracefulShutdown(engine, on_shutdown=lambda: calls.append("app stopped")) as gs:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        assert await gs.shutdown() is True
        assert gs.triggered
        assert gs.received is None  # no signal: shut down by a call
    assert calls == ["app stopped"]
    # The handlers are gone: SIGTERM's default disposition is back.
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


CHILD = textwrap.dedent(
    """
    import asyncio
    import sys

    import sqlalchemy as sa

    from kysera.core import DatabaseConnectionError, GracefulShutdown
    from kysera.core.pytest_plugin import create_test_engine


    async def main(url: str) -> None:
        engine = create_test_engine(url)
        calls = []

        async def on_shutdown() -> None:
            calls.append("on_shutdown")
            print("on_shutdown", flush=True)

        shutdown = GracefulShutdown(engine, timeout=15, on_shutdown=on_shutdown).install()
        in_flight = await engine.connect()
        await in_flight.execute(sa.text("SELECT 1"))
        print("ready", flush=True)

        while not shutdown.triggered:  # the parent sends SIGTERM now
            await asyncio.sleep(0.01)
        # The transaction in flight finishes on its connection, then returns it.
        print("in flight", (await in_flight.execute(sa.text("SELECT 2"))).scalar_one(), flush=True)
        await in_flight.close()

        drained = await shutdown.wait()
        try:
            await engine.connect()
        except DatabaseConnectionError:
            refused = True
        else:
            refused = False
        shutdown.uninstall()
        print("received", shutdown.received.name, flush=True)
        print("drained", drained, "refused", refused, "calls", len(calls), flush=True)


    asyncio.run(main(sys.argv[1]))
    """
)


async def test_sigterm_runs_the_shutdown_once_in_a_real_process(
    kysera_database_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "service.py"
    script.write_text(CHILD)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        kysera_database_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    try:
        ready = await asyncio.wait_for(child.stdout.readline(), HANG_GUARD_S)
        assert ready == b"ready\n"
        child.send_signal(signal.SIGTERM)
        child.send_signal(signal.SIGTERM)  # a second signal must not start a second shutdown
        out, err = await asyncio.wait_for(child.communicate(), HANG_GUARD_S)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()

    assert child.returncode == 0, err.decode()
    assert out.decode().splitlines() == [
        "on_shutdown",
        "in flight 2",
        "received SIGTERM",
        "drained True refused True calls 1",
    ]


async def test_a_shut_down_engine_can_be_garbage_collected(kysera_database_url: str) -> None:
    engine = create_test_engine(kysera_database_url)
    assert await shutdown_database(engine)
    assert await shutdown_database(engine)  # the result is kept, not the engine
    collected = weakref.ref(engine.sync_engine)
    del engine
    gc.collect()
    assert collected() is None
