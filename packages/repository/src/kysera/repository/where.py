"""The where-dialect: Mongo-style filter dicts compiled to SQLAlchemy boolean expressions.

``{"age": {"$gte": 18}, "status": {"$in": ["a", "b"]}, "$or": [{...}, {...}]}`` becomes
``age >= :p1 AND status IN (:p2, :p3) AND (... OR ...)``. Column names are checked against
``table.c`` and every value becomes a bound parameter, so nothing a caller passes ever reaches
the SQL text. The full reference, with the NULL semantics, is ``docs/where.md``.

NULL semantics in one sentence: a condition never matches NULL unless it asks for NULL, and
``$ne``/``$nin``/``$not`` are exact complements, so ``{"x": {"$ne": 1}}`` matches rows where
``x`` is NULL (``x != 1 OR x IS NULL``), as in MongoDB.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import operator
import uuid
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, Final, TypeAlias

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

from kysera.core._mysql_bytes import UnhexedBytes, is_plain_binary
from kysera.core._single_precision import compared_type
from kysera.core._stored_time import ShortestTimeText, in_utc_for, stored_as_time_text
from kysera.core.errors import InvalidQueryError
from kysera.repository._dialects import OnDialect
from kysera.repository._messages import describe, short_repr, unknown_name
from kysera.repository._patterns import glob_literal, like_pattern_to_glob

__all__ = ["WhereSpec", "compile_where"]

WhereSpec: TypeAlias = Mapping[str, Any] | sa.ColumnElement[bool] | None
"""What ``where=`` accepts: a where-dict, a SQLAlchemy boolean expression, or ``None``."""

MAX_DEPTH: Final = 32
"""How deeply ``$and``/``$or``/``$not`` may nest; deeper input is rejected, not recursed into."""

LIKE_ESCAPE: Final = "\\"
"""The escape character of ``$like``/``$ilike`` patterns on every dialect (PostgreSQL's and
MySQL's default; SQLite has none unless told, so Kysera always says ``ESCAPE '\\'``)."""

LITERAL_INTEGERS_ABOVE: Final = 10_000
"""``$in``/``$nin`` lists of integers longer than this are written into the SQL text outside
PostgreSQL (which takes any list as one array parameter), never as one parameter each."""

LOGICAL_OPERATORS: Final = ("$and", "$not", "$or")
COMPARISON_OPERATORS: Final = (
    "$between",
    "$contains",
    "$endswith",
    "$eq",
    "$gt",
    "$gte",
    "$ilike",
    "$in",
    "$is_null",
    "$like",
    "$lt",
    "$lte",
    "$ne",
    "$nin",
    "$not",
    "$overlap",
    "$startswith",
)


def compile_where(
    table: sa.Table, where: Mapping[str, Any] | sa.ColumnElement[bool] | None
) -> sa.ColumnElement[bool] | None:
    """Compile a where-dict into a SQLAlchemy boolean expression over ``table``.

    Args:
        table: The table whose columns the dict may name (by column key).
        where: A where-dict such as ``{"age": {"$gte": 18}, "$or": [...]}``, a SQLAlchemy
            boolean expression (returned unchanged), or ``None``.

    Returns:
        The expression for a ``WHERE`` clause, or ``None`` when ``where`` is ``None`` or an
        empty dict (no filter).

    Raises:
        InvalidQueryError: An unknown column or operator (the message lists the valid ones), a
            value of the wrong type for its column or operator, or a malformed dict.

    Example:
        >>> import sqlalchemy as sa
        >>> users = sa.Table(
        ...     "users", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
        ...     sa.Column("age", sa.Integer)
        ... )
        >>> print(compile_where(users, {"age": {"$gte": 18}}))
        users.age >= :age_1
    """
    if where is None:
        return None
    if isinstance(where, sa.ColumnElement):
        return where
    if not isinstance(where, Mapping):
        raise InvalidQueryError(
            f"where must be a dict or a SQLAlchemy boolean expression, not {type(where).__name__}"
        )
    if not where:
        return None
    return _WhereCompiler(table).document(where, negate=False, path="where", depth=0)


class _WhereCompiler:
    """Compiles one where-dict; ``negate=True`` builds the exact complement of a node."""

    __slots__ = ("_table",)

    def __init__(self, table: sa.Table) -> None:
        self._table = table

    # -- documents and logical operators -------------------------------------------------

    def document(
        self, document: Any, *, negate: bool, path: str, depth: int
    ) -> sa.ColumnElement[bool]:
        if isinstance(document, sa.ColumnElement):
            return sa.not_(document) if negate else document
        if not isinstance(document, Mapping):
            raise InvalidQueryError(
                f"{path}: expected a dict of conditions, not {describe(document)}"
            )
        if depth > MAX_DEPTH:
            raise InvalidQueryError(f"{path}: conditions nest deeper than {MAX_DEPTH} levels")
        parts: list[sa.ColumnElement[bool]] = []
        for key, value in document.items():
            if not isinstance(key, str):
                raise InvalidQueryError(
                    f"{path}: keys must be column names or operators, not {describe(key)}"
                )
            here = f"{path}[{short_repr(key)}]"
            if key.startswith("$"):
                parts.append(self._logical(key, value, negate=negate, path=here, depth=depth))
            else:
                column = self._column(key, here)
                parts.append(self._field(column, value, negate=negate, path=here, depth=depth))
        # A document is the AND of its entries; its complement is the OR of their complements.
        return _or(parts) if negate else _and(parts)

    def _logical(
        self, name: str, value: Any, *, negate: bool, path: str, depth: int
    ) -> sa.ColumnElement[bool]:
        if name == "$not":
            return self.document(value, negate=not negate, path=path, depth=depth + 1)
        if name not in ("$and", "$or"):
            raise InvalidQueryError(
                f"{path}: "
                + unknown_name("operator", name, LOGICAL_OPERATORS, "next to column names")
                + "; comparison operators go inside a column, e.g. {'age': {'$gt': 1}}"
            )
        items = _list_of(value, path, "a list of condition dicts")
        parts = [
            self.document(item, negate=negate, path=f"{path}[{index}]", depth=depth + 1)
            for index, item in enumerate(items)
        ]
        # De Morgan: NOT (a AND b) = NOT a OR NOT b, and the other way round.
        if (name == "$and") != negate:
            return _and(parts)
        return _or(parts)

    def _column(self, key: str, path: str) -> sa.Column[Any]:
        column = self._table.c.get(key)
        if column is None:
            raise InvalidQueryError(
                f"{path}: "
                + unknown_name("column", key, self._table.c.keys(), f"for table {self._table.name}")
            )
        return column

    # -- one column ------------------------------------------------------------------------

    def _field(
        self, column: sa.Column[Any], value: Any, *, negate: bool, path: str, depth: int
    ) -> sa.ColumnElement[bool]:
        if not isinstance(value, Mapping):
            return _Condition.equal(column, value, path).render(negate=negate)
        if not value:
            raise InvalidQueryError(f"{path}: an empty operator dict; use e.g. {{'$eq': value}}")
        if depth > MAX_DEPTH:
            raise InvalidQueryError(f"{path}: conditions nest deeper than {MAX_DEPTH} levels")
        parts: list[sa.ColumnElement[bool]] = []
        for name, operand in value.items():
            here = f"{path}[{short_repr(name)}]"
            if name not in COMPARISON_OPERATORS:
                not_operator = isinstance(name, str) and not name.startswith("$")
                raise InvalidQueryError(
                    f"{here}: "
                    + ("a dict under a column holds operators; " if not_operator else "")
                    + unknown_name(
                        "operator", name, COMPARISON_OPERATORS, f"for column {column.key!r}"
                    )
                )
            if name == "$not":
                parts.append(
                    self._field(column, operand, negate=not negate, path=here, depth=depth + 1)
                )
            else:
                parts.append(_OPERATORS[name](column, operand, here).render(negate=negate))
        return _or(parts) if negate else _and(parts)


class _Condition:
    """One comparison on one column, with its NULL behaviour made explicit.

    ``strict`` is an expression that is NULL (unknown) whenever the column is NULL, or ``None``
    for "no non-NULL value matches"; ``matches_null`` says whether NULL itself matches. From
    these two facts both the condition and its exact complement follow without three-valued
    surprises. ``inverted`` marks the complement (``$ne``, ``$nin``, ``$is_null: false``).
    """

    __slots__ = ("column", "inverted", "matches_null", "strict")

    def __init__(
        self,
        column: sa.Column[Any],
        strict: sa.ColumnElement[bool] | None,
        *,
        matches_null: bool = False,
        inverted: bool = False,
    ) -> None:
        self.column = column
        self.strict = strict
        self.matches_null = matches_null
        self.inverted = inverted

    def complement(self) -> _Condition:
        """The condition that matches exactly the rows this one does not."""
        return _Condition(
            self.column, self.strict, matches_null=self.matches_null, inverted=not self.inverted
        )

    @classmethod
    def equal(cls, column: sa.Column[Any], value: Any, path: str) -> _Condition:
        if value is None:
            return cls(column, None, matches_null=True)
        value = _value(column, value, path)
        strict: sa.ColumnElement[bool] = column == _bound(column, value)
        if _is_time_text(column, value):
            # SQLite: every text form of the instant (see kysera.core._stored_time).
            strict = OnDialect(
                strict, "sqlite", sa.and_(column >= _shortest(column, value), column <= value)
            )
        elif is_plain_binary(column.type):
            strict = OnDialect(strict, "mysql", column == _hexed(column, value))
        return cls(column, strict)

    def render(self, *, negate: bool) -> sa.ColumnElement[bool]:
        negate = negate != self.inverted
        column, strict = self.column, self.strict
        if strict is None:
            if self.matches_null:
                return column.is_not(None) if negate else column.is_(None)
            return sa.true() if negate else sa.false()
        if not negate:
            return sa.or_(strict, column.is_(None)) if self.matches_null else strict
        if self.matches_null or not column.nullable:
            # NOT strict is NULL (so not matched) exactly for the NULL rows, which the
            # positive condition matched: the complement is right as it stands.
            return sa.not_(strict)
        return sa.or_(sa.not_(strict), column.is_(None))


# -- operators ---------------------------------------------------------------------------


def _eq(column: sa.Column[Any], operand: Any, path: str) -> _Condition:
    return _Condition.equal(column, operand, path)


def _ne(column: sa.Column[Any], operand: Any, path: str) -> _Condition:
    return _Condition.equal(column, operand, path).complement()


_ORDERINGS: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}


