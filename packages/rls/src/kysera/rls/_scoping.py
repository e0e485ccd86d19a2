"""Where a hand-written SELECT can be confined: the tables a WHERE clause restricts, and the
places it cannot reach."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import visitors
from sqlalchemy.sql.selectable import AliasedReturnsRows, SelectBase

__all__ = ["tables_in", "unscopable_tables", "where_scopable_tables"]

Wanted = Callable[[sa.Table], bool]


def tables_in(element: Any, wanted: Wanted) -> set[sa.Table]:
    """The wanted tables anywhere inside ``element``."""
    return {
        found
        for found in visitors.iterate(element)
        if isinstance(found, sa.Table) and wanted(found)
    }


def where_scopable_tables(statement: sa.Select[Any], wanted: Wanted) -> list[sa.Table]:
    """The wanted tables a WHERE on ``statement`` restricts: plain FROM tables and both sides
    of inner joins."""
    found: list[sa.Table] = []

    def collect(source: Any) -> None:
        if isinstance(source, sa.Table):
            if wanted(source) and source not in found:
                found.append(source)
        elif isinstance(source, sa.Join) and not source.full:
            collect(source.left)
            if not source.isouter:
                collect(source.right)

    for source in statement.get_final_froms():
        collect(source)
    return found


def unscopable_tables(statement: sa.Select[Any], wanted: Wanted) -> set[sa.Table]:
    """The wanted tables a WHERE on ``statement`` cannot restrict: inside a nested SELECT
    (subquery, EXISTS, IN, scalar), a CTE or an alias, or on an outer join's optional side."""
    unreachable: set[sa.Table] = set()
    for element in visitors.iterate(statement):
        if element is statement:
            continue
        if isinstance(element, (SelectBase, AliasedReturnsRows)):
            unreachable |= tables_in(element, wanted)
        elif isinstance(element, sa.Join) and (element.isouter or element.full):
            unreachable |= tables_in(element.right, wanted)
            if element.full:
                unreachable |= tables_in(element.left, wanted)
    return unreachable
