"""`TimestampsPlugin`: keeps ``created_at`` / ``updated_at`` current on every write."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Table, Update

from kysera.repository import QueryContext, hookimpl
from kysera.timestamps._settings import CURRENT_CALL, PLUGIN_NAME, SUSPENDED, TimestampSettings
from kysera.timestamps._statements import stamp_insert, stamp_update
from kysera.timestamps.mixin import TimestampsMixin

__all__ = ["TimestampsPlugin"]


class TimestampsPlugin:
    """Sets ``created_at`` on new rows and ``updated_at`` on every written row.

    ```python
    orm = await create_orm(engine, plugins=[TimestampsPlugin()])
    ```

    Every insert path (`create`, `create_many`, `upsert`, `upsert_many`) sets both columns,
    every update path (`update`, `update_many`, `bulk_update`, the update branch of an
    upsert) sets ``updated_at``, after validation, unless the call sets them itself. Any
    other INSERT or UPDATE of a timestamped table that passes through the plugins (another
    plugin's statements, such as a soft delete or restore, and `orm.execute`) gets the same
    treatment at the statement level. The per-call option ``timestamps=False`` turns it off
    for one call.

    A table is timestamped when it has either column, unless it is the audit log
    (``audit_logs``) or the migrations table (``kysera_migrations``), or ``tables=`` /
    ``exclude_tables=`` leave it out. Store the columns as `UTCDateTime` to read back the
    aware UTC values that were written on every database.

    Args:
        created_at: The name of the creation time column.
        updated_at: The name of the last-change time column.
        now: The clock: a function returning an aware datetime (default: the current time
            in UTC). Its value is converted to UTC; it is read once per call.
        tables: Only these tables (names or `Table` objects); each must have at least one
            of the columns. Default: every table that has one.
        exclude_tables: Never these tables.

    Raises:
        PluginError: An option is invalid.
    """

    name = PLUGIN_NAME
    # Innermost: its interceptor sees the statements other plugins produced (a soft delete
    # plugin turning a DELETE into an UPDATE) and stamps what finally runs.
    priority = -100

    def __init__(
        self,
        created_at: str = "created_at",
        updated_at: str = "updated_at",
        now: Callable[[], datetime] | None = None,
        tables: Iterable[str | Table] | None = None,
        exclude_tables: Iterable[str | Table] = (),
    ) -> None:
        self.settings = TimestampSettings(created_at, updated_at, now, tables, exclude_tables)
        # One class per plugin, so that the ORM can cache the composed repository class.
        self.mixin: type[TimestampsMixin[Any]] = type(
            "TimestampsMixin",
            (TimestampsMixin,),
            {"timestamp_settings": self.settings, "__module__": TimestampsMixin.__module__},
        )

    @property
    def created_at(self) -> str:
        """The creation time column's name."""
        return self.settings.created_at

    @property
    def updated_at(self) -> str:
        """The last-change time column's name."""
        return self.settings.updated_at

    def timestamps_table(self, table: Table) -> bool:
        """Whether the plugin timestamps ``table``.

        Raises:
            PluginError: The table is in scope but misconfigured (see `TimestampsPlugin`).
        """
        return self.settings.columns_of(table) is not None

    @hookimpl
    def kysera_repository_mixin(self, table: Table) -> type | None:
        return self.mixin if self.settings.columns_of(table) is not None else None

    @hookimpl
    def kysera_intercept_query(self, context: QueryContext) -> Any:
        operation = context.operation
        if operation == "select" or operation == "count":
            return None
        table = context.table
        statement = context.statement
        # By statement type, not operation: a plugin may turn a DELETE into an UPDATE.
        is_insert = isinstance(statement, Insert)
        if table is None or not (is_insert or isinstance(statement, Update)):
            return None
        settings = self.settings
        call = CURRENT_CALL.get()
        if call is not None and call.table is table and call.settings is settings:
            # A write method of the mixin: prepare_insert / prepare_update stamped its values.
            # Only an upsert's created_at goes into the statement, out of the update branch.
            if call.skip or not call.upsert or not is_insert:
                return None
            columns = settings.columns_of(table)
            assert columns is not None  # the mixin exists only for timestamped tables
            return stamp_insert(statement, columns, call.instant(), created_only=True)
        columns = settings.columns_of(table)
        if columns is None:
            return None
        if context.options.get("timestamps") is False or SUSPENDED.get():
            return None
        if is_insert:
            return stamp_insert(statement, columns, settings.now())
        return stamp_update(statement, columns, settings.now())

    def __repr__(self) -> str:
        return f"TimestampsPlugin(created_at={self.created_at!r}, updated_at={self.updated_at!r})"
