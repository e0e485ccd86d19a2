"""Reading the change feed: `read_changes`, `follow_changes`, `purge_changes`."""

from __future__ import annotations

import asyncio
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


async def follow_changes(
    engine: AsyncEngine,
    *,
    after: int = 0,
    tables: Iterable[str] | None = None,
    poll_interval: float = 1.0,
    batch_size: int = 1000,
    table: str = "kysera_changes",
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

    Raises:
        InvalidQueryError: A bad ``after``, ``batch_size`` or ``poll_interval``.
    """
    _check_cursor(after)
    _check_limit("batch_size", batch_size)
    if not isinstance(poll_interval, (int, float)) or poll_interval < 0:
        raise InvalidQueryError(f"poll_interval must be >= 0 seconds, got {poll_interval!r}")
    names = None if tables is None else ([tables] if isinstance(tables, str) else list(tables))
    cursor = after
    while True:
        batch = await read_changes(
            engine, after=cursor, tables=names, limit=batch_size, table=table
        )
        for change in batch:
            yield change
            cursor = change.id
        if len(batch) < batch_size:
            await asyncio.sleep(poll_interval)


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
