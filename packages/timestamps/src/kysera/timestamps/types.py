"""`UTCDateTime`: a column type that stores UTC instants and reads them back time-zone aware.

Databases disagree about time zones: PostgreSQL's ``TIMESTAMP WITH TIME ZONE`` keeps the
instant, MySQL/MariaDB ``DATETIME`` and SQLite (text) keep only a wall-clock reading. This
type makes all three behave like the first: every value is converted to UTC before it is
written, stored as a UTC wall-clock reading where the database has no time zone, and read
back as an aware datetime in UTC, microseconds included.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from kysera.timestamps.errors import InvalidTimestampError

__all__ = ["UTCDateTime"]

# Dialects whose datetime type stores the instant itself; the rest store a UTC reading.
_ZONED_DIALECTS = frozenset({"postgresql"})


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database.

    ```python
    sa.Column("created_at", UTCDateTime, nullable=False)
    ```

    | database | stored as | read back |
    |---|---|---|
    | PostgreSQL | ``TIMESTAMP WITH TIME ZONE`` | aware, UTC |
    | MySQL / MariaDB | ``DATETIME(6)`` holding the UTC reading | aware, UTC |
    | SQLite | text ``YYYY-MM-DD HH:MM:SS.ffffff`` holding the UTC reading | aware, UTC |

    Values in any time zone are accepted and converted to UTC (so comparisons and ordering
    are by instant); a naive datetime raises `InvalidTimestampError` (as does anything that
    is not a datetime), because it does not say which instant it means. Microseconds survive
    on every database.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            # Plain DATETIME drops the fraction of a second.
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.utcoffset() is None:
            raise InvalidTimestampError(value=value)
        value = value.astimezone(UTC)
        if dialect.name in _ZONED_DIALECTS:
            return value
        return value.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):  # pragma: no cover - drivers return datetimes
            raise TypeError(f"UTCDateTime read {type(value).__name__}, not a datetime")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