def _ordering(name: str) -> Callable[[sa.Column[Any], Any, str], _Condition]:
    compare = _ORDERINGS[name]

    def build(column: sa.Column[Any], operand: Any, path: str) -> _Condition:
        if operand is None:
            raise InvalidQueryError(
                f"{path}: {name} None matches nothing; use {{'$is_null': True}} for NULLs"
            )
        value = _value(column, operand, path)
        strict: sa.ColumnElement[bool] = compare(column, _bound(column, value))
        if name in ("$gte", "$lt") and _is_time_text(column, value):
            # SQLite: from (or before) the shortest text form of the instant; > and <= go
            # past (or up to) the full form, which the plain comparison binds.
            strict = OnDialect(strict, "sqlite", compare(column, _shortest(column, value)))
        elif is_plain_binary(column.type):
            strict = OnDialect(strict, "mysql", compare(column, _hexed(column, value)))
        return _Condition(column, strict)

    return build


def _in(column: sa.Column[Any], operand: Any, path: str) -> _Condition:
    if _is_array(column.type):
        raise InvalidQueryError(
            f"{path}: $in/$nin compare one value with a list of values, and {column.key!r} "
            "is an ARRAY column; use {'$contains': [...]} (holds every item), "
            "{'$overlap': [...]} (holds any item) or equality with a whole list"
        )
    items = _list_of(operand, path, "a list of values")
    # None in the list matches NULL, as a bare None does.
    matches_null = any(item is None for item in items)
    present = [
        _value(column, item, f"{path}[{index}]")
        for index, item in enumerate(items)
        if item is not None
    ]
    # An empty IN list matches nothing: SQL's own answer, without sending an empty IN.
    strict: sa.ColumnElement[bool] | None = None
    if present:
        value_type = _wide_integer_type(column, present) or compared_type(column.type)
        # A long list of plain integers is written into the SQL text (digits only: nothing
        # a caller sends can change the statement), so SQLite and MySQL bind no parameter
        # for it and never reach their limits (32,766 and 65,535 per statement).
        literal = (
            len(present) > LITERAL_INTEGERS_ABOVE
            and isinstance(column.type, sa.Integer)
            and all(type(item) is int for item in present)
        )
        listed = column.in_(
            sa.bindparam(
                column.key,
                present,
                type_=value_type,
                expanding=True,
                unique=True,
                literal_execute=literal,
            )
        )
        # PostgreSQL: one array parameter instead of one per value (see _dialects).
        array = sa.bindparam(column.key, present, type_=sa.ARRAY(value_type), unique=True)
        strict = OnDialect(listed, "postgresql", column == sa.any_(array))
        if _is_time_text(column, present[0]):
            # SQLite: the list of each text form SQLite, its functions and SQLAlchemy write
            # (shortest, no fraction, milliseconds, microseconds); a range per value would
            # nest too deeply for SQLite's parser in a long list.
            forms = [
                sa.bindparam(column.key, present, type_=form, expanding=True, unique=True)
                for form in (
                    ShortestTimeText(column.type),
                    ShortestTimeText(column.type, digits=0),
                    ShortestTimeText(column.type, digits=3),
                    column.type,
                )
            ]
            strict = OnDialect(strict, "sqlite", sa.or_(*(column.in_(form) for form in forms)))
        elif is_plain_binary(column.type):
            hexed = sa.bindparam(
                column.key, present, type_=UnhexedBytes(), expanding=True, unique=True
            )
            strict = OnDialect(strict, "mysql", column.in_(hexed))
    return _Condition(column, strict, matches_null=matches_null)


