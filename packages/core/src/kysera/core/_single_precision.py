"""Floats compared with columns the database stores in single precision.

PostgreSQL's ``real`` (SQLAlchemy ``REAL``, ``Float(precision<=24)``) and MySQL/MariaDB's
``FLOAT`` (SQLAlchemy ``Float()``, ``Float(precision<=24)``) keep 4 bytes: ``1.1`` is stored
as 1.10000002384..., and a comparison with the 8-byte ``1.1`` a caller binds promotes the
column to double precision and never matches. Rounding the bound value to single precision
first, as the stored one was, makes the value a caller wrote find its row again (PostgreSQL
does the same when it infers a parameter's type as ``real``).
"""

from __future__ import annotations

import struct
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

__all__ = ["SinglePrecisionFloat", "compared_type", "single_precision_dialects"]

_SINGLE = struct.Struct("f")


def single_precision_dialects(column_type: TypeEngine[Any]) -> frozenset[str]:
    """The dialects that store a column of this type in 4 bytes."""
    if not isinstance(column_type, sa.Float) or isinstance(column_type, sa.Double):
        return frozenset()
    if isinstance(column_type, sa.REAL):  # MySQL's REAL is DOUBLE; SQLite's is 8 bytes
        return frozenset({"postgresql"})
    precision = column_type.precision
    if precision is None:  # FLOAT: double on PostgreSQL, single on MySQL/MariaDB
        return frozenset({"mysql"})
    return frozenset({"postgresql", "mysql"}) if precision <= 24 else frozenset()


class SinglePrecisionFloat(sa.TypeDecorator[Any]):
    """A bound number, rounded to single precision on the dialects in ``single_on``."""

    impl = sa.Float
    cache_ok = True

    def __init__(self, single_on: frozenset[str]) -> None:
        super().__init__()
        self.single_on = single_on

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        # Any number: the database stored an int or a Decimal written here rounded too.
        if dialect.name not in self.single_on or not isinstance(value, (int, float, Decimal)):
            return value
        if isinstance(value, bool):
            return value
        try:
            rounded: float = _SINGLE.unpack(_SINGLE.pack(float(value)))[0]
        except OverflowError:  # beyond single precision: no stored value equals it
            return value
        return rounded


def compared_type(column_type: TypeEngine[Any]) -> TypeEngine[Any]:
    """The type to bind a value compared with a column of ``column_type``."""
    single_on = single_precision_dialects(column_type)
    return SinglePrecisionFloat(single_on) if single_on else column_type
