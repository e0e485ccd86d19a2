"""Newest first with NULLs last, on every dialect.

PostgreSQL sorts NULL as the largest value, so ``DESC`` puts rows without a timestamp (rows
that existed before the column was added) first, as the "most recent". SQLite and
MySQL/MariaDB sort NULL as the smallest, so ``DESC`` already puts them last; MySQL/MariaDB
have no ``NULLS LAST`` syntax at all.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, ColumnElement
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

__all__ = ["newest_first"]

# Dialects on which NULL sorts as the largest value.
_NULLS_LARGEST = frozenset({"postgresql", "oracle"})


class _DescendingNullsLast(ColumnElement[Any]):
    """``column DESC NULLS LAST`` where NULL sorts largest, else ``column DESC``."""

    __visit_name__ = "kysera_descending_nulls_last"
    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy's own convention for this attribute)
        ("column", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: Column[Any]) -> None:
        self.column = column
        self.type = column.type


@compiles(_DescendingNullsLast)
def _compile(element: _DescendingNullsLast, compiler: SQLCompiler, **options: Any) -> str:
    descending = element.column.desc()
    if compiler.dialect.name in _NULLS_LARGEST:
        descending = descending.nulls_last()
    return compiler.process(descending, **options)


def newest_first(column: Column[Any]) -> ColumnElement[Any]:
    """The ORDER BY term for ``column`` newest first, NULLs last on every dialect (a NOT NULL
    column gets a plain ``DESC``, which an ordinary index serves)."""
    if not column.nullable:
        return column.desc()
    return _DescendingNullsLast(column)
