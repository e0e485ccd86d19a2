"""Seeding tables and looking at what a test left in them."""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from kysera.core.testing._executor import Executor, reading, writing
from kysera.core.testing._tables import TableRef, check_columns, resolve_table

__all__ = ["assert_row_exists", "count_rows", "seed_database", "snapshot_table"]


async def seed_database(
    engine: Executor, data: Mapping[TableRef, Iterable[Mapping[str, Any]]]
) -> None:
    """Insert rows into several tables in one transaction, parents before children.

    Example::

        await seed_database(engine, {users: [{"id": 1, "email": "a@example.com"}],
                                     orders: [{"id": 1, "user_id": 1}]})

    Args:
        engine: An `AsyncEngine` (committed at the end) or an `AsyncConnection` (the caller's
            transaction).
        data: Rows per table; a table is a `Table` or the name of one in the database.

    Raises:
        BadRequestError: An unknown table or column; nothing is inserted.
    """
    async with writing(engine) as conn:
        by_table: dict[sa.Table, list[dict[str, Any]]] = {}
        for ref, rows in data.items():
            table = await resolve_table(conn, ref)
            materialized = [dict(row) for row in rows]
            for row in materialized:
                check_columns(table, row)
            by_table.setdefault(table, []).extend(materialized)
        for table in _parents_first(by_table):
            if by_table[table]:
                await conn.execute(table.insert(), by_table[table])


async def snapshot_table(executor: Executor, table: TableRef) -> list[dict[str, Any]]:
    """Return every row of ``table`` as a dict, ordered by primary key (by all columns when
    the table has none), to compare a table before and after."""
    async with reading(executor) as conn:
        resolved = await resolve_table(conn, table)
        order = list(resolved.primary_key.columns) or list(resolved.c)
        result = await conn.execute(sa.select(resolved).order_by(*order))
        return [dict(row) for row in result.mappings()]


async def count_rows(executor: Executor, table: TableRef, /, **where: Any) -> int:
    """Return the number of rows in ``table``, or of those whose columns equal ``where``."""
    async with reading(executor) as conn:
        resolved = await resolve_table(conn, table)
        statement = sa.select(sa.func.count()).select_from(resolved)
        statement = statement.where(*_equalities(resolved, where))
        return int((await conn.execute(statement)).scalar_one())


async def assert_row_exists(executor: Executor, table: TableRef, /, **where: Any) -> dict[str, Any]:
    """Assert that a row whose columns equal ``where`` exists, and return it.

    Raises:
        AssertionError: No such row; the message shows the filter and a few rows that are there.
        InvalidQueryError: ``where`` names a column the table does not have.
    """
    async with reading(executor) as conn:
        resolved = await resolve_table(conn, table)
        statement = sa.select(resolved).where(*_equalities(resolved, where)).limit(1)
        row = (await conn.execute(statement)).mappings().first()
        if row is not None:
            return dict(row)
        sample = await _sample(conn, resolved)
    raise AssertionError(
        f"no row in {resolved.name!r} with {where!r}; "
        f"{len(sample)} row(s) shown of what is there: {sample!r}"
    )


def _parents_first(tables: Iterable[sa.Table]) -> list[sa.Table]:
    """Order tables so that referenced tables come first, matching them by name (tables given
    by name are reflected into metadata of their own)."""
    by_name = {table.name: table for table in tables}
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for name, table in by_name.items():
        parents = {
            fk.target_fullname.rsplit(".", 1)[0].rpartition(".")[2] for fk in table.foreign_keys
        }
        sorter.add(name, *(parent for parent in parents if parent in by_name and parent != name))
    try:
        return [by_name[name] for name in sorter.static_order()]
    except graphlib.CycleError:  # a cycle cannot be ordered: keep the caller's order
        return list(by_name.values())


def _equalities(table: sa.Table, where: Mapping[str, Any]) -> list[sa.ColumnElement[bool]]:
    check_columns(table, where)
    return [
        table.c[name].is_(None) if value is None else table.c[name] == value
        for name, value in where.items()
    ]


async def _sample(conn: AsyncConnection, table: sa.Table, limit: int = 5) -> list[dict[str, Any]]:
    order = list(table.primary_key.columns) or list(table.c)
    result = await conn.execute(sa.select(table).order_by(*order).limit(limit))
    return [dict(row) for row in result.mappings()]
