"""One statement per read *shape*: reads that differ only in their values share it.

A service calls ``find({"status": s}, order_by="-created_at", limit=20)`` with a new ``s``
each time. Built per call, the statement costs its construction, a fresh SQLAlchemy cache key
and the extraction of its literal values on every call (measured: a reused statement with
parameters runs in about half the time of one built per call). Here the where-dict's
structure (columns, operators, in order), ``order_by``, ``limit``, ``offset`` and
``columns`` make the key of one prebuilt Select whose values are named bind parameters;
each call validates its values exactly as `compile_where` does and binds them.

Only plain comparisons are shaped: a column equal to a value, ``$eq``, ``$ne``, ``$gt``,
``$gte``, ``$lt``, ``$lte`` of one, ``$in``/``$nin`` of a list of them (one array parameter
on PostgreSQL, so one statement for every length; an expanding parameter elsewhere), and NULL
tests (``None`` as a value, ``$eq``/``$ne`` of ``None``, ``$is_null``). Everything else
(logical operators, other lists, ``None`` in a list, SQLAlchemy expressions, and the
values whose SQL `compile_where` writes differently: datetimes and times on SQLite (its time
text forms), binary values on MySQL/MariaDB, integers wider than their column) is built for
its call alone, by the same builders, which also raise its errors. The SQL is the same either
way, parameter names aside.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import Select

from kysera.core._mysql_bytes import is_plain_binary
from kysera.core._single_precision import compared_type
from kysera.repository._dialects import OnDialect
from kysera.repository._messages import short_repr
from kysera.repository._queries import count_statement, exists_statement, select_statement
from kysera.repository._statements import TableStatements
from kysera.repository.where import (
    LITERAL_INTEGERS_ABOVE,
    _and,
    _Condition,
    _is_array,
    _is_time_text,
    _value,
    _wide_integer_type,
)

__all__ = ["Built", "count_and_params", "exists_and_params", "select_and_params"]

Built = tuple[Select[Any], dict[str, Any] | None]
"""A statement and this call's parameters (``None`` for a statement built for the call)."""

_ORDERINGS: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}
_SHAPED_OPERATORS: Final = frozenset({"$eq", "$ne", *_ORDERINGS})
_MEMBERSHIP_OPERATORS: Final = frozenset({"$in", "$nin"})
# NULL tests in a layout, whichever way the where-dict says them (the SQL is the same).
_IS_NULL: Final = "IS NULL"
_IS_NOT_NULL: Final = "IS NOT NULL"
# Operands left to the per-call path: structures (lists, dicts), bytes and expressions.
_UNSHAPED_VALUES: Final = (Mapping, list, tuple, set, frozenset, bytes, bytearray, sa.ClauseElement)
# Shapes kept per table before starting over (a service has a handful).
_SHAPES_PER_TABLE: Final = 256
_PARAMETER: Final = "kysera_where_{}"
# The dialects on which `compile_where` compares binary values plainly (MySQL and MariaDB
# compare UNHEX(:hex), see kysera.core._mysql_bytes).
_PLAIN_BINARY_DIALECTS: Final = frozenset({"postgresql", "sqlite"})


def select_and_params(
    statements: TableStatements,
    dialect: str,
    where: Any,
    order_by: Any,
    limit: Any,
    offset: Any,
    columns: Any,
) -> Built:
    """The SELECT of these `find` arguments and this call's parameters: the shape's statement
    (built on first use) with the call's validated values, or, for a call of no shape kept
    here, a statement built for it alone (parameters ``None``).

    Raises:
        InvalidQueryError: A bad ``where`` (the same error, with the same path, as
            `compile_where` raises), ``order_by``, ``limit``, ``offset`` or ``columns``.
    """

    def build(where: Any) -> Select[Any]:
        # The general builder checks limit, offset, order_by and columns (and raises).
        return select_statement(statements, where, order_by, limit, offset, columns)

    options = (_hashable(order_by), _exact(limit), _exact(offset), _hashable(columns))
    if _UNHASHABLE in options:
        return build(where), None
    return _shaped(statements, dialect, where, ("select", *options), build)


