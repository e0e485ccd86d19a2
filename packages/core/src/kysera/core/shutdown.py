"""Graceful shutdown: let in-flight database work finish, then close every connection.

`shutdown_database` is the one-call version for a service's shutdown hook;
`GracefulShutdown` runs it when the process receives SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
import time
import weakref
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core.errors import BadRequestError, DatabaseConnectionError

__all__ = ["GracefulShutdown", "shutdown_database"]

logger = logging.getLogger(__name__)


class _Shutdown:
    """An engine's shutdown: the task while it runs, then only its result.

    Dropping the task once done matters: it references the engine, which would otherwise
    keep its own weak key alive forever.
    """

    __slots__ = ("drained", "task")

    def __init__(self, task: asyncio.Task[bool]) -> None:
        self.task: asyncio.Task[bool] | None = task
        self.drained: bool | None = None

    def finished(self, task: asyncio.Task[bool]) -> None:
        if not task.cancelled() and task.exception() is None:
            self.drained = task.result()
            self.task = None


# One shutdown per engine: a second call waits for the first instead of starting over.
_shutdowns: weakref.WeakKeyDictionary[Engine, _Shutdown] = weakref.WeakKeyDictionary()

# How often the drain re-reads the pool when no check-in woke it up (a safety net only).
_DRAIN_POLL_S = 0.1


async def shutdown_database(engine: AsyncEngine, timeout: float = 30.0) -> bool:
    """Stop handing out connections, wait for checked-out ones to return, then dispose.

    From the moment it is called the engine refuses new connections: ``engine.connect()``
    and ``engine.begin()`` raise `DatabaseConnectionError` (not transient: retrying cannot
    help). Connections already checked out keep working, so in-flight transactions can
    finish; the call waits up to ``timeout`` seconds for all of them to be returned, then
    disposes the engine's pool, closing every connection. Connections still checked out at
    the timeout are closed by the pool as they come back.

    Idempotent: later (or concurrent) calls wait for the first shutdown and return its result.
    The shutdown also completes if the caller is cancelled while waiting.

    Args:
        engine: The engine to shut down.
        timeout: Seconds to wait for checked-out connections.

    Returns:
        ``True`` when every connection was returned in time, ``False`` when the timeout cut
        the wait short.

    Raises:
        BadRequestError: ``timeout`` is negative.
    """
    if timeout < 0:
        raise BadRequestError(f"timeout must not be negative, got {timeout}")
    sync_engine = engine.sync_engine
    shutdown = _shutdowns.get(sync_engine)
    if shutdown is None:
        # Refuse new work before the first await, so nothing slips in while the task starts.
        _refuse_new_connections(sync_engine)
        shutdown = _Shutdown(asyncio.ensure_future(_shut_down(engine, timeout)))
        _shutdowns[sync_engine] = shutdown
        assert shutdown.task is not None
        shutdown.task.add_done_callback(shutdown.finished)
    if shutdown.drained is not None:
        return shutdown.drained
    assert shutdown.task is not None
    return await asyncio.shield(shutdown.task)


def _refuse_new_connections(sync_engine: Engine) -> None:
    dialect = sync_engine.dialect.name

    def refuse(*_: Any) -> None:
        raise DatabaseConnectionError(
            "the engine is shut down: it hands out no new connections",
            dialect=dialect,
            transient=False,
        )

    # New connections fail before connecting; idle pooled ones fail at checkout (the pool
    # then closes them). Both listeners stay: the engine is finished.
    event.listen(sync_engine, "do_connect", refuse)
    event.listen(sync_engine, "checkout", refuse)


async def _shut_down(engine: AsyncEngine, timeout: float) -> bool:
    sync_engine = engine.sync_engine
    loop = asyncio.get_running_loop()
    checked_in = asyncio.Event()

    def wake(*_: Any) -> None:
        # Check-ins can come from another thread (a garbage-collected connection).
        loop.call_soon_threadsafe(checked_in.set)

    event.listen(sync_engine, "checkin", wake)

    deadline = time.monotonic() + timeout
    drained = True
    while (in_use := _checked_out(sync_engine)) > 0:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            drained = False
            logger.warning(
                "shutdown_database: %d connection(s) still checked out after %g s; "
                "disposing the engine anyway",
                in_use,
                timeout,
            )
            break
        checked_in.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(remaining, _DRAIN_POLL_S)):
                await checked_in.wait()
    event.remove(sync_engine, "checkin", wake)
    await engine.dispose()
    return drained


def _checked_out(engine: Engine) -> int:
    counter = getattr(engine.pool, "checkedout", None)
    # Pools without counters (NullPool, StaticPool) give nothing to wait for.
    return int(counter()) if callable(counter) else 0


ShutdownCallback = Callable[[], object]
"""``on_shutdown()``: a plain function, or a coroutine function (it is awaited)."""


class GracefulShutdown:
    """Run `shutdown_database` once when the process receives one of ``signals``.

    ```python
    async def main() -> None:
        engine = create_async_engine(url)
        async with GracefulShutdown(engine, on_shutdown=server.stop) as shutdown:
            await shutdown.wait()  # returns once a signal came and the engine is disposed
    ```

    On the first signal it calls ``on_shutdown()`` (stop accepting work there; the
    database is still available to finish what is in flight), then `shutdown_database`.
    Further signals are ignored while it runs. Installing handlers replaces the default
    SIGINT behaviour (``KeyboardInterrupt``) until `uninstall`.

    Leaving the ``async with`` block removes the handlers and runs the shutdown if no
    signal has, so the engine is always disposed.

    Args:
        engine: The engine to shut down.
        signals: The signals to handle.
        timeout: Passed to `shutdown_database`.
        on_shutdown: Called once, before the database shuts down; a plain function or a
            coroutine function. An exception it raises is logged and the shutdown goes on.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        signals: Iterable[signal.Signals | int] = (signal.SIGTERM, signal.SIGINT),
        timeout: float = 30.0,
        on_shutdown: ShutdownCallback | None = None,
    ) -> None:
        if timeout < 0:
            raise BadRequestError(f"timeout must not be negative, got {timeout}")
        self.engine = engine
        self.signals = tuple(signal.Signals(number) for number in signals)
        self.timeout = timeout
        self.on_shutdown = on_shutdown
        self.received: signal.Signals | None = None
        self._task: asyncio.Task[bool] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = asyncio.Event()

    @property
    def triggered(self) -> bool:
        """Whether the shutdown has started (by a signal or a `shutdown` call)."""
        return self._task is not None

    def install(self) -> GracefulShutdown:
        """Install the signal handlers on the running event loop; returns ``self``."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        for sig in self.signals:
            loop.add_signal_handler(sig, self._on_signal, sig)
        return self

    def uninstall(self) -> None:
        """Remove the handlers; the signals get their default behaviour back."""
        loop, self._loop = self._loop, None
        if loop is None or loop.is_closed():
            return
        for sig in self.signals:
            loop.remove_signal_handler(sig)

    async def shutdown(self) -> bool:
        """Run the shutdown now (once); returns `shutdown_database`'s result."""
        return await asyncio.shield(self._start(None))

    async def wait(self) -> bool:
        """Wait until a signal (or `shutdown`) has run the shutdown to its end."""
        await self._started.wait()
        assert self._task is not None
        return await asyncio.shield(self._task)

    async def __aenter__(self) -> GracefulShutdown:
        return self.install()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.uninstall()
        await self.shutdown()

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._task is not None:
            logger.info("received %s again: shutdown already in progress", sig.name)
            return
        logger.info("received %s: shutting down the database", sig.name)
        self._start(sig)

    def _start(self, sig: signal.Signals | None) -> asyncio.Task[bool]:
        if self._task is None:
            self.received = sig
            self._task = asyncio.ensure_future(self._run())
            self._started.set()
        return self._task

    async def _run(self) -> bool:
        if self.on_shutdown is not None:
            try:
                outcome = self.on_shutdown()
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                logger.exception("GracefulShutdown on_shutdown callback failed")
        return await shutdown_database(self.engine, self.timeout)
