"""Primary-key conditions for the statements the soft-delete methods build per call.

Keys take the shapes the repository accepts: a bare value for a single-column key, or a
tuple (column order) / dict (naming every key column) for any key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, false, tuple_

from kysera.core import InvalidQueryError

__all__ = ["key_condition", "keys_condition"]


def _values(table: Table, names: Sequence[str], key: Any) -> tuple[Any, ...]:
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
    """``pk = :value`` (every key column) for one key."""
    values = _values(table, names, key)
    return and_(*(table.c[name] == value for name, value in zip(names, values, strict=True)))


def keys_condition(table: Table, names: Sequence[str], keys: Iterable[Any]) -> ColumnElement[bool]:
    """``pk IN (...)`` (a tuple comparison for composite keys) for several keys."""
    values = [_values(table, names, key) for key in keys]
    if not values:
        return false()
    if len(names) == 1:
        return table.c[names[0]].in_([value[0] for value in values])
    return tuple_(*(table.c[name] for name in names)).in_(values)
