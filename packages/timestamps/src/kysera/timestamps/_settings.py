"""What the plugin and its mixin share: the options, the clock, each table's timestamp
columns, and the repository call in progress."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, final

from sqlalchemy import Column, DateTime, Table
from sqlalchemy.types import TypeDecorator

from kysera.repository import PluginError

__all__ = [
    "CURRENT_CALL",
    "DEFAULT_EXCLUDED_TABLES",
    "PLUGIN_NAME",
    "SUSPENDED",
    "TimestampCall",
    "TimestampColumns",
    "TimestampSettings",
    "utc_now",
]

DEFAULT_EXCLUDED_TABLES = frozenset({"audit_logs", "kysera_migrations"})
"""The audit log and migration bookkeeping tables: never timestamped."""

PLUGIN_NAME = "timestamps"


def utc_now() -> datetime:
    """The default clock: the current time, aware, in UTC."""
    return datetime.now(UTC)


def _is_datetime_type(type_: Any) -> bool:
    while isinstance(type_, TypeDecorator):
        type_ = type_.impl_instance
    return isinstance(type_, DateTime)


@final
class TimestampColumns:
    """The timestamp columns of one table (either may be missing) and how to write them.

    A column whose type has a time zone (``DateTime(timezone=True)``, `UTCDateTime`) gets
    the aware UTC instant; a plain ``DateTime`` column gets the naive UTC reading (asyncpg
    refuses aware values for ``TIMESTAMP WITHOUT TIME ZONE``).
    """

    __slots__ = ("created", "created_aware", "table", "updated", "updated_aware")

    def __init__(self, table: Table, created: Column[Any] | None, updated: Column[Any] | None):
        self.table = table
        self.created = created
        self.updated = updated
        self.created_aware = created is not None and bool(getattr(created.type, "timezone", False))
        self.updated_aware = updated is not None and bool(getattr(updated.type, "timezone", False))

    def created_value(self, instant: datetime) -> datetime:
        """The value to write into ``created`` for the aware UTC ``instant``."""
        return instant if self.created_aware else instant.replace(tzinfo=None)

    def updated_value(self, instant: datetime) -> datetime:
        """The value to write into ``updated`` for the aware UTC ``instant``."""
        return instant if self.updated_aware else instant.replace(tzinfo=None)


def _table_names(value: Iterable[str | Table] | None, option: str) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, (str, Table)):
        # A bare name is a common slip for a one-element tuple; iterating it gives letters.
        raise PluginError(
            f"TimestampsPlugin({option}=...) takes a list of table names, got {value!r}",
            plugins=[PLUGIN_NAME],
        )
    names: set[str] = set()
    for item in value:
        if isinstance(item, Table):
            names.add(item.fullname)
        elif isinstance(item, str) and item:
            names.add(item)
        else:
            raise PluginError(
                f"TimestampsPlugin({option}=...) takes table names or Table objects, got {item!r}",
                plugins=[PLUGIN_NAME],
            )
    return frozenset(names)


@final
class TimestampSettings:
    """The plugin's options, validated, and the per-table lookup built from them."""

    __slots__ = ("_columns", "clock", "created_at", "excluded", "tables", "updated_at")

    def __init__(
        self,
        created_at: str,
        updated_at: str,
        now: Callable[[], datetime] | None,
        tables: Iterable[str | Table] | None,
        exclude_tables: Iterable[str | Table],
    ) -> None:
        for option, value in (("created_at", created_at), ("updated_at", updated_at)):
            if not isinstance(value, str) or not value:
                raise PluginError(
                    f"TimestampsPlugin({option}=...) must be a column name, got {value!r}",
                    plugins=[PLUGIN_NAME],
                )
        if created_at == updated_at:
            raise PluginError(
                f"TimestampsPlugin: created_at and updated_at are both {created_at!r}; "
                "they must be two different columns",
                plugins=[PLUGIN_NAME],
            )
        if now is not None and not callable(now):
            raise PluginError(
                f"TimestampsPlugin(now=...) must be a function returning a datetime, got {now!r}",
                plugins=[PLUGIN_NAME],
            )
        self.created_at = created_at
        self.updated_at = updated_at
        self.clock: Callable[[], datetime] = utc_now if now is None else now
        self.tables = _table_names(tables, "tables")
        excluded = _table_names(exclude_tables, "exclude_tables")
        assert excluded is not None
        reserved = sorted((self.tables or frozenset()) & DEFAULT_EXCLUDED_TABLES)
        if reserved:
            raise PluginError(
                f"TimestampsPlugin(tables=...) names {reserved}; the audit and migrations "
                "tables are never timestamped",
                plugins=[PLUGIN_NAME],
            )
        self.excluded = excluded | DEFAULT_EXCLUDED_TABLES
        self._columns: weakref.WeakKeyDictionary[Table, TimestampColumns | None] = (
            weakref.WeakKeyDictionary()
        )

    def now(self) -> datetime:
        """Read the clock: an aware datetime, converted to UTC.

        Raises:
            PluginError: The clock returned something else (a naive datetime, say).
        """
        clock = self.clock
        if clock is utc_now:  # known good: skip the checks
            return datetime.now(UTC)
        instant = clock()
        if not isinstance(instant, datetime) or instant.utcoffset() is None:
            raise PluginError(
                f"TimestampsPlugin(now=...) returned {instant!r}; the clock must return an "
                "aware datetime, e.g. datetime.now(timezone.utc)",
                plugins=[PLUGIN_NAME],
            )
        return instant.astimezone(UTC)

    def columns_of(self, table: Table) -> TimestampColumns | None:
        """The table's timestamp columns, or ``None`` when the plugin leaves it alone.

        Raises:
            PluginError: The table is in scope but a timestamp column is not a datetime, or
                ``tables=`` names it and it has neither column.
        """
        try:
            return self._columns[table]
        except KeyError:
            pass
        found = self._resolve(table)
        self._columns[table] = found
        return found

    def _resolve(self, table: Table) -> TimestampColumns | None:
        names = {table.name, table.fullname}
        if names & self.excluded:
            return None
        if self.tables is not None and not names & self.tables:
            return None
        created = table.c.get(self.created_at)
        updated = table.c.get(self.updated_at)
        if created is None and updated is None:
            if self.tables is not None:
                raise PluginError(
                    f"TimestampsPlugin(tables=...) names {table.name!r}, which has neither a "
                    f"{self.created_at!r} nor an {self.updated_at!r} column",
                    plugins=[PLUGIN_NAME],
                )
            return None
        for column in (created, updated):
            if column is not None and not _is_datetime_type(column.type):
                raise PluginError(
                    f"column {table.name}.{column.key} is {column.type}, not a datetime; "
                    "give it a DateTime type (UTCDateTime for aware UTC values on every "
                    "database) or leave the table out with exclude_tables=",
                    plugins=[PLUGIN_NAME],
                )
        return TimestampColumns(table, created, updated)


@final
class TimestampCall:
    """One repository call on a timestamped table, in progress.

    The mixin opens it around every write method, so that the rows (stamped in
    ``prepare_insert``/``prepare_update``) and the statements (stamped in the interceptor)
    of one call share one instant and one decision to skip.
    """

    __slots__ = ("_instant", "settings", "skip", "table", "upsert")

    def __init__(
        self, settings: TimestampSettings, table: Table, skip: bool, upsert: bool = False
    ) -> None:
        self.settings = settings
        self.table = table
        self.skip = skip
        self.upsert = upsert
        self._instant: datetime | None = None

    def instant(self) -> datetime:
        """The call's instant: the clock is read once per call."""
        if self._instant is None:
            self._instant = self.settings.now()
        return self._instant


CURRENT_CALL: ContextVar[TimestampCall | None] = ContextVar("kysera_timestamps_call", default=None)
"""The call in progress in this task (a context variable, so concurrent tasks never mix)."""

SUSPENDED: ContextVar[bool] = ContextVar("kysera_timestamps_suspended", default=False)
"""Set by `without_timestamps()`: nothing is stamped in this task while it is true."""
