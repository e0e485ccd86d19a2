"""Checking and resolving the table names the testing helpers are given.

A name is checked before it gets anywhere near SQL: it must be a plain identifier-like string
(no quotes, backticks, semicolons, backslashes or control characters) naming a table that
exists. Statements are then built with SQLAlchemy constructs, which quote identifiers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from kysera.core.errors import BadRequestError, InvalidQueryError

__all__: list[str] = []

TableRef = sa.Table | str
_FORBIDDEN = re.compile(r"[\"'`;\\\x00-\x1f\x7f]")


def check_table_name(name: object) -> str:
    """Return ``name`` if it can be a table name; raise `BadRequestError` otherwise."""
    if not isinstance(name, str) or not name or len(name) > 128:
        raise BadRequestError(f"invalid table name {name!r}: expected a non-empty string")
    if _FORBIDDEN.search(name):
        raise BadRequestError(
            f"invalid table name {name!r}: quotes, semicolons, backslashes and control "
            f"characters are not allowed in a table name"
        )
    return name


def table_name(table: TableRef) -> str:
    """The (checked) name of a table given as a `Table` or a string."""
    return table.name if isinstance(table, sa.Table) else check_table_name(table)


def unknown_table(name: str, known: Iterable[str]) -> BadRequestError:
    listed = ", ".join(sorted(known)) or "none"
    return BadRequestError(f"unknown table {name!r} (tables in the database: {listed})")


async def resolve_table(conn: AsyncConnection, table: TableRef) -> sa.Table:
    """Return ``table`` itself, or the reflected table of that name."""
    if isinstance(table, sa.Table):
        return table
    name = check_table_name(table)

    def reflect(sync: Connection) -> sa.Table:
        try:
            return sa.Table(name, sa.MetaData(), autoload_with=sync)
        except sa_exc.NoSuchTableError:
            raise unknown_table(name, sa.inspect(sync).get_table_names()) from None

    return await conn.run_sync(reflect)


def check_columns(table: sa.Table, names: Iterable[str]) -> None:
    """Raise `InvalidQueryError` naming any of ``names`` that is not a column of ``table``."""
    unknown = sorted(set(names) - set(table.c.keys()))
    if unknown:
        raise InvalidQueryError(
            f"unknown column(s) {', '.join(map(repr, unknown))} for table {table.name!r} "
            f"(columns: {', '.join(table.c.keys())})"
        )
