"""Retention: delete old audit log rows."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import MetaData, delete
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.audit.table import audit_log_table
from kysera.core import InvalidQueryError, classify_database_errors

__all__ = ["purge_audit_logs"]


async def purge_audit_logs(
    executor: AsyncEngine | AsyncConnection,
    older_than: dt.timedelta,
    *,
    table: str = "audit_logs",
    now: dt.datetime | None = None,
) -> int:
    """Delete the audit log rows written more than ``older_than`` ago.

    ```python
    deleted = await purge_audit_logs(engine, older_than=timedelta(days=90))
    ```

    Args:
        executor: An engine (the delete commits) or a connection (the caller's
            transaction).
        older_than: The age beyond which rows are deleted.
        table: The audit table's name.
        now: The current time (default: the clock, UTC).

    Returns:
        The number of rows deleted.

    Raises:
        InvalidQueryError: ``older_than`` is not a non-negative `timedelta`.
    """
    if not isinstance(older_than, dt.timedelta) or older_than < dt.timedelta(0):
        raise InvalidQueryError(f"older_than must be a non-negative timedelta, got {older_than!r}")
    log = audit_log_table(MetaData(), table)
    cutoff = (now or dt.datetime.now(dt.UTC)) - older_than
    statement = delete(log).where(log.c.changed_at < cutoff)
    with classify_database_errors():
        if isinstance(executor, AsyncConnection):
            return int((await executor.execute(statement)).rowcount)
        async with executor.begin() as connection:
            return int((await connection.execute(statement)).rowcount)
