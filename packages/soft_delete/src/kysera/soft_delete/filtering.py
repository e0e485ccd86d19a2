"""Add "not deleted" conditions to hand-written SELECTs: `filter_select`.

A repository's statement reads one table, so the plugin puts the condition into its WHERE
clause. A hand-written SELECT passed to `orm.execute` may read several tables, join them and
nest SELECTs; `kysera.repository.restrict_select` places ``deleted_at IS NULL`` wherever
each soft-deletable table (or alias of one) is read, keeping the meaning of the joins (the
optional side of an outer join is filtered in its ``ON`` clause, so a LEFT JOIN still
returns the left row when its only match is deleted). Each SELECT of a set operation
(``UNION``) passed to `orm.execute` is filtered as a statement of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Select, Table

from kysera.repository import restrict_select

__all__ = ["filter_select"]

# Decides whether a table is soft-deletable; returns its deleted-at column name or None.
ColumnOf = Callable[[Table], "str | None"]


def filter_select(statement: Select[Any], column_of: ColumnOf) -> Select[Any] | None:
    """Return ``statement`` hiding the deleted rows of its soft-deletable tables, or ``None``
    when it reads none.

    Nested SELECTs (subqueries in FROM, ``IN (SELECT ...)``, ``EXISTS``, scalar subqueries,
    CTEs) are filtered the same way, each in its own WHERE/ON clauses.

    Args:
        statement: A Core SELECT.
        column_of: Returns a table's deletion column, or ``None`` when the table is not
            soft-deletable.
    """

    def live(table: Table, source: FromClause) -> ColumnElement[bool] | None:
        column = column_of(table)
        return None if column is None else source.c[column].is_(None)

    return restrict_select(statement, live)
