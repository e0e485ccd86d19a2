"""Adding timestamp values to INSERT and UPDATE statements.

A value added with ``.values()`` is a bound parameter named after its column, so a value
the caller passes in the execution parameters for that column still wins: the statement
carries the default, the caller's row the override. Values the statement already sets
itself (``update(t).values(updated_at=...)``) are left alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Insert, Update
from sqlalchemy.sql.dml import ValuesBase

from kysera.repository import PluginError
from kysera.timestamps._settings import PLUGIN_NAME, TimestampColumns

__all__ = ["sets_column", "stamp_insert", "stamp_update"]


def _key_of(key: Any) -> Any:
    return key if isinstance(key, str) else getattr(key, "key", None)


def sets_column(statement: ValuesBase, column: Column[Any]) -> bool:
    """Whether the statement's own VALUES / SET clause gives ``column`` a value."""
    # SQLAlchemy keeps .values() in ``_values`` (keys: names or columns); there is no public
    # accessor. Rows of a multi-row VALUES are dicts in ``_multi_values``. SQLAlchemy 2.0 keeps
    # ordered_values() apart, as (key, value) pairs in ``_ordered_values``.
    name = column.key
    for values in (statement._values, getattr(statement, "_ordered_values", None)):
        keys = values or ()
        if any(_key_of(item[0] if isinstance(item, tuple) else item) == name for item in keys):
            return True
    for rows in statement._multi_values:
        for row in rows:
            if isinstance(row, dict) and any(_key_of(key) == name for key in row):
                return True
    return False


def stamp_update(statement: Any, columns: TimestampColumns, instant: datetime) -> Any:
    """Set ``updated_at`` in an UPDATE that does not set it; ``None`` when nothing changes.

    Raises:
        PluginError: The UPDATE uses ``ordered_values()`` without the column (SQLAlchemy
            cannot add a value to it).
    """
    column = columns.updated
    if column is None or not isinstance(statement, Update) or sets_column(statement, column):
        return None
    if _built_with_ordered_values(statement):
        raise PluginError(
            f"an UPDATE of {columns.table.name!r} built with ordered_values() must set "
            f"{column.key!r} itself (or pass timestamps=False): the timestamps plugin cannot "
            "add a value to it",
            plugins=[PLUGIN_NAME],
        )
    return statement.values({column.key: columns.updated_value(instant)})


def stamp_insert(
    statement: Any, columns: TimestampColumns, instant: datetime, *, created_only: bool = False
) -> Any:
    """Give an INSERT the timestamp values it does not set; ``None`` when nothing changes.

    Multi-row VALUES and INSERT ... FROM SELECT run as written: SQLAlchemy cannot add a
    value to them.
    """
    if not isinstance(statement, Insert) or statement._select_names or statement._multi_values:
        return None
    added: dict[str, datetime] = {}
    created, updated = columns.created, columns.updated
    if created is not None and not sets_column(statement, created):
        added[created.key] = columns.created_value(instant)
    if not created_only and updated is not None and not sets_column(statement, updated):
        added[updated.key] = columns.updated_value(instant)
    return statement.values(added) if added else None


def _built_with_ordered_values(statement: Update) -> bool:
    """Whether ``statement`` was built with ``ordered_values()``.

    SQLAlchemy has no public way to ask: the flag is private, ``_maintain_values_ordering`` in
    2.1 and ``_ordered_values`` (the ordered pairs, else ``None``) in 2.0. The ordered-values
    tests fail loudly on either version if an upgrade renames it.
    """
    if hasattr(statement, "_maintain_values_ordering"):
        return bool(statement._maintain_values_ordering)
    return getattr(statement, "_ordered_values", None) is not None
