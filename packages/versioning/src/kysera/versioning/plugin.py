"""`VersionPlugin`: a version column that every UPDATE of a versioned table increments."""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy import Column, Insert, Table, Update, literal_column

from kysera.repository import PluginError, QueryContext, hookimpl
from kysera.versioning._sqlalchemy_internals import (
    bump_upsert,
    is_single_values_insert,
    sets_column,
)
from kysera.versioning.mixin import VersionMixin

__all__ = ["VersionPlugin"]

PLUGIN_NAME = "versioning"
_MISSING: Any = object()


class VersionPlugin:
    """Keeps an integer version column: 1 (or the column's default) on insert, +1 on update.

    ```python
    orm = await create_orm(engine, plugins=[VersionPlugin()])
    ```

    Every UPDATE of a table with the column that passes through the plugins (``update``,
    ``update_many``, ``bulk_update``, ``increment``, ``increment_many``, a soft delete or
    restore, ``orm.execute``) gets ``SET version = version + 1`` in the same statement,
    unless it sets the column itself. ``update(id, data, version=n)`` and
    ``bulk_update([(id, data, n), ...])`` are checked: a row whose version is no longer
    ``n`` raises `ConflictError` (with the current row) and nothing is written.

    Args:
        column: The name of the version column (an integer column).

    Raises:
        PluginError: ``column`` is not a non-empty string.
    """

    name = PLUGIN_NAME
    # Inner like timestamps: it sees the UPDATE a soft delete plugin made of a DELETE.
    priority = -90

    def __init__(self, column: str = "version") -> None:
        if not isinstance(column, str) or not column:
            raise PluginError("column must be a non-empty column name", plugins=[PLUGIN_NAME])
        self.column = column
        self._rewritten: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        # One class per plugin, so that the ORM can cache the composed repository class.
        self.mixin: type[VersionMixin[Any]] = type(
            "VersionMixin",
            (VersionMixin,),
            {"version_column": column, "__module__": VersionMixin.__module__},
        )

    def versioned(self, table: Table) -> bool:
        """Whether ``table`` has the version column."""
        return self.column in table.c

    @hookimpl
    def kysera_repository_mixin(self, table: Table) -> type | None:
        return self.mixin if self.versioned(table) else None

    @hookimpl
    def kysera_intercept_query(self, context: QueryContext) -> Any:
        table, statement = context.table, context.statement
        if table is None or context.operation in ("select", "count") or not self.versioned(table):
            return None
        # The same statement in, the same statement out: the repository's prebuilt
        # statements then stay on its fast path (it compiles a statement object it has seen
        # before), and SQLAlchemy need not rebuild the cache key per call.
        try:
            cached = self._rewritten.get(statement, _MISSING)
        except TypeError:  # not weak-referenceable
            return self._rewrite(table, statement)
        if cached is _MISSING:
            cached = self._rewritten[statement] = self._rewrite(table, statement)
        return cached

    def _rewrite(self, table: Table, statement: Any) -> Any:
        column: Column[Any] = table.c[self.column]
        original = statement
        if isinstance(statement, Update):
            if sets_column(statement, self.column):
                return None
            # A literal, not a bound 1: the same SQL text whatever the driver's paramstyle.
            return statement.values({self.column: column + literal_column("1")})
        if isinstance(statement, Insert):
            # An upsert's update branch bumps the stored version.
            bumped = bump_upsert(statement, column)
            if bumped is not None:
                statement = bumped
            # A bound default: a row that gives the column a value still wins.
            if (
                column.default is None
                and column.server_default is None
                and is_single_values_insert(statement)
                and not sets_column(statement, self.column)
            ):
                statement = statement.values({self.column: 1})
            return None if statement is original else statement
        return None

    def __repr__(self) -> str:
        return f"VersionPlugin(column={self.column!r})"
