"""Statements a repository builds once and executes with bind parameters on every call.

Building a Core statement costs more than running a primary-key query on a local
database (see PERFORMANCE.md), so every fixed-shape statement is built here once per table
and reused; SQLAlchemy's compiled cache then finds it by identity-stable cache key.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Delete, Insert, Select, Table, Update, delete, func, insert, select, update
from sqlalchemy.dialects import mysql, postgresql, sqlite

from kysera.core import InvalidQueryError
from kysera.repository._array_insert import ArrayInsert
from kysera.repository._counters import increment_values
from kysera.repository._keys import PrimaryKey
from kysera.repository.context import as_read_back

__all__ = ["TableStatements", "statements_of"]

# Shapes of increments kept per table (a shape is a set of columns, so a table with many
# numeric columns could have very many); past this, further shapes are built per call.
_MAX_INCREMENT_SHAPES = 64

_BUILT: weakref.WeakKeyDictionary[Table, TableStatements] = weakref.WeakKeyDictionary()


def statements_of(table: Table) -> TableStatements:
    """The prebuilt statements of ``table`` (built on first use, shared afterwards)."""
    found = _BUILT.get(table)
    if found is None:
        found = _BUILT[table] = TableStatements(table, PrimaryKey(table))
    return found


class TableStatements:
    """The prebuilt statements of one table."""

    __slots__ = (
        "array_insert",
        "by_id",
        "by_ids",
        "count_all",
        "delete_by_id",
        "delete_by_ids",
        "increments",
        "insert",
        "insert_many_returning",
        "insert_returning",
        "key",
        "lock_keys",
        "read_back_by_ids",
        "select_all",
        "shapes",
        "table",
        "update_by_id",
        "update_by_id_returning",
        "upserts",
    )

    def __init__(self, table: Table, key: PrimaryKey) -> None:
        self.table = table
        self.key = key
        columns = tuple(table.columns)
        self.select_all: Select[Any] = select(table)
        # Read statements by shape (kysera.repository._shapes), built on first use.
        self.shapes: dict[Any, tuple[Select[Any], tuple[str, ...]]] = {}
        self.by_id: Select[Any] = select(table).where(key.condition)
        self.by_ids: Select[Any] = select(table).where(key.in_condition)
        self.read_back_by_ids: Select[Any] = as_read_back(self.by_ids)
        self.lock_keys: Select[Any] = select(*key.columns).where(key.in_condition).with_for_update()
        self.count_all: Select[Any] = select(func.count()).select_from(table)
        self.insert: Insert = insert(table)
        self.insert_returning: Insert = insert(table).returning(*columns)
        self.insert_many_returning: Insert = insert(table).returning(
            *columns, sort_by_parameter_order=True
        )
        self.update_by_id: Update = update(table).where(key.condition)
        self.update_by_id_returning: Update = self.update_by_id.returning(*columns)
        self.delete_by_id: Delete = delete(table).where(key.condition)
        self.delete_by_ids: Delete = delete(table).where(key.in_condition)
        self.upserts: dict[tuple[Any, ...], Insert] = {}
        self.increments: dict[tuple[str, ...], tuple[dict[str, Any], Update, Update]] = {}
        self.array_insert = ArrayInsert(table, key)

    def increment(self, names: tuple[str, ...]) -> tuple[dict[str, Any], Update, Update]:
        """The SET clause of an increment of the columns ``names`` and the UPDATE by primary
        key using it, without and with ``RETURNING`` every column (built once per shape)."""
        found = self.increments.get(names)
        if found is None:
            values = increment_values(self.table, names)
            plain = self.update_by_id.values(values)
            found = (values, plain, plain.returning(*self.table.columns))
            if len(self.increments) < _MAX_INCREMENT_SHAPES:
                self.increments[names] = found
        return found

    def upsert(
        self,
        dialect: str,
        columns: Sequence[str],
        conflict: Sequence[str],
        update_columns: Sequence[str],
        *,
        returning: bool,
    ) -> Insert:
        """The native upsert for ``dialect`` inserting ``columns`` (built once per shape).

        PostgreSQL and SQLite use ``INSERT ... ON CONFLICT (conflict) DO UPDATE``; MySQL and
        MariaDB use ``INSERT ... ON DUPLICATE KEY UPDATE`` (which reacts to any unique key).
        With nothing to update, the first conflict column is set to itself, so the statement
        still reports (and returns) the existing row.
        """
        cache_key = (dialect, tuple(columns), tuple(conflict), tuple(update_columns), returning)
        statement = self.upserts.get(cache_key)
        if statement is not None:
            return statement
        table = self.table
        if dialect in ("postgresql", "sqlite"):
            module: Any = postgresql if dialect == "postgresql" else sqlite
            base = module.insert(table)
            assignments = {name: base.excluded[name] for name in update_columns} or {
                conflict[0]: base.excluded[conflict[0]]
            }
            statement = base.on_conflict_do_update(
                index_elements=[table.c[name] for name in conflict], set_=assignments
            )
        elif dialect in ("mysql", "mariadb"):
            base = mysql.insert(table)
            statement = base.on_duplicate_key_update(
                {name: base.inserted[name] for name in update_columns}
                or {conflict[0]: table.c[conflict[0]]}
            )
        else:
            raise InvalidQueryError(f"upsert is not supported on the {dialect!r} dialect")
        if returning:
            statement = statement.returning(*table.columns)
        self.upserts[cache_key] = statement
        return statement
