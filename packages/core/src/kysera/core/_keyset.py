"""Keyset pagination internals: reading an ordering, and the SQL that continues it.

An ordering is a list of `SortKey`: an expression, its direction and where its NULLs go.
`plan_keyset` turns a user's ``order_by`` into a unique ordering (appending primary keys),
and `KeysetPlan.statement` builds the page query for a cursor position, either forwards
(``after``) or backwards (``before``, the reversed ordering, whose rows the caller reverses).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import itertools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Enum,
    FromClause,
    Join,
    Select,
    Table,
    UniqueConstraint,
    and_,
    bindparam,
    false,
    func,
    literal,
    literal_column,
    or_,
    tuple_,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import (
    BinaryExpression,
    BooleanClauseList,
    ColumnClause,
    Grouping,
    KeyedColumnElement,
    Label,
    UnaryExpression,
)
from sqlalchemy.sql.selectable import AliasedReturnsRows
from sqlalchemy.sql.visitors import InternalTraversal, _TraverseInternalsType
from sqlalchemy.types import (
    Boolean,
    Float,
    Integer,
    Numeric,
    String,
    TypeDecorator,
    _Binary,
)

from kysera.core._mysql_bytes import UnhexedBytes
from kysera.core._stored_time import ShortestTimeText, stored_as_time_text
from kysera.core.cursors import ordering_fingerprint
from kysera.core.errors import InvalidCursorError, InvalidQueryError

__all__ = [
    "KeysetCondition",
    "KeysetPlan",
    "SortKey",
    "compose_page",
    "limit_clause",
    "plan_keyset",
]

# Dialects on which NULL sorts as the largest value (ASC puts NULLs last); on the others
# (SQLite, MySQL/MariaDB, SQL Server) NULL is the smallest.
_NULLS_LARGEST = frozenset({"postgresql", "oracle"})
# Dialects that understand NULLS FIRST / NULLS LAST (SQLite since 3.30).
_NULLS_SYNTAX = frozenset({"postgresql", "oracle", "sqlite"})
# MySQL/MariaDB accept row values but do not turn `(a, b) > (x, y)` into an index range;
# the OR expansion with a bound on the leading column does use the index there.
_NO_ROW_VALUE_RANGE = frozenset({"mysql", "mariadb"})
_INT_RANGE = range(-(2**63), 2**64)


@dataclass(frozen=True, slots=True)
class SortKey:
    """One ordering key.

    Attributes:
        expression: The SQL expression sorted on.
        descending: Whether larger values come first.
        nulls_first: Whether NULLs come before every value (otherwise after).
        nullable: Whether the expression can be NULL in this statement.
        index: Position of the key's value in a result row.
    """

    expression: ColumnElement[Any]
    descending: bool
    nulls_first: bool
    nullable: bool
    index: int

    def reversed(self) -> SortKey:
        return SortKey(
            self.expression, not self.descending, not self.nulls_first, self.nullable, self.index
        )


@dataclass(frozen=True, slots=True)
class KeysetPlan:
    """A statement prepared for keyset pagination.

    Attributes:
        extra: Key columns the statement does not select, added to it as labels.
        keys: The unique ordering, user keys first, then primary-key tiebreakers.
        fingerprint: The identifier cursors of this ordering carry.
        width: How many leading result columns are the user's own.
        checks: Per key, whether a decoded cursor value can stand for one of its values.
        parameter_names: Per key, the name of the bound parameter its cursor value takes.
    """

    extra: tuple[ColumnElement[Any], ...]
    keys: tuple[SortKey, ...]
    fingerprint: str
    width: int
    checks: tuple[Callable[[Any], bool], ...]
    parameter_names: tuple[str, ...]
    # Per key, what turns a row's value into the value its cursor carries (None: as read);
    # None altogether when every key's value is carried as read.
    cursor_values: tuple[Callable[[Any], Any] | None, ...] | None = None
    # (dialect, backwards, which cursor values are NULL) -> (WHERE condition, ORDER BY terms,
    # whether they carry ORM attributes), built once: cursor values travel as bound
    # parameters, so a page costs no rebuilding.
    _parts: dict[tuple[Any, ...], tuple[Any, tuple[Any, ...], bool]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _time_text: tuple[str, ...] | None = field(default=None, compare=False, repr=False)
    # (statement, parts key, limit) -> its page query, the same object for the same
    # arguments, so that a statement paged again (a repository's read shape) is compiled and
    # prepared once. Held strongly (a page holds its statement) and bounded.
    _pages: dict[tuple[Any, ...], Select[Any]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def check_values(self, values: Sequence[Any]) -> None:
        """Refuse cursor values that cannot be a position in this ordering."""
        if len(values) != len(self.keys):
            raise InvalidCursorError("the cursor belongs to a different ordering")
        for key, fits, value in zip(self.keys, self.checks, values, strict=True):
            if value is None:
                if not key.nullable:
                    raise InvalidCursorError("the cursor holds NULL for a NOT NULL key")
            elif not fits(value):
                raise InvalidCursorError(
                    f"the cursor holds a {type(value).__name__} where the ordering has "
                    f"{key.expression.type}"
                )

    def statement(
        self,
        statement: Select[Any],
        dialect: Dialect,
        values: Sequence[Any] | None,
        *,
        backwards: bool,
        limit: int,
    ) -> tuple[Select[Any], dict[str, Any]]:
        """The page query (rows after ``values`` in the ordering, or in its reverse) and the
        parameters to execute it with."""
        nulls = None if values is None else tuple(value is None for value in values)
        parts_key = (dialect.name, backwards, nulls)
        page_key = (statement, parts_key, limit)
        page = self._pages.get(page_key)
        if page is None:
            parts = self._parts.get(parts_key)
            if parts is None:
                parts = self._parts[parts_key] = self._build_parts(dialect, backwards, nulls)
            condition, order, orm = parts
            page = statement.add_columns(*self.extra) if self.extra else statement
            # ORM-annotated keys: SQLAlchemy's generative methods carry their ORM attributes.
            page = compose_page(page, condition, order, limit_clause(limit), generative=orm)
            if len(self._pages) >= _PAGES_KEPT:
                self._pages.clear()
            self._pages[page_key] = page
        statement = page
        parameters: dict[str, Any] = {}
        if values is not None:
            for name, value in zip(self.parameter_names, values, strict=True):
                if value is not None:
                    parameters[name] = value
            if dialect.name == "sqlite":
                for name in self._sqlite_time_text_parameters():
                    if name in parameters:
                        parameters[name + _FLOOR] = parameters[name]
        return statement, parameters

    def _sqlite_time_text_parameters(self) -> tuple[str, ...]:
        """The parameters of keys SQLite keeps as datetime/time text (found once)."""
        found = self._time_text
        if found is None:
            found = tuple(
                name
                for name, key in zip(self.parameter_names, self.keys, strict=True)
                if stored_as_time_text(key.expression.type)
            )
            object.__setattr__(self, "_time_text", found)
        return found

    def _build_parts(
        self, dialect: Dialect, backwards: bool, nulls: tuple[bool, ...] | None
    ) -> tuple[Any, tuple[Any, ...], bool]:
        keys = tuple(key.reversed() for key in self.keys) if backwards else self.keys
        keys = tuple(_as_compared(key, dialect) for key in keys)
        condition = None
        if nulls is not None:
            parameters = [
                None if is_null else _bound_value(name, key, dialect)
                for name, key, is_null in zip(self.parameter_names, keys, nulls, strict=True)
            ]
            condition = KeysetCondition(_after(keys, parameters, dialect.name))
        order: list[Any] = []
        for key in keys:
            order.extend(_order_terms(key, dialect))
        orm = any(key.expression._propagate_attrs for key in keys)
        return condition, tuple(order), orm


def compose_page(
    statement: Select[Any],
    condition: ColumnElement[bool] | None,
    order: tuple[ColumnElement[Any], ...],
    limit: ColumnElement[Any],
    *,
    generative: bool = False,
) -> Select[Any]:
    """``statement.where(condition).order_by(None).order_by(*order).limit(limit)``.

    Unless ``generative``, that is built as one copy of the statement with the parts set on
    it: where(), order_by() and limit() would each copy the statement and coerce their
    argument again (about 5 µs a page), though the parts of a plan are built once, coerce
    to themselves and carry no ORM attributes to pass on, so the copy ends the same (see
    test_a_page_statement_is_what_the_generative_methods_build).
    """
    if generative:
        if condition is not None:
            if _needs_grouping(statement._where_criteria):
                statement = statement._generate()
                statement._where_criteria = _as_conjuncts(statement._where_criteria)
            statement = statement.where(condition)
        return statement.order_by(None).order_by(*order).limit(limit)
    page = statement._generate()
    if condition is not None:
        criteria = page._where_criteria
        if _needs_grouping(criteria):
            criteria = _as_conjuncts(criteria)
        page._where_criteria = (*criteria, condition)
    page._order_by_clauses = order
    # What limit() does: LIMIT replaces FETCH FIRST.
    page._fetch_clause = page._fetch_clause_options = None
    page._limit_clause = limit
    return page


# Criteria whose SQL SQLAlchemy parenthesises by operator precedence when it joins them
# with AND. Anything else (text(), literal_column(), a construct compiled by user code) may
# hide a top-level OR, so it is put in parentheses before the keyset condition is added.
_SELF_GROUPING: frozenset[type] = frozenset(
    {BinaryExpression, BooleanClauseList, Grouping, UnaryExpression}
)


def _needs_grouping(criteria: tuple[Any, ...]) -> bool:
    return any(type(criterion) not in _SELF_GROUPING for criterion in criteria)


def _as_conjuncts(criteria: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(
        criterion if type(criterion) in _SELF_GROUPING else Grouping(criterion)
        for criterion in criteria
    )


# Page queries kept per plan (statements built per call cycle through).
_PAGES_KEPT = 64
_LIMIT_CLAUSES: dict[int, ColumnElement[Any]] = {}


def limit_clause(limit: int) -> ColumnElement[Any]:
    """``LIMIT`` as a literal: PostgreSQL then keeps a generic plan for the prepared
    statement (with ``LIMIT $n`` it plans every execution anew); few distinct limits exist."""
    clause = _LIMIT_CLAUSES.get(limit)
    if clause is None:
        clause = literal_column(str(int(limit)))
        if len(_LIMIT_CLAUSES) < 256:
            _LIMIT_CLAUSES[limit] = clause
    return clause


class KeysetCondition(ColumnElement[bool]):
    """A keyset WHERE condition whose cache key is a token.

    SQLAlchemy computes the cache key of every statement it executes by walking the whole
    statement; a keyset condition is built once per plan and never changes, so walking it
    on every page (about half the cost of the cache key for a mixed ordering) is wasted.
    It compiles to exactly its condition.

    Its bound parameters stay out of the key too. SQLAlchemy collects a key's parameters to
    take the values of parameters that carry one (literals) from the statement executed
    rather than from the one compiled; these carry none, every page passes their values
    by name, and a compiled form holding this condition belongs to this condition alone
    (the token is unique), whose parameters are the very objects compiled.
    """

    inherit_cache = False
    # Typed as SQLAlchemy declares it (an instance attribute), hence no ClassVar.
    _traverse_internals: _TraverseInternalsType = [  # noqa: RUF012
        ("token", InternalTraversal.dp_string),
    ]
    type = Boolean()
    # A comparison, not a boolean value: without this, dialects lacking a native boolean
    # (SQLite, MySQL) render `(...) = 1`, which no index serves.
    _is_implicitly_boolean = True

    def __init__(self, condition: ColumnElement[bool]) -> None:
        self.condition = condition
        self.token = f"kysera-keyset-{next(_CONDITION_TOKENS)}"

    @property
    def _from_objects(self) -> list[FromClause]:
        return self.condition._from_objects


_CONDITION_TOKENS = itertools.count()


@compiles(KeysetCondition)
def _compile_keyset_condition(element: KeysetCondition, compiler: Any, **options: Any) -> str:
    # Always one parenthesised conjunct: whatever the statement's WHERE holds, the position
    # can only narrow it (`w AND (a OR b)`, never `w AND a OR b`).
    return f"({compiler.process(element.condition, **options)})"


def plan_keyset(
    statement: Select[Any], order_by: Sequence[Any] | Any, *, unique: bool = False
) -> KeysetPlan:
    """Read ``order_by`` against ``statement`` into a unique ordering.

    Plans are cached by the statement's shape (its columns, FROM list, joins and the sources
    its WHERE clause names) and the ordering, so a query paged again costs a dictionary
    lookup.

    Args:
        statement: The SELECT to page.
        order_by: The ordering terms.
        unique: The caller asserts that ``order_by`` identifies a row: nothing is appended.

    Raises:
        InvalidQueryError: The ordering is empty or holds something that is not a column
            expression, the statement cannot be paged by keyset, or (without ``unique``)
            a source in the FROM has no key that would make the ordering unique.
    """
    if isinstance(order_by, (str, ColumnElement)) or not isinstance(order_by, Sequence):
        order_by = [order_by]
    if not order_by:
        raise InvalidQueryError("keyset pagination needs a non-empty order_by")
    if statement._limit_clause is not None or statement._offset_clause is not None:
        raise InvalidQueryError("the statement already has LIMIT/OFFSET; pass it without")
    if statement._distinct or statement._group_by_clauses:
        raise InvalidQueryError(
            "keyset pagination of a DISTINCT or GROUP BY statement: page a select from "
            "statement.subquery() instead"
        )
    terms = tuple(_read_order_item(item) for item in order_by)
    where_sources = tuple(
        source for criterion in statement._where_criteria for source in criterion._from_objects
    )
    # Joins added by .join()/.join_from()/.outerjoin() live in _setup_joins, whose flags are
    # a dict (unhashable): the key takes them as a tuple.
    joins = tuple(
        (target, onclause, left, tuple(sorted(flags.items())))
        for target, onclause, left, flags in statement._setup_joins
    )
    cache_key = (
        tuple(statement._raw_columns),
        statement._from_obj,
        joins,
        where_sources,
        terms,
        unique,
    )
    plan = _PLANS.get(cache_key)
    if plan is None:
        plan = _plan(statement, terms, unique)
        if len(_PLANS) >= _PLAN_CACHE_SIZE:
            # Drop the oldest entry; another thread may have dropped it already.
            with contextlib.suppress(KeyError, RuntimeError, StopIteration):
                del _PLANS[next(iter(_PLANS))]
        _PLANS[cache_key] = plan
    return plan


_PLAN_CACHE_SIZE = 512
_PLANS: dict[tuple[Any, ...], KeysetPlan] = {}


def _plan(
    statement: Select[Any], terms: tuple[tuple[Any, bool, bool], ...], unique: bool
) -> KeysetPlan:
    selected = list(statement.selected_columns)
    width = len(selected)
    positions: dict[int, int] = {}
    for position, column in enumerate(selected):
        positions.setdefault(id(column), position)
        if isinstance(column, Label):
            positions.setdefault(id(column.element), position)

    froms = _from_tables(_statement_froms(statement))
    nullable_sources = {id(source) for source, nullable in froms if nullable}
    extra: list[ColumnElement[Any]] = []
    keys: list[SortKey] = []
    seen: set[int] = set()

    def add_key(expression: ColumnElement[Any], descending: bool, nulls_first: bool) -> None:
        if id(expression) in seen:
            return
        seen.add(id(expression))
        index = positions.get(id(expression))
        if index is None:
            index = width + len(extra)
            extra.append(expression.label(f"kysera_key_{len(extra)}"))
        _refuse_long_key(expression)
        nullable = _is_nullable(expression, nullable_sources)
        keys.append(SortKey(expression, descending, nulls_first, nullable, index))

    for expression, descending, nulls_first in terms:
        if isinstance(expression, str):
            try:
                expression = statement.selected_columns[expression]
            except KeyError:
                raise InvalidQueryError(
                    f"order_by names {expression!r}, which is not a column of the statement"
                ) from None
        add_key(expression, descending, nulls_first)

    # Tiebreakers run in the direction of the last key: `created_at DESC` becomes
    # `created_at DESC, id DESC`, one direction, which a plain (created_at, id) index serves
    # and a row-value comparison continues.
    tiebreak_descending = keys[-1].descending
    for source, nullable in [] if unique else froms:
        source_key = _source_key(source)
        if source_key is not None and all(id(column) in seen for column in source_key):
            continue
        if _has_covered_unique_constraint(source, nullable, seen):
            continue
        if source_key is None:
            raise InvalidQueryError(
                f"keyset pagination needs a unique ordering, and {_source_name(source)} has no "
                "key Kysera can prove unique (no primary key: a view, a GROUP BY or DISTINCT "
                "result, a select of some columns of a join, ...). Add columns that identify "
                "its rows to order_by and pass unique=True to assert that the ordering is "
                "unique, or page a source with a primary key"
            )
        for column in source_key:
            add_key(column, tiebreak_descending, False)

    fingerprint = ordering_fingerprint([_describe(key) for key in keys])
    checks = tuple(_value_check(key.expression) for key in keys)
    names = tuple(f"kysera_cursor_{position}" for position in range(len(keys)))
    converters = tuple(_cursor_converter(key.expression) for key in keys)
    cursor_values = converters if any(converters) else None
    return KeysetPlan(tuple(extra), tuple(keys), fingerprint, width, checks, names, cursor_values)


def _cursor_converter(expression: ColumnElement[Any]) -> Callable[[Any], Any] | None:
    """For an ``Enum`` of a Python enum class, whose rows hold enum members: the member's
    stored string, which the cursor carries and the type binds back."""
    sql_type = expression.type
    if isinstance(sql_type, Enum) and sql_type.enum_class is not None:
        to_stored: Callable[[Any], Any] = sql_type._db_value_for_elem
        return lambda value: None if value is None else to_stored(value)
    return None


# The longest declared string or binary key accepted: 1024 characters of 4-byte UTF-8 in
# base64 stay under MAX_CURSOR_LENGTH with room for the other keys.
_LONGEST_KEY = 1024


def _refuse_long_key(expression: ColumnElement[Any]) -> None:
    """Refuse, when the ordering is given, a key whose values cannot make a cursor: a
    binary column without a short declared length (a BLOB, bytea) or a string column
    declared longer than `_LONGEST_KEY`. (A key of unbounded text, such as ``TEXT``, is
    accepted; a row whose values would make a cursor longer than the decoder accepts
    raises `InvalidQueryError` instead of handing that cursor out.)"""
    sql_type = expression.type
    if isinstance(sql_type, TypeDecorator):
        sql_type = sql_type.impl_instance
    length = getattr(sql_type, "length", None)
    name = _describe_expression(expression)
    if isinstance(sql_type, _Binary) and (length is None or length > _LONGEST_KEY):
        raise InvalidQueryError(
            f"order_by {name}: a binary column without a declared length of at most "
            f"{_LONGEST_KEY} bytes ({sql_type}) cannot make a keyset cursor; order by "
            "another column, e.g. a hash or the primary key"
        )
    if isinstance(sql_type, String) and length is not None and length > _LONGEST_KEY:
        raise InvalidQueryError(
            f"order_by {name}: a string column declared longer than {_LONGEST_KEY} "
            f"characters ({sql_type}) cannot make a keyset cursor; order by a shorter column "
            "or a prefix of it selected as a column of a subquery"
        )


def _read_order_item(item: Any) -> tuple[Any, bool, bool]:
    """(expression or column name, descending, NULLs first) of one ``order_by`` term."""
    if isinstance(item, str):
        return item, False, False
    descending = False
    nulls_first: bool | None = None
    element = item
    while isinstance(element, UnaryExpression) and element.modifier is not None:
        if element.modifier is operators.desc_op:
            descending = True
        elif element.modifier is operators.nulls_first_op:
            nulls_first = True
        elif element.modifier is operators.nulls_last_op:
            nulls_first = False
        elif element.modifier is not operators.asc_op:
            break
        element = element.element
    if not isinstance(element, ColumnElement):
        raise InvalidQueryError(
            f"order_by takes column expressions (e.g. table.c.name.desc()), not {item!r}"
        )
    # NULLs sort last in both directions unless the caller asks otherwise.
    return element, descending, bool(nulls_first)


def _statement_froms(statement: Select[Any]) -> list[FromClause]:
    """The FROM list as SQLAlchemy renders it: select_from() sources, joins however written
    (``.join()``, ``.join_from()``, ``.outerjoin()``, ``.outerjoin_from()``, a ``Join`` in
    select_from), and the tables the columns and WHERE clause imply.

    Only called when a plan is made (plans are cached), so its cost does not reach pages.
    """
    return list(statement.get_final_froms())


def _from_tables(froms: Sequence[FromClause]) -> list[tuple[FromClause, bool]]:
    """Flatten joins into (source, may be NULL-extended by an outer join) pairs."""
    found: list[tuple[FromClause, bool]] = []

    def walk(source: FromClause, nullable: bool) -> None:
        if isinstance(source, Join):
            walk(source.left, nullable or source.full)
            walk(source.right, nullable or source.isouter or source.full)
        else:
            found.append((source, nullable))

    for source in froms:
        walk(source, False)
    return found


def _is_nullable(expression: ColumnElement[Any], nullable_sources: set[int]) -> bool:
    """Whether ``expression`` can be NULL in a row of the statement: a nullable column, a
    column of a source on the optional side of an outer join, a column of a subquery or
    alias that is nullable inside it, or any expression that is not a plain column."""
    if isinstance(expression, Label):
        expression = expression.element
    if not isinstance(expression, ColumnClause):
        return True
    source = expression.table
    if source is None or id(source) in nullable_sources:
        return True
    if isinstance(source, Table):
        return not isinstance(expression, Column) or bool(expression.nullable)
    inner = _inner_column(source, expression)
    if inner is None:
        return True
    inner_expression, inner_statement = inner
    if inner_statement is None:
        return _is_nullable(inner_expression, set())
    inner_froms = _from_tables(_statement_froms(inner_statement))
    return _is_nullable(
        inner_expression, {id(from_) for from_, nullable in inner_froms if nullable}
    )


def _inner_column(
    source: FromClause, column: ColumnClause[Any]
) -> tuple[ColumnElement[Any], Select[Any] | None] | None:
    """What a column of an alias or subquery stands for: (the aliased table's column, None)
    or (the inner SELECT's column expression, that SELECT); None when unknown."""
    element = getattr(source, "element", None)
    if not isinstance(source, AliasedReturnsRows):
        return None
    if isinstance(element, Table):
        inner = element.c.get(column.key)
        return None if inner is None else (inner, None)
    if isinstance(element, Select):
        for position, candidate in enumerate(source.c):
            if candidate is column:
                selected = list(element.selected_columns)
                if position < len(selected):
                    return selected[position], element
                return None
    return None


def _source_key(source: FromClause) -> list[ColumnElement[Any]] | None:
    """Columns of ``source`` whose values identify one of its rows, when that is provable:
    a table's primary key; for an alias of a table, the alias's copy of it; for a subquery,
    the columns selecting the key of its SELECT (`_select_key`). None otherwise."""
    if isinstance(source, Table):
        return list(source.primary_key) or None
    if not isinstance(source, AliasedReturnsRows):
        return None
    element = source.element
    if isinstance(element, Table):
        inner_key: list[ColumnElement[Any]] | None = list(element.primary_key) or None
    elif isinstance(element, Select):
        inner_key = _select_key(element)
    else:
        return None
    if inner_key is None:
        return None
    key: list[ColumnElement[Any]] = []
    for inner in inner_key:
        column = (
            source.corresponding_column(inner) if isinstance(inner, KeyedColumnElement) else None
        )
        if column is None:
            return None
        key.append(column)
    return key


def _select_key(statement: Select[Any]) -> list[ColumnElement[Any]] | None:
    """Expressions of ``statement`` that identify one of its rows, when provable: the GROUP
    BY expressions of a grouped SELECT; otherwise the keys of every source in its FROM
    together (a join's rows are told apart by the keys of all its tables, outer sides
    included: a NULL-extended row pairs one row of the other side with NULLs)."""
    if statement._group_by_clauses:
        return list(statement._group_by_clauses)
    if statement._distinct:
        return None
    key: list[ColumnElement[Any]] = []
    for source, _nullable in _from_tables(_statement_froms(statement)):
        source_key = _source_key(source)
        if source_key is None:
            return None
        key += source_key
    return key or None


def _has_covered_unique_constraint(source: FromClause, nullable: bool, ordered: set[int]) -> bool:
    """Whether the ordering covers a unique constraint of NOT NULL columns of a table."""
    if nullable or not isinstance(source, Table):
        return False
    for constraint in source.constraints:
        columns = list(constraint.columns) if isinstance(constraint, UniqueConstraint) else []
        if columns and all(id(c) in ordered and not c.nullable for c in columns):
            return True
    return False


def _source_name(source: FromClause) -> str:
    if isinstance(source, Table):
        return f"table {source.fullname!r}"
    name = getattr(source, "name", None)
    kind = type(source).__name__.lower()
    return f"{kind} {name!r}" if isinstance(name, str) else f"a {kind} in the FROM"


def _describe_expression(expression: ColumnElement[Any]) -> str:
    if isinstance(expression, Column) and isinstance(expression.table, Table):
        return f"{expression.table.fullname}.{expression.name}"
    if isinstance(expression, Column):
        return expression.name
    try:
        return str(expression)
    except Exception:  # an expression only a specific dialect can render
        return type(expression).__name__


def _describe(key: SortKey) -> str:
    name = _describe_expression(key.expression)
    direction = "desc" if key.descending else "asc"
    nulls = "nulls-first" if key.nulls_first else "nulls-last"
    return f"{name}:{direction}:{nulls}"


def _order_terms(key: SortKey, dialect: Dialect) -> list[ColumnElement[Any]]:
    expression = key.expression
    term = expression.desc() if key.descending else expression.asc()
    if not key.nullable:
        # No NULLs: a plain direction, so that a plain index matches the ordering.
        return [term]
    nulls_largest = dialect.name in _NULLS_LARGEST
    default_nulls_first = nulls_largest == key.descending
    if key.nulls_first == default_nulls_first:
        return [term]
    if dialect.name in _NULLS_SYNTAX:
        return [term.nulls_first() if key.nulls_first else term.nulls_last()]
    # MySQL/MariaDB have no NULLS FIRST/LAST: sort on "is NULL" first (false < true).
    is_null = expression.is_(None)
    return [is_null.desc() if key.nulls_first else is_null.asc(), term]


_FLOOR = "_floor"


@dataclass(frozen=True, slots=True)
class _Bound:
    """A key's cursor value as bound parameters: ``full`` as the column's type binds it,
    and ``floor``, the lowest text of the same instant, where SQLite stores datetimes and
    times as text in several forms (see kysera.core._stored_time); else ``floor is full``."""

    full: Any
    floor: Any


def _bound_value(name: str, key: SortKey, dialect: Dialect) -> _Bound:
    full = _cursor_value(name, key, dialect)
    if dialect.name == "sqlite" and stored_as_time_text(key.expression.type):
        return _Bound(full, bindparam(name + _FLOOR, type_=ShortestTimeText(key.expression.type)))
    return _Bound(full, full)


def _after(keys: Sequence[SortKey], values: Sequence[_Bound | None], dialect_name: str) -> Any:
    """The condition for rows strictly after ``values`` in the ordering ``keys``.

    ``values`` holds the bound parameters of each key whose cursor value is not NULL, else
    None.
    """
    descending = keys[0].descending
    if (
        dialect_name not in _NO_ROW_VALUE_RANGE
        and all(not key.nullable and key.descending == descending for key in keys)
        and all(value is not None and value.floor is value.full for value in values)
    ):
        fulls = [value.full for value in values if value is not None]
        if len(keys) == 1:
            expression = keys[0].expression
            return expression < fulls[0] if descending else expression > fulls[0]
        left = tuple_(*(key.expression for key in keys))
        right = tuple_(*fulls)
        return left < right if descending else left > right

    # Nested OR expansion: T1 OR (E1 AND (T2 OR (E2 AND ... Tn))), built from the inside.
    condition: Any = None
    for key, value in reversed(list(zip(keys, values, strict=True))):
        strictly_after = _strictly_after(key, value)
        if condition is None:
            condition = strictly_after if strictly_after is not None else false()
            continue
        continued = and_(_equal(key, value), condition)
        condition = continued if strictly_after is None else or_(strictly_after, continued)
    # The redundant bound on the leading key (>= or <=) gives the planner an index range.
    bound = _at_or_after(keys[0], values[0])
    if len(keys) > 1 and bound is not None:
        return and_(bound, condition)
    return condition


def _strictly_after(key: SortKey, value: _Bound | None) -> Any:
    expression = key.expression
    if value is None:
        # Past a NULL, only non-NULL values remain when NULLs come first; none otherwise.
        return expression.is_not(None) if key.nulls_first else None
    beyond = expression < value.floor if key.descending else expression > value.full
    if key.nullable and not key.nulls_first:
        return or_(beyond, expression.is_(None))
    return beyond


def _equal(key: SortKey, value: _Bound | None) -> Any:
    if value is None:
        return key.expression.is_(None)
    if value.floor is value.full:
        return key.expression == value.full
    return and_(key.expression >= value.floor, key.expression <= value.full)


def _at_or_after(key: SortKey, value: _Bound | None) -> Any:
    expression = key.expression
    if value is None:
        return None if key.nulls_first else expression.is_(None)
    bound = expression <= value.full if key.descending else expression >= value.floor
    if key.nullable and not key.nulls_first:
        return or_(bound, expression.is_(None))
    return bound


def _value_check(expression: ColumnElement[Any]) -> Callable[[Any], bool]:
    """Whether a decoded cursor value can stand for a value of ``expression``'s type.

    Decided once per key when the plan is made, so that checking a cursor costs a call.
    """
    if isinstance(expression.type, Enum):
        known = frozenset(expression.type.enums)
        return lambda value: isinstance(value, str) and value in known
    python_type = _python_type(expression)
    if python_type is bool:
        return lambda value: isinstance(value, bool)
    if python_type is int:
        return lambda value: (
            type(value) is not bool and isinstance(value, int) and (value in _INT_RANGE)
        )
    if python_type is float:
        return lambda value: type(value) is not bool and isinstance(value, (int, float))
    if python_type is dt.date:
        return lambda value: isinstance(value, dt.date) and not isinstance(value, dt.datetime)
    if python_type is decimal.Decimal:
        # A signalling NaN is never a column's value, and drivers fail on it.
        return lambda value: isinstance(value, decimal.Decimal) and not value.is_snan()
    if python_type in (str, dt.datetime, dt.time, dt.timedelta, uuid.UUID, bytes):
        return lambda value: isinstance(value, python_type)
    return _anything


def _anything(value: Any) -> bool:
    return True


def _python_type(expression: ColumnElement[Any]) -> type | None:
    """The Python type of the expression's values, where its SQL type says (not for a
    TypeDecorator, whose values the user's code converts)."""
    sql_type = expression.type
    if isinstance(sql_type, TypeDecorator):
        return None
    try:
        return sql_type.python_type
    except NotImplementedError:
        return None


def _as_compared(key: SortKey, dialect: Dialect) -> SortKey:
    """The key as this dialect sorts and compares it, so that a cursor value read from a
    row compares equal to that row.

    SQLite has no exact decimal: a NUMERIC value may be a REAL (an aggregate's result, a
    value another program wrote), which the ``Numeric(p, s)`` result processor rounds to
    ``s`` places. The rounded value would then not equal its own row, so on SQLite such a
    key is sorted and compared as ``ROUND(expr, s)``, the value the cursor carries.
    """
    sql_type = key.expression.type
    if (
        dialect.name == "sqlite"
        and isinstance(sql_type, Numeric)
        and not isinstance(sql_type, Float)
        and sql_type.asdecimal
        and sql_type.scale is not None
    ):
        rounded = func.round(key.expression, sql_type.scale, type_=sql_type)
        return SortKey(rounded, key.descending, key.nulls_first, key.nullable, key.index)
    return key


def _cursor_value(name: str, key: SortKey, dialect: Dialect) -> ColumnElement[Any]:
    """The SQL standing for the key's cursor value in comparisons with the key.

    MySQL/MariaDB sort a native ENUM by its index (declaration order) but compare it with
    a string as text; ``FIELD(:value, 'first', 'second', ...)`` is the value's index, which
    the ENUM then compares with as a number, the way ORDER BY sorts.
    """
    labels = _native_enum_labels(key.expression)
    if labels is not None and dialect.name in _NO_ROW_VALUE_RANGE:
        parameter = bindparam(name, type_=String())
        return func.field(parameter, *(literal(label) for label in labels), type_=Integer())
    return bindparam(name, type_=_bind_type(key, dialect))


def _native_enum_labels(expression: ColumnElement[Any]) -> list[str] | None:
    sql_type = expression.type
    if isinstance(sql_type, Enum) and sql_type.native_enum:
        return list(sql_type.enums)
    return None


def _bind_type(key: SortKey, dialect: Dialect) -> Any:
    """The type to bind the key's cursor value with."""
    if dialect.name in _NO_ROW_VALUE_RANGE and _python_type(key.expression) is bytes:
        return UnhexedBytes()
    return key.expression.type
