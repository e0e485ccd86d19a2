"""`SoftDeletePlugin`: hide deleted rows from every read, mark rows deleted instead of
removing them."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Table
from sqlalchemy.sql.base import Executable

from kysera.repository import PluginError, QueryContext, hookimpl
from kysera.soft_delete.filtering import filter_select
from kysera.soft_delete.mixin import SoftDeleteMixin

__all__ = ["ALWAYS_EXCLUDED_TABLES", "SoftDeletePlugin", "utc_now"]

ALWAYS_EXCLUDED_TABLES: frozenset[str] = frozenset({"audit_logs", "kysera_migrations"})
"""Tables never filtered: the audit log and the migrations bookkeeping table."""


def utc_now() -> datetime:
    """The current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


class SoftDeletePlugin:
    """Soft delete: rows get a deletion time instead of being removed, and reads hide them.

    A table is soft-deletable when it has ``column`` (and, with ``tables``, is listed
    there), unless it is excluded. Every SELECT, COUNT/EXISTS and UPDATE of such a table,
    whether built by a repository or passed to ``orm.execute``, gets
    ``column IS NULL`` unless the call passes ``include_deleted=True``. INSERT and DELETE
    statements are left alone (deleting a soft-deleted row for good is always allowed).
    Repositories of soft-deletable tables gain the methods of `SoftDeleteMethods`.

    Args:
        column: The nullable timestamp column holding the deletion time.
        replace_delete: Make ``delete``/``delete_many`` soft-delete too (``hard_delete``
            still removes rows).
        tables: Only these tables (names) are soft-deletable; a listed table without
            ``column`` is refused when its repository is created.
        exclude_tables: Tables (names) never filtered, in addition to the audit log
            (``audit_logs``, or the ``table`` of a registered ``audit`` plugin) and
            ``kysera_migrations``.
        now: The clock for deletion times (default: timezone-aware UTC now).
    """

    name = "soft_delete"

    def __init__(
        self,
        column: str = "deleted_at",
        replace_delete: bool = False,
        tables: Iterable[str] | None = None,
        exclude_tables: Iterable[str] = (),
        *,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        if isinstance(tables, str) or isinstance(exclude_tables, str):
            raise TypeError("tables and exclude_tables take a list of table names, not a str")
        self.column = column
        self.replace_delete = replace_delete
        self.tables: frozenset[str] | None = None if tables is None else frozenset(tables)
        self.exclude_tables: frozenset[str] = ALWAYS_EXCLUDED_TABLES | frozenset(exclude_tables)
        self.now: Callable[[], datetime] = utc_now if now is None else now
        self._decisions: dict[Table, str | None] = {}
        self._live_conditions: dict[Table, ColumnElement[bool]] = {}
        # Repository statements are built once and reused, so their filtered forms are kept,
        # for as long as the original lives: a statement built per call (a find with a
        # where) leaves the cache when it is dropped, and is never kept alive by it.
        self._filtered: weakref.WeakKeyDictionary[Executable, Executable] = (
            weakref.WeakKeyDictionary()
        )
        # The last statement found in that cache, and its filtered form: a repository
        # repeating one read (find_by_id) skips the weak lookup. Only statements seen twice
        # get here, so nothing built per call is kept alive.
        self._last_hit: tuple[Executable, Executable] | None = None
        # One class per plugin, so that the ORM can cache the composed repository class.
        self.mixin: type[SoftDeleteMixin] = type(
            "SoftDeleteMixin",
            (SoftDeleteMixin,),
            {
                "soft_delete_column": column,
                "soft_delete_replaces_delete": replace_delete,
                "soft_delete_now": lambda _repository: self.now(),
            },
        )

    def __repr__(self) -> str:
        return f"SoftDeletePlugin(column={self.column!r}, replace_delete={self.replace_delete!r})"

    def column_of(self, table: Table) -> str | None:
        """The deletion column if ``table`` is soft-deletable, else ``None``."""
        try:
            return self._decisions[table]
        except KeyError:
            pass
        names = {table.name, table.fullname}
        applies = (
            self.column in table.c
            and not names & self.exclude_tables
            and (self.tables is None or bool(names & self.tables))
        )
        decision = self.column if applies else None
        self._decisions[table] = decision
        return decision

    @hookimpl
    def kysera_configure(self, orm: Any) -> None:
        # An audit plugin configured with another table name: never filter its log either.
        for plugin in orm.plugins:
            if getattr(plugin, "name", None) != "audit":
                continue
            audit_table = getattr(plugin, "table", None)
            name = getattr(audit_table, "name", audit_table)
            if isinstance(name, str) and name not in self.exclude_tables:
                self.exclude_tables = self.exclude_tables | {name}
                self._decisions.clear()
                self._live_conditions.clear()
                self._filtered.clear()

    @hookimpl
    def kysera_repository_mixin(self, table: Table, orm: Any) -> type | None:
        if self.column_of(table) is not None:
            return self.mixin
        if self.tables is not None and table.name in self.tables and self.column not in table.c:
            raise PluginError(
                f"soft_delete: table {table.name!r} is listed in tables= but has no "
                f"{self.column!r} column (add a nullable timestamp column {self.column!r})",
                plugins=[self.name],
            )
        return None

    @hookimpl
    def kysera_intercept_query(self, context: QueryContext) -> Any:
        operation = context.operation
        if operation == "insert" or operation == "delete":
            return None
        options = context.options
        if options and options.get("include_deleted"):
            return None
        statement = context.statement
        last_hit = self._last_hit
        if last_hit is not None and last_hit[0] is statement:
            return last_hit[1]
        cached = self._filtered.get(statement)
        if cached is not None:
            self._last_hit = (statement, cached)
            return cached
        if context.read_back:
            # A write's re-select (MySQL/MariaDB): the row just written, deleted or not.
            # Checked after the cache, which never holds a read-back (nothing is cached
            # for it), so reads pay nothing for it.
            return None
        table = context.table
        filtered: Any
        if table is not None:
            condition = self._live_conditions.get(table)
            if condition is None:
                column = self.column_of(table)
                if column is None:
                    return None
                condition = self._live_conditions[table] = table.c[column].is_(None)
            filtered = statement.where(condition)  # type: ignore[attr-defined]
        elif isinstance(statement, Select):
            filtered = filter_select(statement, self.column_of)
            if filtered is None:
                return None
        else:
            return None
        self._filtered[statement] = filtered
        return filtered
