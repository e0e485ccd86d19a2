"""How many rows an UPDATE or DELETE changed, also where the driver cannot say.

Python's ``sqlite3`` (which aiosqlite wraps) counts the rows of a statement only when its
text starts with INSERT, UPDATE, DELETE or REPLACE: for an ``UPDATE``/``DELETE`` that
SQLAlchemy renders as ``WITH ... UPDATE`` (a CTE used in its ``WHERE``), ``rowcount`` is
``-1`` on every Python version. SQLite itself knows: ``changes()`` gives the rows the last
completed INSERT, UPDATE or DELETE of the connection changed, which on the same connection,
right after the statement, is this one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["affected_rows"]

_CHANGES = text("SELECT changes()")


async def affected_rows(connection: AsyncConnection, result: Any) -> int:
    """The rows ``result``'s UPDATE or DELETE changed (matched, on MySQL/MariaDB), read on
    ``connection``, which ran it; ask nothing more of the database when the driver knows."""
    count = int(result.rowcount)
    if count >= 0 or connection.dialect.name != "sqlite":
        return count
    return int(await connection.scalar(_CHANGES) or 0)
