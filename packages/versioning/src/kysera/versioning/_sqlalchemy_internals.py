"""Every private SQLAlchemy attribute kysera-versioning reads or writes, in one place.

- `sets_column`: what a statement's own VALUES / SET clause gives a value (``_values``, and
  2.0's ``_ordered_values``; there is no public accessor).
- `is_single_values_insert`: an INSERT ... VALUES of one row (``_select_names``,
  ``_multi_values``).
- `bump_upsert`: adding ``version = version + 1`` to the update branch of a native upsert.

The plugin's tests exercise each of them on SQLAlchemy 2.1 and, in CI's low leg, on the
oldest 2.0 the packages allow; a rename fails them loudly (AttributeError), never silently.

SQLAlchemy has no public way to extend an INSERT's ``ON CONFLICT DO UPDATE`` /
``ON DUPLICATE KEY UPDATE`` clause once built (2.0 refuses a second one), so this copies the
statement and its clause and extends the copy's assignments: ``update_values_to_set``
(PostgreSQL, SQLite; a dict in 2.1, a list of pairs in 2.0) or ``update`` (MySQL). Both are
part of the clause's cache key, so the compiled-statement cache tells the copies apart. The
upsert tests fail loudly on either version if an upgrade renames them.
"""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import Column, Insert, literal_column

__all__ = ["bump_upsert", "is_single_values_insert", "sets_column"]


def sets_column(statement: Any, name: str) -> bool:
    """Whether the statement's own VALUES / SET clause gives column ``name`` a value."""
    for values in (statement._values, getattr(statement, "_ordered_values", None)):
        for item in values or ():
            key = item[0] if isinstance(item, tuple) else item
            if _key_name(key) == name:
                return True
    return False


def is_single_values_insert(statement: Insert) -> bool:
    """Whether ``statement`` is an INSERT of VALUES (not FROM SELECT, not multi-VALUES)."""
    return not statement._select_names and not statement._multi_values


def _key_name(key: Any) -> Any:
    return key if isinstance(key, str) else getattr(key, "key", None)


def bump_upsert(statement: Insert, column: Column[Any]) -> Insert | None:
    """A copy of ``statement`` whose upsert branch increments ``column``; ``None`` when it is
    not an upsert or its update branch already sets the column."""
    clause = getattr(statement, "_post_values_clause", None)
    if clause is None:
        return None
    bumped = copy.copy(clause)
    name = column.key
    # A literal, not a bound 1: MySQL drivers rewrite an executemany INSERT into one
    # multi-row VALUES and cannot place a parameter of the ON DUPLICATE KEY UPDATE part.
    increment = column + literal_column("1")
    if hasattr(clause, "update_values_to_set"):  # PostgreSQL, SQLite
        assignments = clause.update_values_to_set
        if isinstance(assignments, dict):
            if any(_key_name(key) == name for key in assignments):
                return None
            bumped.update_values_to_set = {**assignments, column: increment}
        else:
            if any(_key_name(key) == name for key, _ in assignments):
                return None
            bumped.update_values_to_set = [*assignments, (column, increment)]
    elif isinstance(getattr(clause, "update", None), dict):  # MySQL / MariaDB
        if name in clause.update:
            return None
        bumped.update = {**clause.update, name: increment}
        if clause._parameter_ordering is not None:
            bumped._parameter_ordering = [*clause._parameter_ordering, name]
    else:
        return None
    copied = statement._generate()
    copied._post_values_clause = bumped
    return copied
