"""Comparing bound datetimes and times with the text SQLite stores for them.

SQLite has no datetime type: SQLAlchemy stores a ``DateTime`` as the text
``YYYY-MM-DD HH:MM:SS.ffffff`` and a ``Time`` as ``HH:MM:SS.ffffff``, and compares them as
text. Other programs write the same instants in shorter forms: ``CURRENT_TIMESTAMP`` and
``DATETIME('now')`` give ``'2005-05-24 22:53:30'`` (no fraction), ``STRFTIME('%f')`` three
digits. Text comparison then says ``'...:30' < '...:30.000000'``, so the row never equals
the bound value and ranges drop it.

Every form of one instant lies, as text, between its shortest form (no trailing zeros in
the fraction, no fraction at all when it is zero, the date alone at midnight) and
SQLAlchemy's full form, and every other instant lies outside that span in the same order as
the instants. (ISO 8601's ``'T'`` separator sorts after every space-separated form, so
``'2005-05-24T22:53:30'`` is not one of the forms matched.) So on SQLite a
comparison with ``value`` becomes:

======== ===================================
``=``    ``col BETWEEN shortest AND full``
``>``    ``col > full``
``>=``   ``col >= shortest``
``<``    ``col < shortest``
``<=``   ``col <= full``
======== ===================================

which matches every form of the instant and keeps a plain index on the column usable.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import String
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.types import Date, DateTime, Time, TypeDecorator, TypeEngine

__all__ = [
    "ShortestTimeText",
    "full_time_text",
    "in_utc_for",
    "shortest_time_text",
    "stored_as_time_text",
]

_DEFAULT_FORMATS = {
    sqlite.DATETIME: sqlite.DATETIME._storage_format,
    sqlite.TIME: sqlite.TIME._storage_format,
}


def _base_type(column_type: TypeEngine[Any]) -> TypeEngine[Any]:
    while isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    return column_type


def stored_as_time_text(column_type: TypeEngine[Any]) -> bool:
    """Whether SQLite stores values of ``column_type`` in SQLAlchemy's default datetime or
    time text form (the forms `ShortestTimeText` knows); a custom ``storage_format`` is
    compared as it stands."""
    base = _base_type(column_type)
    if isinstance(base, Date) and not isinstance(base, DateTime):
        return False
    if not isinstance(base, (DateTime, Time)):
        return False
    for kind, default in _DEFAULT_FORMATS.items():
        if isinstance(base, kind):
            return bool(getattr(base, "_storage_format", default) == default)
    return True


def in_utc_for(column_type: TypeEngine[Any], value: Any) -> Any:
    """``value`` as Kysera binds it to a column of ``column_type``: an aware datetime bound
    to a plain ``DateTime`` becomes UTC, naive for ``timezone=False`` (PostgreSQL's
    ``TIMESTAMP WITHOUT TIME ZONE``, which refuses aware values, and MySQL/SQLite, which
    would drop the offset) and aware for ``timezone=True`` (an instant everywhere).

    One rule on every dialect: a where-dict means the same instant everywhere. Every other
    value (and every value of a `TypeDecorator` column, whose own conversion rules) is
    returned unchanged.
    """
    if (
        isinstance(value, dt.datetime)
        and value.tzinfo is not None
        and isinstance(column_type, DateTime)  # a TypeDecorator is no DateTime
    ):
        value = value.astimezone(dt.UTC)
        return value if column_type.timezone else value.replace(tzinfo=None)
    return value


def full_time_text(value: dt.datetime | dt.time) -> str:
    """SQLAlchemy's SQLite text for ``value`` (six fraction digits)."""
    clock = f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}"
    if isinstance(value, dt.datetime):
        return f"{value.year:04d}-{value.month:02d}-{value.day:02d} {clock}"
    return clock


def shortest_time_text(value: dt.datetime | dt.time) -> str:
    """The shortest text of ``value``: no trailing zeros in the fraction, no fraction when
    it is zero (``CURRENT_TIMESTAMP``'s form), and the date alone for a datetime at midnight
    (``DATE('now')``'s form, which sorts just before ``'... 00:00:00'``)."""
    text = full_time_text(value)
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return text[:10]
    return text.rstrip("0").rstrip(".")


class ShortestTimeText(TypeDecorator[Any]):
    """Binds a datetime or time as `shortest_time_text` (for SQLite comparisons).

    Args:
        source: The column's type; a `TypeDecorator` there converts the value first (e.g.
            a UTC type turning an aware value into a UTC reading), as it does for writes.
        digits: Bind the form with this many fraction digits instead (0: none, as
            ``CURRENT_TIMESTAMP`` writes; 3: as SQLite's ``STRFTIME('%f')`` writes), for a
            value that has one; an ``IN`` list names each form it matches.
    """

    impl = String
    cache_ok = True

    def __init__(self, source: TypeEngine[Any] | None = None, digits: int | None = None) -> None:
        super().__init__()
        self.source = source
        self.digits = digits

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        source = self.source
        if isinstance(source, TypeDecorator):
            value = source.process_bind_param(value, dialect)
        if value is None:
            return None
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            # What SQLAlchemy's SQLite type stores for an aware value: the wall-clock reading.
            value = value.replace(tzinfo=None)
        if isinstance(value, (dt.datetime, dt.time)):
            digits = self.digits
            if digits is not None and value.microsecond % 10 ** (6 - digits) == 0:
                return full_time_text(value)[: -6 + digits - (digits == 0)]
            return shortest_time_text(value)
        # A decorator that stores something else: compare what it stores, as it is.
        return value  # type: ignore[no-any-return]