def _nin(column: sa.Column[Any], operand: Any, path: str) -> _Condition:
    return _in(column, operand, path).complement()


def _between(column: sa.Column[Any], operand: Any, path: str) -> _Condition:
    bounds = _list_of(operand, path, "a [low, high] pair")
    if not isinstance(operand, Sequence) or len(bounds) != 2 or None in bounds:
        raise InvalidQueryError(
            f"{path}: $between takes a [low, high] pair of non-null values, not {describe(operand)}"
        )
    low = _value(column, bounds[0], f"{path}[0]")
    high = _value(column, bounds[1], f"{path}[1]")
    strict: sa.ColumnElement[bool] = column.between(_bound(column, low), _bound(column, high))
    if _is_time_text(column, low):
        # SQLite: from the shortest text form of low to the full form of high.
        strict = OnDialect(
            strict, "sqlite", sa.and_(column >= _shortest(column, low), column <= high)
        )
    elif is_plain_binary(column.type):
        hexed = column.between(_hexed(column, low), _hexed(column, high))
        strict = OnDialect(strict, "mysql", hexed)
    return _Condition(column, strict)


def _is_null(column: sa.Column[Any], operand: Any, path: str) -> _Condition:
    if not isinstance(operand, bool):
        raise InvalidQueryError(f"{path}: $is_null takes true or false, not {describe(operand)}")
    condition = _Condition(column, None, matches_null=True)
    return condition if operand else condition.complement()


