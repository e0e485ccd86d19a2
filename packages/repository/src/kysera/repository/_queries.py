"""The read statements built per call from a method's arguments (``where``, ``order_by``,
``limit``, ``offset``, ``columns``), before plugins see them.

Statements of a fixed shape are prebuilt per table instead (see ``_statements``); these start
from one of them where they can, so unfiltered calls add nothing to build.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Select, Table, exists, select

from kysera.core import InvalidQueryError
from kysera.repository._messages import short_repr
from kysera.repository._statements import TableStatements
from kysera.repository.ordering import compile_order_by
from kysera.repository.where import compile_where

__all__ = ["count_statement", "exists_of", "exists_statement", "select_statement"]


def select_statement(
    statements: TableStatements,
    where: Any = None,
    order_by: Any = None,
    limit: int | None = None,
    offset: int | None = None,
    columns: Sequence[str] | None = None,
) -> Select[Any]:
    """``SELECT`` the table's rows (or only ``columns``) matching ``where``, ordered and
    sliced.

    Raises:
        InvalidQueryError: Bad ``limit``/``offset``, unknown column, bad ``where`` or
            ``order_by``.
    """
    table = statements.table
    _check_limit("limit", limit)
    _check_limit("offset", offset)
    statement = statements.select_all if columns is None else select(*_columns(table, columns))
    condition = compile_where(table, where)
    if condition is not None:
        statement = statement.where(condition)
    if order_by is not None:
        clauses = compile_order_by(table, order_by)
        if clauses:
            statement = statement.order_by(*clauses)
    if limit is not None:
        statement = statement.limit(limit)
    if offset is not None:
        statement = statement.offset(offset)
    return statement


def count_statement(statements: TableStatements, where: Any) -> Select[Any]:
    """``SELECT count(*)`` of the rows matching ``where``."""
    condition = compile_where(statements.table, where)
    statement = statements.count_all
    if condition is not None:
        statement = statement.where(condition)
    return statement


def exists_statement(statements: TableStatements, where: Any) -> Select[Any]:
    """The inner ``SELECT`` of an ``EXISTS`` over the rows matching ``where`` (what plugins
    rewrite, before it is wrapped in ``SELECT EXISTS (...)``)."""
    table = statements.table
    inner = select(statements.key.columns[0]).select_from(table)
    condition = compile_where(table, where)
    if condition is not None:
        inner = inner.where(condition)
    return inner


def exists_of(inner: Select[Any]) -> Select[Any]:
    """``SELECT EXISTS (inner)``: the same statement for the same ``inner`` (a read shape's,
    as plugins rewrote it), so that it is compiled and prepared once."""
    found = _EXISTS.get(inner)
    if found is None:
        if len(_EXISTS) >= _EXISTS_KEPT:
            _EXISTS.clear()
        found = _EXISTS[inner] = select(exists(inner))
    return found


# Wrapped statements kept (strongly: the wrapper holds its inner statement, so a weak key
# would never go); inner statements built per call cycle through it.
_EXISTS_KEPT = 256
_EXISTS: dict[Select[Any], Select[Any]] = {}


# The largest LIMIT/OFFSET every database accepts: a signed 64-bit integer (SQLite's driver
# cannot bind a larger one; PostgreSQL's LIMIT is a bigint).
_MAX_LIMIT = 2**63 - 1


def _check_limit(name: str, value: int | None) -> None:
    if value is not None and (
        not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_LIMIT
    ):
        raise InvalidQueryError(
            f"{name} must be an integer from 0 to {_MAX_LIMIT}, got {short_repr(value)}"
        )


def _columns(table: Table, names: Iterable[str]) -> list[Any]:
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, Iterable) or isinstance(names, (Mapping, bytes, bytearray)):
        raise InvalidQueryError(
            f"columns must be a list of column names, not {type(names).__name__}"
        )
    chosen = []
    for name in names:
        column = table.columns.get(name) if isinstance(name, str) else None
        if column is None:
            raise InvalidQueryError(
                f"unknown column {name!r} of {table.name!r}; "
                f"columns are {sorted(table.columns.keys())}"
            )
        chosen.append(column)
    if not chosen:
        raise InvalidQueryError("columns must name at least one column")
    return chosen
