"""`database_now`: the database's current UTC time, as a SQL expression.

Whether a row has expired is decided by the database's clock, never the application's: with
several application hosts, each with its own clock drift, a row would be visible on one
host and gone on another, and a purge on a fast host would delete rows that readers on the
others still return. One clock (the database's) gives every reader and the purge the same
answer. The expression is also the same for every call, so the filtered statements are built
once and cached.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

__all__ = ["database_now"]


class _DatabaseNow(ColumnElement[Any]):
    inherit_cache = True

    def __init__(self, zoned: bool) -> None:
        self.zoned = zoned
        self.type = DateTime(timezone=zoned)

    # Part of the statement cache key: a zoned and a naive "now" compile differently.
    _traverse_internals = [("zoned", InternalTraversal.dp_boolean)]  # noqa: RUF012


@compiles(_DatabaseNow)
def _default(element: _DatabaseNow, compiler: Any, **kw: Any) -> str:
    return "CURRENT_TIMESTAMP"


@compiles(_DatabaseNow, "postgresql")
def _postgresql(element: _DatabaseNow, compiler: Any, **kw: Any) -> str:
    # statement_timestamp(), not now(): a long transaction still sees the current time.
    if element.zoned:
        return "statement_timestamp()"
    return "(statement_timestamp() AT TIME ZONE 'UTC')"


@compiles(_DatabaseNow, "mysql")
@compiles(_DatabaseNow, "mariadb")
def _mysql(element: _DatabaseNow, compiler: Any, **kw: Any) -> str:
    # DATETIME columns hold the UTC reading (as kysera writes them); NOW() is session time.
    return "UTC_TIMESTAMP(6)"


@compiles(_DatabaseNow, "sqlite")
def _sqlite(element: _DatabaseNow, compiler: Any, **kw: Any) -> str:
    # SQLAlchemy stores 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC); compare in the same text form.
    return "strftime('%Y-%m-%d %H:%M:%f', 'now')"


def database_now(column_type: Any) -> ColumnElement[Any]:
    """The database's current UTC time, comparable with a column of ``column_type``.

    PostgreSQL ``statement_timestamp()`` (read as UTC for ``timestamp without time zone``),
    MySQL/MariaDB ``UTC_TIMESTAMP(6)``, SQLite ``strftime(..., 'now')``. Store expiry times
    in UTC (aware, or naive UTC readings); ``UTCDateTime`` from kysera-timestamps does.
    """
    return _DatabaseNow(bool(getattr(column_type, "timezone", False)))