def _array_items(column: sa.Column[Any], operand: Any, path: str, name: str) -> list[Any]:
    """The items an array operator takes: a list, or one item standing for a list of one."""
    items = list(operand) if _is_list(operand) else [operand]
    for index, item in enumerate(items):
        if item is None or isinstance(item, (Mapping, sa.ClauseElement)) or _is_list(item):
            raise InvalidQueryError(
                f"{path}[{index}]: {name} takes items of the ARRAY column {column.key!r}, "
                f"not {describe(item)}"
            )
    return items


def _overlap(column: sa.Column[Any], operand: Any, path: str) -> _Condition:
    if not _is_array(column.type):
        raise InvalidQueryError(
            f"{path}: $overlap needs an ARRAY column; {column.key!r} is "
            f"{_type_name(column.type)} (for one of several values use $in)"
        )
    items = _array_items(column, operand, path, "$overlap")
    return _Condition(column, column.overlap(sa.bindparam(column.key, items, unique=True)))


def _pattern(name: str) -> Callable[[sa.Column[Any], Any, str], _Condition]:
    def build(column: sa.Column[Any], operand: Any, path: str) -> _Condition:
        if name == "$contains" and _is_array(column.type):
            # An array holds every listed item: ``@>``.
            items = _array_items(column, operand, path, name)
            array = sa.bindparam(column.key, items, type_=column.type, unique=True)
            return _Condition(column, column.contains(array))
        if not _is_text(column.type):
            raise InvalidQueryError(
                f"{path}: {name} needs a string column; {column.key!r} is {_type_name(column.type)}"
            )
        if not isinstance(operand, str):
            raise InvalidQueryError(f"{path}: {name} takes a string, not {describe(operand)}")
        text = _checked_text(operand, path)
        like: sa.ColumnElement[bool]
        if name in ("$like", "$ilike"):
            try:
                glob = like_pattern_to_glob(text, LIKE_ESCAPE)
            except ValueError:
                raise InvalidQueryError(
                    f"{path}: the pattern ends with the escape character {LIKE_ESCAPE!r}; "
                    f"write {LIKE_ESCAPE * 2!r} for a literal one"
                ) from None
            if name == "$ilike":
                return _Condition(column, column.ilike(text, escape=LIKE_ESCAPE))
            like = column.like(text, escape=LIKE_ESCAPE)
        elif name == "$contains":
            like = column.contains(text, autoescape=True)
            glob = f"*{glob_literal(text)}*"
        elif name == "$startswith":
            like = column.startswith(text, autoescape=True)
            glob = f"{glob_literal(text)}*"
        else:
            like = column.endswith(text, autoescape=True)
            glob = f"*{glob_literal(text)}"
        # SQLite's LIKE ignores ASCII case; its GLOB does not.
        glob_condition = column.op("GLOB", is_comparison=True)(glob)
        return _Condition(column, OnDialect(like, "sqlite", glob_condition))

    return build


