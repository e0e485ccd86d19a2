"""Conditions selecting rows by primary key, for the statements the mixin builds itself.

Keys take the shapes the repository accepts: a bare value, a one-element tuple or a dict for
a single-column key; a tuple in column order or a dict naming every column for a composite
key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, tuple_

from kysera.core import InvalidQueryError

__all__ = ["key_condition", "key_values", "keys_condition"]


def key_values(table: Table, names: Sequence[str], key: Any) -> tuple[Any, ...]:
    """The key's column values, in the order of ``names``.

    Raises:
        InvalidQueryError: The key has the wrong shape for this table.
    """
    if isinstance(key, Mapping):
        if set(key) != set(names):
            raise InvalidQueryError(
                f"a key of {table.name!r} names exactly the columns {list(names)}, "
                f"got {sorted(map(str, key))}"
            )
        return tuple(key[name] for name in names)
    if isinstance(key, (tuple, list)):
        if len(key) != len(names):
            raise InvalidQueryError(
                f"a key of {table.name!r} has {len(names)} value(s) for {list(names)}, "
                f"got {len(key)}"
            )
        return tuple(key)
    if len(names) > 1:
        raise InvalidQueryError(
            f"{table.name!r} has a composite key {list(names)}: pass a tuple or a dict, got {key!r}"
        )
    if key is None:
        raise InvalidQueryError(f"a key of {table.name!r} cannot be None")
    return (key,)


def key_condition(table: Table, names: Sequence[str], key: Any) -> ColumnElement[bool]:
    """``pk = :value`` (``AND`` over the columns of a composite key)."""
    values = key_values(table, names, key)
    return and_(*(table.c[name] == value for name, value in zip(names, values, strict=True)))


def keys_condition(table: Table, names: Sequence[str], keys: Sequence[Any]) -> ColumnElement[bool]:
    """``pk IN (...)``, a tuple comparison for a composite key."""
    rows = [key_values(table, names, key) for key in keys]
    if len(names) == 1:
        return table.c[names[0]].in_([row[0] for row in rows])
    return tuple_(*(table.c[name] for name in names)).in_(rows)
