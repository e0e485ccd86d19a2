"""Reading the change feed: `read_changes`, `follow_changes`, `purge_changes`."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import MetaData, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.changes.table import change_tables
from kysera.core import InvalidQueryError, classify_database_errors

__all__ = ["Change", "follow_changes", "purge_changes", "read_changes"]


@dataclass(frozen=True, slots=True)
class Change:
    """One recorded change.

    Attributes:
        id: Its position in the feed (dense, in commit order); the cursor to resume after.
        table: The changed table's name.
        key: The changed row's primary key values (as JSON gives them back: bytes as hex,
            UUIDs, decimals and times as strings).
        operation: ``INSERT``, ``UPDATE``, ``DELETE``, ``SOFT_DELETE`` or ``RESTORE``.
        columns: The columns the write set (empty for a ``DELETE``).
        changed_at: When the change was recorded (UTC).
    """

    id: int
    table: str
    key: tuple[Any, ...]
    operation: str
    columns: tuple[str, ...]
    changed_at: dt.datetime


def _check_cursor(after: int) -> None:
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        raise InvalidQueryError(f"after must be a change id (an int >= 0), got {after!r}")


def _check_limit(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidQueryError(f"{name} must be a positive int, got {value!r}")


async def read_changes(
    executor: AsyncEngine | AsyncConnection,
    *,
    after: int = 0,
    tables: Iterable[str] | None = None,
    limit: int = 1000,
    table: str = "kysera_changes",
) -> list[Change]:
    """The changes with an id above ``after``, oldest first (at most ``limit``).

    ```python
    cursor = 0
    for change in await read_changes(engine, after=cursor, tables=["users"]):
        handle(change)
        cursor = change.id  # store it: resume with read_changes(engine, after=cursor)
    ```

    Every change with an id at or below the highest one returned is already committed
    (ids are given out in commit order), so resuming after the last id seen never skips
    a change. Use a fresh transaction (an engine, or a new connection) per read.

    Raises:
        InvalidQueryError: ``after`` is not an int >= 0, or ``limit`` not a positive int.
    """
    _check_cursor(after)
    _check_limit("limit", limit)
    changes = change_tables(MetaData(), table).changes
    statement = select(changes).where(changes.c.id > after).order_by(changes.c.id).limit(limit)
    if tables is not None:
        names = [tables] if isinstance(tables, str) else list(tables)
        statement = statement.where(changes.c.table_name.in_(names))
    with classify_database_errors():
        if isinstance(executor, AsyncConnection):
            rows = (await executor.execute(statement)).mappings().all()
        else:
            async with executor.connect() as connection:
                rows = (await connection.execute(statement)).mappings().all()
    return [
        Change(
            id=int(row["id"]),
            table=row["table_name"],
            key=tuple(json.loads(row["entity_key"])),
            operation=row["operation"],
            columns=tuple(row["changed_columns"]),
            changed_at=row["changed_at"],
        )
        for row in rows
    ]


def follow_changes(
    engine: AsyncEngine,
    *,
    after: int = 0,
    tables: Iterable[str] | None = None,
    poll_interval: float = 1.0,
    batch_size: int = 1000,
    table: str = "kysera_changes",
    notify: bool = True,
) -> AsyncIterator[Change]:
    """Yield every change with an id above ``after``, in commit order, forever (polling).

    ```python
    async for change in follow_changes(engine, after=saved_cursor, tables=["users"]):
        await handle(change)
        saved_cursor = change.id
    ```

    Delivery is at least once: a consumer that stores its cursor after handling a change
    and restarts from the stored cursor sees every change, some a second time. Between
    empty reads it sleeps ``poll_interval`` seconds; a full batch is followed at once.

    On PostgreSQL (with ``notify=True``) it also ``LISTEN``s on a dedicated connection of
    ``engine`` for the plugin's ``NOTIFY`` (sent at commit, ids only), and reads as soon as
    one arrives; polling stays the fallback, and a dropped listener connection is replaced
    with back-off. Notifications only wake the consumer: it always reads the table, so a
    lost notification or a killed listener loses nothing.

    Raises:
        InvalidQueryError: A bad ``after``, ``batch_size`` or ``poll_interval`` (at the
            call, before any I/O).
    """
    _check_cursor(after)
    _check_limit("batch_size", batch_size)
    if not isinstance(poll_interval, (int, float)) or poll_interval < 0:
        raise InvalidQueryError(f"poll_interval must be >= 0 seconds, got {poll_interval!r}")
    names = None if tables is None else ([tables] if isinstance(tables, str) else list(tables))
    return _follow(engine, after, names, poll_interval, batch_size, table, notify)


async def _follow(
    engine: AsyncEngine,
    cursor: int,
    names: list[str] | None,
    poll_interval: float,
    batch_size: int,
    table: str,
    notify: bool,
) -> AsyncIterator[Change]:
    wakeup = _Listener(engine, table) if notify and engine.dialect.name == "postgresql" else None
    try:
        if wakeup is not None:
            await wakeup.start()  # LISTEN first: a change committed after it wakes us
        while True:
            batch = await read_changes(
                engine, after=cursor, tables=names, limit=batch_size, table=table
            )
            for change in batch:
                yield change
                cursor = change.id
            if len(batch) < batch_size:
                if wakeup is None:
                    await asyncio.sleep(poll_interval)
                else:
                    await wakeup.wait(poll_interval)
    finally:
        if wakeup is not None:
            await wakeup.close()


class _Listener:
    """``LISTEN`` on a dedicated PostgreSQL connection, as a wake-up hint only.

    A notification (sent by the plugin at COMMIT, carrying the last id) ends `wait` early;
    without one, `wait` returns after the poll interval anyway, so a lost notification or
    a dead connection costs latency, never a change: the consumer always reads the table
    from its cursor. A connection found closed (the server ended it, the network dropped
    it: asyncpg reports both) is replaced on a later `wait`, after a back-off that doubles
    from 0.1 s up to 30 s while connecting fails.
    """

    _FIRST_BACKOFF = 0.1
    _MAX_BACKOFF = 30.0

    def __init__(self, engine: AsyncEngine, channel: str) -> None:
        self._engine = engine
        self._channel = channel
        self._event = asyncio.Event()
        self._connection: AsyncConnection | None = None
        self._driver: Any = None
        self._backoff = self._FIRST_BACKOFF
        self._next_attempt = 0.0
        self.connects = 0

    def _notified(self, *_: Any) -> None:
        self._event.set()

    def _terminated(self, *_: Any) -> None:
        self._event.set()  # read once more at once: changes may have been missed meanwhile

    async def _ensure_connected(self) -> None:
        if self._driver is not None and not self._driver.is_closed():
            return
        await self._drop()
        loop = asyncio.get_running_loop()
        if loop.time() < self._next_attempt:
            return
        try:
            connection = await self._engine.connect()
            try:
                raw = await connection.get_raw_connection()
                driver = raw.driver_connection
                assert driver is not None
                await driver.add_listener(self._channel, self._notified)
                driver.add_termination_listener(self._terminated)
            except BaseException:
                await connection.close()
                raise
        except Exception:
            self._next_attempt = loop.time() + self._backoff
            self._backoff = min(self._backoff * 2, self._MAX_BACKOFF)
            return
        self._connection, self._driver = connection, driver
        self._backoff = self._FIRST_BACKOFF
        self.connects += 1
        # Changes committed before LISTEN took effect sent no wake-up: read once more.
        self._event.set()

    async def start(self) -> None:
        await self._ensure_connected()

    async def wait(self, timeout: float) -> None:
        await self._ensure_connected()
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation that
        # arrives as the event is set, and the stream would then sleep on instead of ending.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._event.wait()
        self._event.clear()

    async def _drop(self) -> None:
        connection, self._connection, self._driver = self._connection, None, None
        if connection is not None:
            try:
                await connection.invalidate()
                await connection.close()
            except Exception:
                pass

    async def close(self) -> None:
        await self._drop()


async def purge_changes(
    executor: AsyncEngine | AsyncConnection,
    *,
    older_than: dt.timedelta,
    table: str = "kysera_changes",
    now: dt.datetime | None = None,
) -> int:
    """Delete the change rows recorded more than ``older_than`` ago; return how many.

    Ids are never reused (the counter keeps counting), so consumers' cursors stay valid;
    a consumer behind the purged range simply resumes at the oldest change left.

    Raises:
        InvalidQueryError: ``older_than`` is not a non-negative `timedelta`.
    """
    if not isinstance(older_than, dt.timedelta) or older_than < dt.timedelta(0):
        raise InvalidQueryError(f"older_than must be a non-negative timedelta, got {older_than!r}")
    changes = change_tables(MetaData(), table).changes
    cutoff = (now or dt.datetime.now(dt.UTC)) - older_than
    statement = delete(changes).where(changes.c.changed_at < cutoff)
    with classify_database_errors():
        if isinstance(executor, AsyncConnection):
            return int((await executor.execute(statement)).rowcount)
        async with executor.begin() as connection:
            return int((await connection.execute(statement)).rowcount)