def count_and_params(statements: TableStatements, dialect: str, where: Any) -> Built:
    """As `select_and_params`, for ``SELECT count(*)`` of the rows matching ``where``."""
    return _shaped(statements, dialect, where, ("count",), lambda w: count_statement(statements, w))


def exists_and_params(statements: TableStatements, dialect: str, where: Any) -> Built:
    """As `select_and_params`, for the inner ``SELECT`` of an ``EXISTS`` over ``where``."""
    return _shaped(
        statements, dialect, where, ("exists",), lambda w: exists_statement(statements, w)
    )


def _shaped(
    statements: TableStatements,
    dialect: str,
    where: Any,
    options: tuple[Any, ...],
    build: Callable[[Any], Select[Any]],
) -> Built:
    """The statement of ``where``'s shape and its parameters, or ``build(where)`` and ``None``
    when ``where`` has no shape kept here; ``build`` takes a where-dict or a condition."""
    layout = _where_layout(statements.table, dialect, where)
    if layout is None:
        return build(where), None
    leaves, values = layout
    key = (leaves, options)
    shapes = statements.shapes
    found = shapes.get(key)
    if found is None:
        condition, names = _condition(statements.table, leaves)
        statement = build(condition)
        if len(shapes) >= _SHAPES_PER_TABLE:
            shapes.clear()
        found = shapes[key] = (statement, names)
    statement, names = found
    return statement, dict(zip(names, values, strict=True))


def _where_layout(
    table: sa.Table, dialect: str, where: Any
) -> tuple[tuple[Any, ...], list[Any]] | None:
    """The where-dict's structure and its validated values, or ``None`` if not shaped.

    The layout is the same on every dialect, and so is the statement of a shape: only which
    values the shape takes depends on ``dialect`` (those `compile_where` compares
    differently there take the general path on that dialect only).
    """
    if where is None:
        return (), []
    if type(where) is not dict:
        return None
    leaves: list[Any] = []
    values: list[Any] = []
    for key, spec in where.items():
        if type(key) is not str or key.startswith("$"):
            return None
        column = table.c.get(key)
        if column is None:
            return None
        path = f"where[{short_repr(key)}]"
        if type(spec) is dict:
            if not spec:
                return None
            operations = list(spec.items())
            bare = False
        else:
            operations = [("$eq", spec)]
            bare = True
        names: list[str] = []
        for name, operand in operations:
            if name in _MEMBERSHIP_OPERATORS:
                listed = _listed_values(column, dialect, operand, f"{path}[{short_repr(name)}]")
                if listed is None:
                    return None
                names.append(name)
                values.append(listed)
                continue
            null_test = _null_test(name, operand)
            if null_test is not None:
                names.append(null_test)  # no value to bind
                continue
            if name not in _SHAPED_OPERATORS or operand is None:
                return None
            if isinstance(operand, _UNSHAPED_VALUES):
                return None
            value = _value(column, operand, path if bare else f"{path}[{short_repr(name)}]")
            if _written_differently(column, dialect, value):
                return None
            names.append(name)
            values.append(value)
        leaves.append((key, tuple(names)))  # {x: v} and {x: {$eq: v}} are one shape
    return tuple(leaves), values


def _null_test(name: str, operand: Any) -> str | None:
    """`_IS_NULL` or `_IS_NOT_NULL` for an operation that tests for NULL (``None`` as a value,
    ``{"$eq": None}``, ``{"$ne": None}``, ``{"$is_null": true}``), else ``None``."""
    if operand is None and name in ("$eq", "$ne"):
        return _IS_NULL if name == "$eq" else _IS_NOT_NULL
    if name == "$is_null" and type(operand) is bool:
        return _IS_NULL if operand else _IS_NOT_NULL
    return None


