"""Order specs: ``"col"``, ``"-col"``, ``("col", "desc")`` or SQLAlchemy expressions.

Column names are checked against ``table.c``; the result is a list ready for
``select(...).order_by(*clauses)``. Where NULLs sort is the database's choice (first in
ascending order on SQLite and MySQL, last on PostgreSQL); pass an expression such as
``table.c.score.desc().nulls_last()`` when it matters and the database supports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, TypeAlias

import sqlalchemy as sa

from kysera.core.errors import InvalidQueryError
from kysera.repository._messages import describe, short_repr, unknown_name

__all__ = ["OrderSpec", "compile_order_by"]

OrderSpec: TypeAlias = str | tuple[str, str] | sa.ColumnElement[Any]
"""One sort key: ``"col"`` (ascending), ``"-col"`` (descending), ``("col", "asc" | "desc")``,
or a SQLAlchemy expression such as ``table.c.name.desc()``."""

DIRECTIONS: Final = ("asc", "desc")


def compile_order_by(
    table: sa.Table, order_by: OrderSpec | Sequence[OrderSpec] | None
) -> list[sa.ColumnElement[Any]]:
    """Turn order specs into ``ORDER BY`` clauses over ``table``.

    Args:
        table: The table whose columns the specs may name (by column key).
        order_by: One spec or a list of them; ``None`` means no ordering. A 2-tuple whose second
            item is ``"asc"`` or ``"desc"`` is one spec; use a list for several keys.

    Returns:
        The clauses, in order (empty for ``None`` or an empty list).

    Raises:
        InvalidQueryError: An unknown column (the message lists the valid ones), an unknown
            direction, or a spec of the wrong shape or type.

    Example:
        >>> import sqlalchemy as sa
        >>> users = sa.Table(
        ...     "users", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
        ...     sa.Column("name", sa.String)
        ... )
        >>> [str(clause) for clause in compile_order_by(users, ["-name", ("id", "asc")])]
        ['users.name DESC', 'users.id ASC']
    """
    if order_by is None:
        return []
    if _is_single_spec(order_by):
        return [_clause(table, order_by, "order_by")]
    if not isinstance(order_by, Sequence):
        raise InvalidQueryError(
            "order_by must be a column name, a (column, direction) pair, a SQLAlchemy "
            f"expression or a list of them, not {describe(order_by)}"
        )
    return [_clause(table, spec, f"order_by[{index}]") for index, spec in enumerate(order_by)]


def _is_single_spec(order_by: Any) -> bool:
    if isinstance(order_by, (str, sa.ColumnElement)):
        return True
    return (
        isinstance(order_by, tuple)
        and len(order_by) == 2
        and all(isinstance(item, str) for item in order_by)
        and order_by[1].lower() in DIRECTIONS
    )


def _clause(table: sa.Table, spec: Any, path: str) -> sa.ColumnElement[Any]:
    if isinstance(spec, sa.ColumnElement):
        return spec
    if isinstance(spec, str):
        name, descending = (spec[1:], True) if spec.startswith("-") else (spec, False)
        column = _column(table, name, path)
        return column.desc() if descending else column.asc()
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        name, direction = spec
        if not isinstance(name, str):
            raise InvalidQueryError(f"{path}: a column name must be a string, not {describe(name)}")
        column = _column(table, name, path)
        if not isinstance(direction, str) or direction.lower() not in DIRECTIONS:
            raise InvalidQueryError(
                f"{path}: unknown direction {short_repr(direction)}; valid directions: asc, desc"
            )
        return column.desc() if direction.lower() == "desc" else column.asc()
    raise InvalidQueryError(
        f"{path}: expected 'col', '-col', ('col', 'asc'|'desc') or a SQLAlchemy expression, "
        f"not {describe(spec)}"
    )


def _column(table: sa.Table, name: str, path: str) -> sa.Column[Any]:
    column = table.c.get(name)
    if column is None:
        message = unknown_name("column", name, table.c.keys(), f"for table {table.name}")
        if name.lower() in DIRECTIONS:
            message += (
                "; a list holds several sort keys: write ('col', 'desc') as a tuple, or '-col'"
            )
        raise InvalidQueryError(f"{path}: {message}")
    return column
