"""Primary keys: turn what callers pass as an id into bind parameters and conditions.

A single-column key is passed as the bare value (``7``), a one-element tuple or a dict
(``{"id": 7}``). A composite key is a tuple in column order (``(tenant, 7)``) or a dict
naming every key column.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Column,
    ColumnElement,
    Integer,
    SmallInteger,
    Table,
    and_,
    any_,
    bindparam,
    false,
    or_,
    tuple_,
)
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.types import TypeEngine

from kysera.core import InvalidQueryError
from kysera.core._mysql_bytes import UnhexedBytes, is_plain_binary
from kysera.core._stored_time import ShortestTimeText, stored_as_time_text
from kysera.repository._dialects import OnDialect
from kysera.repository._messages import short_repr
from kysera.repository.where import column_value

__all__ = ["IDS_PARAM", "MAX_KEY_PARAMETERS", "PrimaryKey"]

MAX_KEY_PARAMETERS = 10_000
"""The most key values one statement binds (well under every dialect's limit, leaving room
for the other parameters of the statement)."""

# Bind parameter names that can never clash with a column key used as an UPDATE value.
_PARAM_PREFIX = "kysera_pk_"
IDS_PARAM = "kysera_ids"


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
        "_checks",
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
        self._checks = tuple(_key_check(table, column) for column in columns)
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
        self.in_condition: ColumnElement[bool]
        if self.composite:
            ids: BindParameter[Any] = bindparam(IDS_PARAM, expanding=True)
            self.in_condition = tuple_(*columns).in_(ids)
        else:
            self.in_condition = _one_column_in(columns[0], IDS_PARAM, unique=False)
        if not self.composite and is_plain_binary(columns[0].type):
            # MySQL/MariaDB: each key as UNHEX(:hex) (aiomysql cannot send bytes).
            hexed = bindparam(IDS_PARAM, expanding=True, type_=UnhexedBytes())
            self.in_condition = OnDialect(self.in_condition, "mysql", columns[0].in_(hexed))
        elif not self.composite and self.floors:
            # SQLite: each key in every text form of its instant (as where-dict $in does).
            column = columns[0]
            forms = [
                column.in_(bindparam(f"{IDS_PARAM}_{form}", expanding=True, type_=text))
                for form, text in (
                    ("shortest", ShortestTimeText(column.type)),
                    ("seconds", ShortestTimeText(column.type, digits=0)),
                    ("millis", ShortestTimeText(column.type, digits=3)),
                )
            ]
            ids_in = column.in_(bindparam(IDS_PARAM, expanding=True))
            self.in_condition = OnDialect(self.in_condition, "sqlite", or_(ids_in, *forms))

    def key_list(self, keys: Any) -> list[Any]:
        """Return the keys of a many-keys argument (``find_by_ids``, ``delete_many``) as a list.

        Raises:
            InvalidQueryError: ``keys`` is not a collection of keys (a bare value, a string or
                a dict, which would otherwise be taken apart character by character or by
                its column names).
        """
        if not isinstance(keys, Iterable) or isinstance(keys, (str, bytes, bytearray, Mapping)):
            raise InvalidQueryError(
                f"keys of {self.table.name!r} must be a list of keys, not {type(keys).__name__}"
            )
        return list(keys)

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
            raw = tuple(key[name] for name in self.names)
        elif isinstance(key, (tuple, list)):
            if len(key) != len(self.names):
                raise InvalidQueryError(
                    f"a key of {self.table.name!r} has {len(self.names)} value(s) "
                    f"for {list(self.names)}, got {len(key)}"
                )
            raw = tuple(key)
        elif self.composite:
            raise InvalidQueryError(
                f"{self.table.name!r} has a composite key {list(self.names)}: "
                f"pass a tuple or a dict, got {short_repr(key)}"
            )
        else:
            return (self._checks[0](key),)
        # Every value is checked against its column before it is bound (a string for an
        # integer key never reaches the database).
        return tuple(check(value) for check, value in zip(self._checks, raw, strict=True))

    def params(self, key: Any) -> dict[str, Any]:
        """Return the bind parameters of `condition` for one key."""
        if self.floors:
            values = self.values(key)
            found = dict(zip(self.param_names, values, strict=True))
            for index, name in self.floors:
                found[name] = values[index]
            return found
        if not self.composite and not isinstance(key, (Mapping, tuple, list)):
            return {self.param_names[0]: self._checks[0](key)}
        return dict(zip(self.param_names, self.values(key), strict=True))

    def batches(self, keys: Sequence[Any], dialect: str) -> list[Sequence[Any]]:
        """Split ``keys`` so that no statement of `in_condition` passes a bind-parameter limit.

        PostgreSQL takes a single-column key list as one array parameter, whatever its
        length; otherwise each batch binds at most `MAX_KEY_PARAMETERS` values (PostgreSQL
        allows 32,767 per statement, SQLite 32,766, MySQL 65,535).
        """
        if dialect == "postgresql" and not self.composite:
            return [keys]
        # A SQLite datetime key binds its list once per text form (see in_condition).
        forms = 4 if self.floors and not self.composite else 1
        size = max(1, MAX_KEY_PARAMETERS // (len(self.columns) * forms))
        return [keys[start : start + size] for start in range(0, len(keys), size)] or [keys]

    def ids_params(self, keys: Iterable[Any]) -> dict[str, Any]:
        """Return the bind parameters of `in_condition` for several keys."""
        if self.composite:
            return self.batch_params([self.values(key) for key in keys])
        return self.batch_params([self.values(key)[0] for key in keys])

    def batch_params(self, values: Sequence[Any]) -> dict[str, Any]:
        """Return the bind parameters of `in_condition` for checked key values (such as one
        of `batches` of ``ids_params(keys)[IDS_PARAM]``)."""
        if self.floors and not self.composite:
            # SQLite datetime keys: the same values bound in each text form (see in_condition).
            # No digit suffixes: SQLAlchemy names an expanded list's items <name>_1, <name>_2...
            forms = ("shortest", "seconds", "millis")
            return {IDS_PARAM: values, **{f"{IDS_PARAM}_{form}": values for form in forms}}
        return {IDS_PARAM: values}

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
        values = [row[0] for row in rows]
        # Plain integers (checked above) may be written into the SQL text: an int renders as
        # digits only, so a long list binds no parameters at all on SQLite and MySQL.
        literal = len(values) > MAX_KEY_PARAMETERS and all(type(v) is int for v in values)
        return _one_column_in(
            self.columns[0], "kysera_keys", unique=True, values=values, literal=literal
        )


_SIGNED_64_BIT = range(-(2**63), 2**63)


def _key_check(table: Table, column: Column[Any]) -> Callable[[Any], Any]:
    """The check of one key column's values: `column_value`, with a shortcut for the common
    case of a plain integer (``find_by_id`` is the hottest path of a repository)."""
    path = f"a key of {table.name!r} ({column.key})"

    def check(value: Any) -> Any:
        if value is None:
            raise InvalidQueryError(f"{path} cannot be None")
        return column_value(column, value, path)

    if type(column.type) is not Integer:
        return check

    def check_integer(value: Any) -> Any:
        if type(value) is int and value in _SIGNED_64_BIT:
            return value
        return check(value)

    return check_integer


def _bind_type(column: Column[Any]) -> TypeEngine[Any]:
    """The type a key value is bound as: ``BIGINT`` for a narrower integer column.

    Any 64-bit key is then a valid parameter on every database (PostgreSQL refuses 2**40 as
    an ``int4`` parameter, SQLite's INTEGER keys are 64-bit): a key beyond the column's range
    simply matches no row, and PostgreSQL compares ``int4 = int8`` with the index.
    """
    if type(column.type) in (Integer, SmallInteger):
        return BigInteger()
    return column.type


def _one_column_in(
    column: Column[Any],
    name: str,
    *,
    unique: bool,
    values: Any = None,
    literal: bool = False,
) -> ColumnElement[bool]:
    """``column IN (...)``, sent to PostgreSQL as ``column = ANY(:array)``: one parameter
    for any number of keys (PostgreSQL's limit is 32,767 parameters per statement)."""
    bind_type = _bind_type(column)
    listed = column.in_(
        bindparam(
            name, values, expanding=True, type_=bind_type, unique=unique, literal_execute=literal
        )
    )
    array = bindparam(name, values, type_=ARRAY(bind_type), unique=unique)
    return OnDialect(listed, "postgresql", column == any_(array))


def _key_equals(column: Column[Any], name: str, floor: str | None) -> ColumnElement[bool]:
    """``column = :name``; on MySQL for a binary column ``column = UNHEX(:name)``; on SQLite,
    for a datetime/time column, every text form of the value (see kysera.core._stored_time):
    rows written by ``CURRENT_TIMESTAMP`` have none of SQLAlchemy's fraction digits."""
    value = bindparam(name, type_=_bind_type(column))
    if is_plain_binary(column.type):
        # MySQL/MariaDB: UNHEX(:hex), so that aiomysql, which cannot send bytes, finds it.
        return OnDialect(column == value, "mysql", column == bindparam(name, type_=UnhexedBytes()))
    if floor is None:
        return column == value
    shortest = bindparam(floor, type_=ShortestTimeText(column.type))
    return OnDialect(column == value, "sqlite", and_(column >= shortest, column <= value))
