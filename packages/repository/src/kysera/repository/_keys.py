"""Primary keys: turn what callers pass as an id into bind parameters and conditions.

A single-column key is passed as the bare value (``7``), a one-element tuple or a dict
(``{"id": 7}``). A composite key is a tuple in column order (``(tenant, 7)``) or a dict
naming every key column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Column, ColumnElement, Table, and_, bindparam, false, or_, tuple_
from sqlalchemy.sql.elements import BindParameter

from kysera.core import InvalidQueryError
from kysera.core._mysql_bytes import UnhexedBytes, is_plain_binary
from kysera.core._stored_time import ShortestTimeText, stored_as_time_text
from kysera.repository._dialects import OnDialect

__all__ = ["PrimaryKey"]

# Bind parameter names that can never clash with a column key used as an UPDATE value.
_PARAM_PREFIX = "kysera_pk_"
_IDS_PARAM = "kysera_ids"


class PrimaryKey:
    """The primary key of one table, with prebuilt conditions for statements built once.

    Attributes:
        table: The table.
        names: The key columns' keys, in order.
        param_names: The bind parameter names `condition` uses, in the same order.
        condition: ``pk_0 = :kysera_pk_0 AND ...``.
        in_condition: ``pk IN (:kysera_ids)`` (a tuple comparison for composite keys),
            an expanding parameter filled by `ids_params`.
    """

    __slots__ = (
        "columns",
        "composite",
        "condition",
        "floors",
        "in_condition",
        "names",
        "param_names",
        "table",
    )

    def __init__(self, table: Table) -> None:
        columns = tuple(table.primary_key.columns)
        if not columns:
            raise InvalidQueryError(f"table {table.name!r} has no primary key")
        self.table = table
        self.columns = columns
        self.names = tuple(column.key for column in columns)
        self.composite = len(columns) > 1
        self.param_names = tuple(f"{_PARAM_PREFIX}{index}" for index in range(len(columns)))
        # Key columns SQLite keeps as datetime/time text: (position, name of the parameter of
        # the value's shortest text), compared with every text form of the instant.
        self.floors: tuple[tuple[int, str], ...] = tuple(
            (index, f"{name}_floor")
            for index, (column, name) in enumerate(zip(columns, self.param_names, strict=True))
            if stored_as_time_text(column.type)
        )
        floor_names = dict(self.floors)
        self.condition: ColumnElement[bool] = and_(
            *(
                _key_equals(column, name, floor_names.get(index))
                for index, (column, name) in enumerate(zip(columns, self.param_names, strict=True))
            )
        )
        ids: BindParameter[Any] = bindparam(_IDS_PARAM, expanding=True)
        ids_in = columns[0].in_(ids)
        self.in_condition: ColumnElement[bool] = (
            tuple_(*columns).in_(ids) if self.composite else ids_in
        )
        if not self.composite and is_plain_binary(columns[0].type):
            # MySQL/MariaDB: each key as UNHEX(:hex) (aiomysql cannot send bytes).
            hexed = bindparam(_IDS_PARAM, expanding=True, type_=UnhexedBytes())
            self.in_condition = OnDialect(self.in_condition, "mysql", columns[0].in_(hexed))
        elif not self.composite and self.floors:
            # SQLite: each key in every text form of its instant (as where-dict $in does).
            column = columns[0]
            forms = [
                column.in_(bindparam(f"{_IDS_PARAM}_{digits}", expanding=True, type_=form))
                for digits, form in (
                    ("s", ShortestTimeText(column.type)),
                    ("0", ShortestTimeText(column.type, digits=0)),
                    ("3", ShortestTimeText(column.type, digits=3)),
                )
            ]
            self.in_condition = OnDialect(self.in_condition, "sqlite", or_(ids_in, *forms))

    def values(self, key: Any) -> tuple[Any, ...]:
        """Return the key's column values, in column order.

        Raises:
            InvalidQueryError: The key has the wrong shape for this table.
        """
        if isinstance(key, Mapping):
            if set(key) != set(self.names):
                raise InvalidQueryError(
                    f"a key of {self.table.name!r} names exactly the columns "
                    f"{list(self.names)}, got {sorted(map(str, key))}"
                )
            return tuple(key[name] for name in self.names)
        if isinstance(key, (tuple, list)):
            if len(key) != len(self.names):
                raise InvalidQueryError(
                    f"a key of {self.table.name!r} has {len(self.names)} value(s) "
                    f"for {list(self.names)}, got {len(key)}"
                )
            return tuple(key)
        if self.composite:
            raise InvalidQueryError(
                f"{self.table.name!r} has a composite key {list(self.names)}: "
                f"pass a tuple or a dict, got {key!r}"
            )
        if key is None:
            raise InvalidQueryError(f"a key of {self.table.name!r} cannot be None")
        return (key,)

    def params(self, key: Any) -> dict[str, Any]:
        """Return the bind parameters of `condition` for one key."""
        if self.floors:
            values = self.values(key)
            found = dict(zip(self.param_names, values, strict=True))
            for index, name in self.floors:
                found[name] = values[index]
            return found
        if not self.composite and not isinstance(key, (Mapping, tuple, list)) and key is not None:
            return {self.param_names[0]: key}
        return dict(zip(self.param_names, self.values(key), strict=True))

    def ids_params(self, keys: Iterable[Any]) -> dict[str, Any]:
        """Return the bind parameters of `in_condition` for several keys."""
        if self.composite:
            return {_IDS_PARAM: [self.values(key) for key in keys]}
        values = [self.values(key)[0] for key in keys]
        if self.floors:
            return {_IDS_PARAM: values, **{f"{_IDS_PARAM}_{form}": values for form in "s03"}}
        return {_IDS_PARAM: values}

    def of_row(self, row: Mapping[str, Any]) -> Any:
        """Return a row's key: the bare value, or a tuple for a composite key."""
        if self.composite:
            return tuple(row[name] for name in self.names)
        return row[self.names[0]]

    def loose(self, key: Any) -> tuple[str, ...]:
        """Return a key as a database comparing loosely would: case-folded text without
        trailing spaces (case-insensitive collations; MySQL's PAD SPACE comparisons)."""
        return tuple(str(value).rstrip(" ").casefold() for value in self.values(key))

    def normalize(self, key: Any) -> Any:
        """Return a key in the form `of_row` gives (for comparing keys)."""
        values = self.values(key)
        return values if self.composite else values[0]

    def after_update(self, key: Any, values: Mapping[str, Any]) -> Any:
        """Return the key of the row ``key`` once ``values`` are written to it (a tuple of
        column values; ``values`` may set key columns)."""
        current = self.values(key)
        if not any(name in values for name in self.names):
            return current
        return tuple(
            values.get(name, value) for name, value in zip(self.names, current, strict=True)
        )

    def where_values(self, values: Sequence[Any]) -> ColumnElement[bool]:
        """A literal-bound condition for one key (for statements built per call)."""
        return and_(*(column == value for column, value in zip(self.columns, values, strict=True)))

    def where_keys(self, keys: Iterable[Any]) -> ColumnElement[bool]:
        """A literal-bound ``pk IN (...)`` for several keys; matches nothing for no keys."""
        rows = [self.values(key) for key in keys]
        if not rows:
            return false()
        if self.composite:
            return tuple_(*self.columns).in_(rows)
        return self.columns[0].in_([row[0] for row in rows])


def _key_equals(column: Column[Any], name: str, floor: str | None) -> ColumnElement[bool]:
    """``column = :name``; on MySQL for a binary column ``column = UNHEX(:name)``; on SQLite,
    for a datetime/time column, every text form of the value (see kysera.core._stored_time):
    rows written by ``CURRENT_TIMESTAMP`` have none of SQLAlchemy's fraction digits."""
    value = bindparam(name, type_=column.type)
    if is_plain_binary(column.type):
        # MySQL/MariaDB: UNHEX(:hex), so that aiomysql, which cannot send bytes, finds it.
        return OnDialect(column == value, "mysql", column == bindparam(name, type_=UnhexedBytes()))
    if floor is None:
        return column == value
    shortest = bindparam(floor, type_=ShortestTimeText(column.type))
    return OnDialect(column == value, "sqlite", and_(column >= shortest, column <= value))
