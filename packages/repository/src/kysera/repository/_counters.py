"""Atomic counters and compare-and-set: the checks and the SQL pieces they need.

``increment`` writes ``SET col = col + :delta`` so that the database adds to the value it
holds at the moment of the write: concurrent increments never lose one, unlike a
read-modify-write in Python. Deltas are checked here, before any SQL runs, because the
databases disagree on what a bad one does (PostgreSQL refuses an out-of-range bind,
MySQL may clamp or round, SQLite silently turns an integer into a float).

A compare-and-set adds ``AND col = :expected`` for each expected column to the UPDATE's
WHERE clause; the where-dict compiler builds those, so an expected value compares the way
a ``where=`` value does on every dialect (``None`` is ``IS NULL``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, bindparam
from sqlalchemy import types as sqltypes

from kysera.core import InvalidQueryError, ValidationError
from kysera.repository.where import compile_where

__all__ = [
    "check_deltas",
    "expected_condition",
    "increment_params",
    "increment_values",
    "split_increment",
]

# The bind parameter of the i-th delta of an increment (by position: column names may hold
# any character).
_DELTA_PARAM = "kysera_delta_"

# The range of each integer type as the databases declare it (SQLite's INTEGER is always
# 64-bit, but a column declared narrower is held to its declaration everywhere).
_INTEGER_BITS: tuple[tuple[type[sqltypes.TypeEngine[Any]], int], ...] = (
    (sqltypes.SmallInteger, 16),
    (sqltypes.BigInteger, 64),
    (sqltypes.Integer, 32),
)


def split_increment(
    deltas: Mapping[str, Any] | None, keywords: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(deltas, options)`` of an ``increment`` call.

    Deltas come as keyword arguments (``increment(7, views=1)``), or as a mapping
    (``increment(7, {"views": 1}, include_deleted=True)``), in which case the keyword
    arguments are per-call options for plugins.
    """
    if deltas is None:
        return dict(keywords), {}
    if not isinstance(deltas, Mapping):
        raise InvalidQueryError(
            f"deltas must be a mapping of column to number, got {type(deltas).__name__}"
        )
    return dict(deltas), dict(keywords)


def _numeric_kind(column_type: sqltypes.TypeEngine[Any]) -> str | None:
    if isinstance(column_type, sqltypes.Boolean | sqltypes.TypeDecorator):
        return None
    if isinstance(column_type, sqltypes.Integer):
        return "integer"
    if isinstance(column_type, sqltypes.Float):
        return "float"
    if isinstance(column_type, sqltypes.Numeric):
        return "decimal"
    return None


def _integer_bits(column_type: sqltypes.TypeEngine[Any]) -> int:
    for kind, bits in _INTEGER_BITS:
        if isinstance(column_type, kind):
            return bits
    return 64


def _delta_problem(column_type: sqltypes.TypeEngine[Any], kind: str, delta: Any) -> str | None:
    """Why ``delta`` cannot be added to a column of this type, or ``None`` when it can."""
    if isinstance(delta, bool) or not isinstance(delta, int | float | Decimal):
        return f"a delta must be a number, got {type(delta).__name__}"
    if kind == "integer":
        if not isinstance(delta, int):
            return f"an integer column takes an int delta, got {type(delta).__name__}"
        bits = _integer_bits(column_type)
        if not -(2 ** (bits - 1)) <= delta < 2 ** (bits - 1):
            return f"the delta {delta} is outside the column's {bits}-bit range"
        return None
    # Decimal's own test: math.isfinite raises ValueError on a signalling NaN.
    if (isinstance(delta, Decimal) and not delta.is_finite()) or (
        isinstance(delta, float) and not math.isfinite(delta)
    ):
        return f"a delta must be finite, got {delta}"
    if kind == "decimal":
        if isinstance(delta, float):
            return "a decimal column takes an int or Decimal delta, not a float (inexact)"
        return _decimal_problem(column_type, Decimal(delta))
    return None