_OPERATORS: Final[dict[str, Callable[[sa.Column[Any], Any, str], _Condition]]] = {
    "$eq": _eq,
    "$ne": _ne,
    "$gt": _ordering("$gt"),
    "$gte": _ordering("$gte"),
    "$lt": _ordering("$lt"),
    "$lte": _ordering("$lte"),
    "$in": _in,
    "$nin": _nin,
    "$between": _between,
    "$is_null": _is_null,
    "$like": _pattern("$like"),
    "$ilike": _pattern("$ilike"),
    "$contains": _pattern("$contains"),
    "$startswith": _pattern("$startswith"),
    "$overlap": _overlap,
    "$endswith": _pattern("$endswith"),
}


# -- values ------------------------------------------------------------------------------

_INTEGER_BITS: Final = ((sa.SmallInteger, 16), (sa.BigInteger, 64), (sa.Integer, 32))


def _integer_range(column_type: sa.types.TypeEngine[Any], bits: int) -> range:
    if getattr(column_type, "unsigned", False):  # MySQL's UNSIGNED integer types
        return range(2**bits)
    return range(-(2 ** (bits - 1)), 2 ** (bits - 1))


def _wide_integer_type(column: sa.Column[Any], values: list[Any]) -> sa.BigInteger | None:
    """``BIGINT`` when a value lies outside a 16- or 32-bit column's range, else ``None``.

    Such a value still compares correctly (``$lt`` matches every row, ``$eq`` none), but
    PostgreSQL would refuse it as a parameter of the column's own type; bound as ``BIGINT`` it
    compares across integer types, index included.
    """
    column_type = column.type
    if not isinstance(column_type, sa.Integer) or isinstance(column_type, sa.BigInteger):
        return None
    bits = next(bits for kind, bits in _INTEGER_BITS if isinstance(column_type, kind))
    valid = _integer_range(column_type, bits)
    if all(value in valid for value in values if isinstance(value, int)):
        return None
    return sa.BigInteger()


def _is_time_text(column: sa.Column[Any], value: Any) -> bool:
    """Whether SQLite compares ``value`` with text forms of ``column`` (datetimes, times)."""
    return isinstance(value, (dt.datetime, dt.time)) and stored_as_time_text(column.type)


def _shortest(column: sa.Column[Any], value: Any) -> sa.BindParameter[Any]:
    return sa.bindparam(column.key, value, type_=ShortestTimeText(column.type), unique=True)


def _hexed(column: sa.Column[Any], value: bytes) -> sa.BindParameter[Any]:
    """``UNHEX(:hex)`` of ``value``: MySQL/MariaDB binary comparisons work on aiomysql too,
    which cannot send bytes (see kysera.core._mysql_bytes)."""
    return sa.bindparam(column.key, value, type_=UnhexedBytes(), unique=True)


def _bound(column: sa.Column[Any], value: Any) -> Any:
    """``value`` as a bound parameter of the column's type, or of ``BIGINT`` for an integer
    too wide for the column.

    Always a parameter, never the bare value: SQLAlchemy refuses ``column > True`` (it would
    render ``True`` as a constant), while ``column > :param`` orders booleans as the database
    does (false before true).
    """
    wide = _wide_integer_type(column, [value])
    bound_type = compared_type(column.type) if wide is None else wide
    return sa.bindparam(column.key, value, type_=bound_type, unique=True)


