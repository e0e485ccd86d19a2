"""Add "not expired" conditions to hand-written SELECTs passed to `orm.execute`:
`filter_select`.

A repository's statement reads one table, so the plugin puts the condition into its WHERE
clause. A hand-written SELECT may read several tables, join them and nest SELECTs;
`kysera.repository.restrict_select` places the condition wherever each expiring table (or
alias of one) is read, keeping the meaning of the joins (the optional side of an outer join
is filtered in its ``ON`` clause, so a LEFT JOIN still returns the left row when its only
match is expired). Each SELECT of a set operation (``UNION``) passed to `orm.execute` is
filtered as a statement of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Select, Table

from kysera.repository import restrict_select

__all__ = ["filter_select"]

# Returns the "not expired" condition for a table (or alias of one), or None.
ConditionOf = Callable[[FromClause], "ColumnElement[bool] | None"]


def filter_select(statement: Select[Any], condition_of: ConditionOf) -> Select[Any] | None:
    """Return ``statement`` hiding the expired rows of its expiring tables, or ``None``
    when it reads none.

    Nested SELECTs (subqueries in FROM, ``IN (SELECT ...)``, ``EXISTS``, scalar subqueries,
    CTEs) are filtered the same way, each in its own WHERE/ON clauses.

    Args:
        statement: A Core SELECT.
        condition_of: Returns the "not expired" condition of a table or alias, or ``None``.
    """

    def live(table: Table, source: FromClause) -> ColumnElement[bool] | None:
        return condition_of(source)

    return restrict_select(statement, live)