def _decimal_problem(column_type: sqltypes.TypeEngine[Any], delta: Decimal) -> str | None:
    precision = getattr(column_type, "precision", None)
    scale = getattr(column_type, "scale", None)
    _sign, digits, exponent = delta.normalize().as_tuple()
    assert isinstance(exponent, int)  # finite: checked by the caller
    if scale is not None and -exponent > scale:
        return f"the delta {delta} has more than the column's {scale} decimal places"
    if precision is not None:
        whole_digits = max(len(digits) + exponent, 0) if delta else 0
        if whole_digits > precision - (scale or 0):
            return f"the delta {delta} does not fit NUMERIC({precision}, {scale or 0})"
    return None


def check_deltas(table: Table, key_names: tuple[str, ...], deltas: Mapping[str, Any]) -> None:
    """Check the deltas of an increment before any SQL runs.

    Raises:
        InvalidQueryError: No delta, an unknown column, a key column or a column that is
            not numeric (the message names the columns that can be incremented).
        ValidationError: A delta of the wrong type for its column, not finite, or out of
            the column's range (``errors`` lists each, pydantic-style).
    """
    if not deltas:
        raise InvalidQueryError("increment needs at least one delta, e.g. increment(id, views=1)")
    numeric = [
        column.key
        for column in table.columns
        if column.key not in key_names and _numeric_kind(column.type) is not None
    ]
    errors: list[dict[str, Any]] = []
    for name, delta in deltas.items():
        column = table.c.get(name) if isinstance(name, str) else None
        if column is None or name in key_names or _numeric_kind(column.type) is None:
            if column is None:
                why = f"unknown column {name!r}"
            elif name in key_names:
                why = f"{name!r} is a primary key column"
            else:
                why = f"{name!r} is not a numeric column"
            raise InvalidQueryError(
                f"cannot increment {table.name!r}: {why}; numeric columns: {numeric}"
            )
        kind = _numeric_kind(column.type)
        assert kind is not None
        problem = _delta_problem(column.type, kind, delta)
        if problem is not None:
            errors.append(
                {"type": "increment_delta", "loc": (name,), "msg": problem, "input": delta}
            )
    if errors:
        raise ValidationError(
            f"invalid increment of {table.name!r}: "
            + "; ".join(f"{error['loc'][0]}: {error['msg']}" for error in errors),
            errors=errors,
        )


def increment_values(table: Table, names: tuple[str, ...]) -> dict[str, Any]:
    """``{column: column + :kysera_delta_<i>}`` for checked delta columns: a SET clause of
    one shape, built once and executed with `increment_params`."""
    return {
        name: table.c[name] + bindparam(f"{_DELTA_PARAM}{index}", type_=table.c[name].type)
        for index, name in enumerate(names)
    }


def increment_params(names: tuple[str, ...], deltas: Mapping[str, Any]) -> dict[str, Any]:
    """The bind parameters of ``increment_values(table, names)`` for ``deltas``."""
    return {f"{_DELTA_PARAM}{index}": deltas[name] for index, name in enumerate(names)}


def expected_condition(table: Table, expected: Mapping[str, Any]) -> ColumnElement[bool]:
    """``col = :value AND ...`` for a compare-and-set (``None`` matches NULL).

    Raises:
        InvalidQueryError: ``expected`` is not a non-empty mapping of known columns.
    """
    if not isinstance(expected, Mapping) or not expected:
        raise InvalidQueryError(
            "expected must be a non-empty mapping of column to the value it must hold"
        )
    unknown = [name for name in expected if not isinstance(name, str) or name not in table.c]
    if unknown:
        raise InvalidQueryError(
            f"expected names unknown column(s) {unknown} of {table.name!r}; "
            f"columns: {[column.key for column in table.columns]}"
        )
    parts = [compile_where(table, {name: {"$eq": value}}) for name, value in expected.items()]
    return and_(*(part for part in parts if part is not None))