def column_value(column: sa.Column[Any], value: Any, path: str) -> Any:
    """Check (and where documented, convert) a value bound to ``column``; see `_value`.

    The one check every bound value of a repository goes through: where-dict operands and
    primary-key values alike.

    Raises:
        InvalidQueryError: The value does not fit the column; ``path`` says where it was.
    """
    return _value(column, value, path)


def _value(column: sa.Column[Any], value: Any, path: str) -> Any:
    """Check that ``value`` fits ``column`` before it becomes a bound parameter.

    Types Kysera does not know (a ``TypeDecorator``, JSON, ARRAY, types without a Python type)
    pass as they are: the type's own bind processing is the judge there.
    """
    if value is None:
        raise InvalidQueryError(f"{path}: None is not a value here; use {{'$is_null': True}}")
    if isinstance(value, (Mapping, sa.ClauseElement)):
        raise InvalidQueryError(f"{path}: expected a plain value, not {describe(value)}")
    column_type = column.type
    while isinstance(column_type, postgresql.DOMAIN):  # checked as the type it constrains
        column_type = column_type.data_type
    expected: str | None = None
    if isinstance(column_type, sa.Interval):  # a TypeDecorator that Kysera knows
        if not isinstance(value, dt.timedelta):
            expected = "a timedelta"
        elif not _INTERVAL_MIN <= value <= _INTERVAL_MAX:
            # Without a native interval type the value is stored as epoch + value, a
            # datetime: the same bounds on every database keep one value one meaning.
            expected = "a timedelta within about ±8,000 years of zero"
    elif isinstance(column_type, sa.TypeDecorator):
        return value
    elif isinstance(column_type, sa.Boolean):
        if not isinstance(value, bool):
            expected = "true or false"
    elif isinstance(column_type, sa.Integer):
        if isinstance(value, bool) or not isinstance(value, int):
            expected = "an integer"
        else:
            # No database compares integers beyond 64 bits (SQLite's driver cannot even bind
            # them); narrower columns take them as BIGINT parameters (see _bound).
            valid = _UNSIGNED_64_BIT if getattr(column_type, "unsigned", False) else _SIGNED_64_BIT
            if value not in valid:
                raise InvalidQueryError(
                    f"{path}: {short_repr(value)} is out of the 64-bit range of the integer "
                    f"column {column.key!r}"
                )
    elif isinstance(column_type, (sa.Numeric, sa.Float)):  # unrelated types in SQLAlchemy 2.1
        if isinstance(value, bool) or not isinstance(value, (int, float, decimal.Decimal)):
            expected = "a number"
        elif not _is_finite(value):
            expected = "a finite number"
        elif (
            isinstance(column_type, sa.Float)
            and isinstance(value, int)
            and value not in _FLOAT_INTS
        ):
            expected = "a number within the range of a float"
    elif isinstance(column_type, sa.Enum):
        allowed = list(column_type.enums)
        enum_class = column_type.enum_class
        if enum_class is not None and isinstance(value, enum_class):
            return value
        if not isinstance(value, str) or value not in allowed:
            expected = "one of " + ", ".join(allowed)
    elif isinstance(column_type, mysql.SET):
        # A set of members (what the column reads back), or their comma-separated text; sent
        # as the text MySQL compares the column as: the members in the column's order.
        members = value.split(",") if isinstance(value, str) and value else value
        if value == "":
            members = set()
        if isinstance(members, (set, frozenset, list)) and all(
            item in column_type.values for item in members
        ):
            return ",".join(item for item in column_type.values if item in members)
        expected = "a set of " + ", ".join(column_type.values)
    elif isinstance(column_type, sa.String):
        if not isinstance(value, str):
            expected = "a string"
        else:
            return _checked_text(value, path)
    elif isinstance(column_type, sa.JSON):
        # PostgreSQL's json has no =, MySQL compares JSON with text by its own rules, SQLite
        # compares the text: no one meaning to give a JSON value here.
        raise InvalidQueryError(
            f"{path}: the JSON column {column.key!r} is not compared by value in a where-dict "
            "(only $is_null); filter with a SQLAlchemy expression, e.g. "
            f"table.c.{column.key}['key'].as_string() == 'x'"
        )
    elif isinstance(column_type, sa.ARRAY | sa.types.NullType | sa.PickleType):
        return value
    else:
        try:
            python_type = column_type.python_type
        except NotImplementedError:
            return value
        if isinstance(column_type, sa.Uuid):
            return _uuid_value(column_type, value, path, column.key)
        if isinstance(value, dt.datetime) and isinstance(column_type, sa.DateTime):
            return in_utc_for(column_type, value)
        if not isinstance(value, python_type) or isinstance(value, bool) != (python_type is bool):
            expected = f"a {python_type.__name__}"
    if expected is not None:
        raise InvalidQueryError(
            f"{path}: the {_type_name(column_type)} column {column.key!r} takes {expected}, "
            f"not {describe(value)}"
            + ("; for several values use {'$in': [...]}" if _is_list(value) else "")
        )
    return value


