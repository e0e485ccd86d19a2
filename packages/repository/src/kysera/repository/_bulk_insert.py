"""How ``create_many`` sends many rows: one executemany per set of columns the rows set.

Three ways in, picked by the repository: `insert_many_returning` where the database returns
inserted rows from a batched INSERT, `insert_one_by_one` where it cannot (MySQL; the caller
reads the rows back by key), and `insert_counting` when the caller wants no rows back (COPY
for large batches on asyncpg, see ``_copy``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection

from kysera.repository._array_insert import ArrayInsert, row_dicts
from kysera.repository._copy import can_copy, copy_rows

__all__ = [
    "RowGroups",
    "group_by_columns",
    "insert_counting",
    "insert_many_returning",
    "insert_one_by_one",
    "returns_inserted_rows",
]

RowGroups = list[tuple[list[int], list[dict[str, Any]]]]
"""Rows grouped by the columns they set: each group's input positions and its rows."""


def group_by_columns(rows: Sequence[dict[str, Any]]) -> RowGroups:
    """Group rows by the set of columns they set (an executemany needs one shape)."""
    first = rows[0].keys()
    if all(row.keys() == first for row in rows):
        return [(list(range(len(rows))), list(rows))]
    groups: dict[frozenset[str], tuple[list[int], list[dict[str, Any]]]] = {}
    for index, row in enumerate(rows):
        shape = frozenset(row)
        group = groups.get(shape)
        if group is None:
            group = groups[shape] = ([], [])
        group[0].append(index)
        group[1].append(row)
    return list(groups.values())


def returns_inserted_rows(connection: AsyncConnection) -> bool:
    """Whether `insert_many_returning` works here: the database has ``INSERT ...
    RETURNING`` and SQLAlchemy batches such an executemany as multi-row VALUES."""
    dialect = connection.dialect
    return dialect.insert_returning and dialect.use_insertmanyvalues


async def insert_many_returning(
    connection: AsyncConnection,
    statement: Any,
    groups: RowGroups,
    count: int,
    *,
    arrays: ArrayInsert | None = None,
) -> list[dict[str, Any]]:
    """Run the ``INSERT ... RETURNING`` ``statement`` over every group; return the inserted
    rows as dicts, in input order (SQLAlchemy keeps each batch's RETURNING rows in order).

    With ``arrays`` (the INSERT statement is the table's own: no plugin changed it), groups of
    several rows go in as one array-based statement on PostgreSQL where their columns allow.
    """
    found: list[Any] = [None] * count
    if arrays is not None and not arrays.usable(connection):
        arrays = None
    for indexes, group in groups:
        array_statement = arrays.statement(tuple(group[0])) if arrays and len(group) > 1 else None
        if arrays is not None and array_statement is not None:
            inserted = await arrays.insert(connection, array_statement, group)
        else:
            inserted = row_dicts(await connection.execute(statement, group))
        if len(groups) == 1 and len(inserted) == count:
            return inserted  # one group holds every row, in input order
        for index, row in zip(indexes, inserted, strict=True):
            found[index] = row
    return found


async def insert_one_by_one(
    connection: AsyncConnection, statement: Any, groups: RowGroups, count: int
) -> list[tuple[Any, ...]]:
    """Run the plain INSERT ``statement`` once per row; return the new primary keys, in
    input order (for a database without RETURNING, whose executemany loses them)."""
    inserted_keys: list[Any] = [None] * count
    for indexes, group in groups:
        for index, row_values in zip(indexes, group, strict=True):
            result = await connection.execute(statement, row_values)
            inserted_keys[index] = tuple(result.inserted_primary_key or ())
    return inserted_keys


async def insert_counting(
    connection: AsyncConnection,
    table: Table,
    statement: Any,
    groups: RowGroups,
    count: int,
    *,
    copy_allowed: bool,
) -> int:
    """Insert every group without reading rows back; return ``count``.

    ``copy_allowed`` says the INSERT ``statement`` is the table's own (no plugin changed
    it): only then may a large batch go in through COPY, which would skip the change.
    """
    if copy_allowed and can_copy(connection, count):
        await copy_rows(connection, table, [group for _, group in groups])
        return count
    for _indexes, group in groups:
        await connection.execute(statement, group)
    return count