def _listed_values(column: sa.Column[Any], dialect: str, operand: Any, path: str) -> Any:
    """The validated items of an ``$in``/``$nin`` list, or ``None`` for a list this shape does
    not take: not a plain list, empty, holding ``None`` (it matches NULL) or structures, an
    ARRAY column, or items `compile_where` writes differently (see `_where_layout`; and a
    long list of integers, which it writes into the SQL text)."""
    if type(operand) not in (list, tuple) or not operand or _is_array(column.type):
        return None
    if len(operand) > LITERAL_INTEGERS_ABOVE:
        return None
    items = []
    for index, item in enumerate(operand):
        if item is None or isinstance(item, _UNSHAPED_VALUES):
            return None
        value = _value(column, item, f"{path}[{index}]")
        if _written_differently(column, dialect, value):
            return None
        items.append(value)
    return items


def _membership(column: sa.Column[Any], key: str) -> sa.ColumnElement[bool]:
    """``column IN (...)`` of one list parameter, as `compile_where` writes it: one array
    parameter on PostgreSQL, an expanding one elsewhere (both read the parameter ``key``,
    and a dialect compiles only its own)."""
    value_type = compared_type(column.type)
    listed = column.in_(sa.bindparam(key, type_=value_type, expanding=True))
    array = sa.bindparam(key, type_=sa.ARRAY(value_type))
    return OnDialect(listed, "postgresql", column == sa.any_(array))


def _written_differently(column: sa.Column[Any], dialect: str, value: Any) -> bool:
    """Whether `compile_where` compares ``value`` otherwise than a plain parameter of the
    column's type on ``dialect`` (such values take the per-call path)."""
    return (
        (dialect == "sqlite" and _is_time_text(column, value))
        or (dialect not in _PLAIN_BINARY_DIALECTS and is_plain_binary(column.type))
        or _wide_integer_type(column, [value]) is not None
    )


def _condition(
    table: sa.Table, leaves: tuple[Any, ...]
) -> tuple[sa.ColumnElement[bool] | None, tuple[str, ...]]:
    """The WHERE condition of a layout, as `compile_where` builds it, with named parameters."""
    if not leaves:
        return None, ()
    names: list[str] = []
    parts: list[sa.ColumnElement[bool]] = []
    for key, operations in leaves:
        column = table.c[key]
        conditions = []
        for name in operations:
            if name in (_IS_NULL, _IS_NOT_NULL):
                null = _Condition(column, None, matches_null=True)
                conditions.append(null if name == _IS_NULL else null.complement())
                continue
            parameter = sa.bindparam(
                _PARAMETER.format(len(names)), type_=compared_type(column.type)
            )
            names.append(parameter.key)
            if name in _MEMBERSHIP_OPERATORS:
                member = _Condition(column, _membership(column, parameter.key))
                conditions.append(member.complement() if name == "$nin" else member)
            elif name in _ORDERINGS:
                conditions.append(_Condition(column, _ORDERINGS[name](column, parameter)))
            else:
                equal = _Condition(column, column == parameter)
                conditions.append(equal.complement() if name == "$ne" else equal)
        rendered = [condition.render(negate=False) for condition in conditions]
        parts.append(_and(rendered))
    return _and(parts), tuple(names)


class _Unhashable:
    pass


_UNHASHABLE: Final = _Unhashable()


def _exact(value: Any) -> Any:
    """``value`` told apart from equal values of other types (``1`` and ``True``)."""
    return (type(value), value) if _is_hashable(value) else _UNHASHABLE


def _hashable(value: Any) -> Any:
    """``order_by`` / ``columns`` as a key: strings, and lists/tuples of strings or of
    (column, direction) pairs; anything else (expressions) is not shaped."""
    # str subclasses too: a primary key's names are SQLAlchemy's ``quoted_name``.
    if value is None or isinstance(value, str):
        return (str, str(value)) if value is not None else (None, None)
    if type(value) in (list, tuple):
        items: list[Any] = []
        for item in value:
            if isinstance(item, str) or (
                type(item) is tuple and all(isinstance(part, str) for part in item)
            ):
                items.append(item)
            else:
                return _UNHASHABLE
        return (type(value), tuple(items))
    return _UNHASHABLE


def _is_hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