# Comparisons beyond these bounds fail in the driver (SQLite: OverflowError; PostgreSQL:
# out of int64 range), so they are refused first; MySQL's UNSIGNED columns reach 2**64 - 1.
_SIGNED_64_BIT: Final = range(-(2**63), 2**63)
_UNSIGNED_64_BIT: Final = range(-(2**63), 2**64)
_EPOCH: Final = dt.datetime(1970, 1, 1)
_INTERVAL_MIN: Final = dt.datetime.min - _EPOCH
_INTERVAL_MAX: Final = dt.datetime.max - _EPOCH


def _uuid_value(column_type: sa.Uuid[Any], value: Any, path: str, key: str) -> Any:
    """A UUID given as ``uuid.UUID`` or as text, in the form the column's type binds."""
    if isinstance(value, str):
        try:
            value = uuid.UUID(value)
        except ValueError:
            raise InvalidQueryError(
                f"{path}: the Uuid column {key!r} takes a UUID, not {describe(value)}"
            ) from None
    elif not isinstance(value, uuid.UUID):
        raise InvalidQueryError(
            f"{path}: the Uuid column {key!r} takes a UUID, not {describe(value)}"
        )
    return value if column_type.as_uuid else str(value)


_FLOAT_INTS: Final = range(-(2**1023), 2**1023)


def _is_finite(number: float | decimal.Decimal) -> bool:
    if isinstance(number, int):
        return True  # math.isfinite would convert it to float, which may overflow
    if isinstance(number, decimal.Decimal):
        return number.is_finite()
    return math.isfinite(number)


def _checked_text(text: str, path: str) -> str:
    # Drivers fail on these with errors of their own (or encoding exceptions): say it first.
    if "\x00" in text:
        raise InvalidQueryError(f"{path}: strings may not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidQueryError(
            f"{path}: the string is not valid Unicode (lone surrogate)"
        ) from None
    return text


def _type_name(column_type: sa.types.TypeEngine[Any]) -> str:
    # The class, not the DDL: str(Uuid()) would say CHAR(32), and some types cannot render
    # without their dialect at all.
    return type(column_type).__name__


def _is_array(column_type: sa.types.TypeEngine[Any]) -> bool:
    while isinstance(column_type, sa.TypeDecorator):
        column_type = column_type.impl_instance
    return isinstance(column_type, sa.ARRAY)


def _is_text(column_type: sa.types.TypeEngine[Any]) -> bool:
    while isinstance(column_type, sa.TypeDecorator):
        column_type = column_type.impl_instance
    return isinstance(column_type, sa.String) and not isinstance(column_type, sa.Enum)


# -- helpers -----------------------------------------------------------------------------


def _and(parts: list[sa.ColumnElement[bool]]) -> sa.ColumnElement[bool]:
    if len(parts) > 1:
        return sa.and_(*parts)
    return parts[0] if parts else sa.true()  # an empty AND holds for every row


def _or(parts: list[sa.ColumnElement[bool]]) -> sa.ColumnElement[bool]:
    if len(parts) > 1:
        return sa.or_(*parts)
    return parts[0] if parts else sa.false()  # an empty OR holds for no row


def _is_list(value: Any) -> bool:
    return isinstance(value, (Sequence, AbstractSet)) and not isinstance(
        value, (str, bytes, bytearray)
    )


def _list_of(value: Any, path: str, what: str) -> list[Any]:
    if not _is_list(value):
        raise InvalidQueryError(f"{path}: expected {what}, not {describe(value)}")
    return list(value)
