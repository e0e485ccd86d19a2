"""Property tests of the where-dialect against every database.

1. A random where-dict returns exactly the rows that the same condition, evaluated in Python
   over the table's contents, selects.
2. Random junk (quotes, SQL fragments, odd nesting, wrong types: anything a JSON request
   could carry) either raises ``InvalidQueryError`` or runs as a harmless SELECT, and never
   changes the table. (SQLAlchemy expressions are code, not input: they pass through as given.)

Strings compare by code point on every database here (binary collations, see
``binary_string``); data and patterns use only ASCII letters for case, plus caseless
characters beyond ASCII, because case folding outside ASCII differs between databases.
"""

from __future__ import annotations

import contextlib
import random
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest_asyncio
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import InvalidQueryError, classify_database_errors
from kysera.repository import compile_order_by, compile_where

# Wildcards, both escape characters, GLOB's specials, quotes, a space, and caseless non-ASCII.
ALPHABET = "aAbB%_\\/*?[]' 中🙂"
EXAMPLES = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def binary_string(dialect: sa.Dialect, length: int) -> sa.types.TypeEngine[str]:
    """A VARCHAR that compares by code point, case-sensitively, without trailing-space padding."""
    if dialect.name == "postgresql":
        return postgresql.VARCHAR(length, collation="C")
    if dialect.name == "mysql":
        collation = "utf8mb4_nopad_bin" if dialect.is_mariadb else "utf8mb4_0900_bin"
        return mysql.VARCHAR(length, charset="utf8mb4", collation=collation)
    return sa.String(length)


def sample_rows() -> list[dict[str, Any]]:
    """60 rows with small ints, NULLs and short strings of ``ALPHABET`` (fixed seed)."""
    rng = random.Random(6)

    def text() -> str | None:
        if rng.random() < 0.15:
            return None
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 5)))

    return [
        {
            "id": row_id,
            "n": None if rng.random() < 0.2 else rng.randint(-3, 6),
            "m": rng.randint(0, 4),
            "s": text(),
        }
        for row_id in range(1, 61)
    ]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def samples(
    kysera_engine: AsyncEngine,
) -> AsyncIterator[tuple[sa.Table, list[dict[str, Any]]]]:
    """The ``wh_samples`` table and its contents as read back from the database."""
    metadata = sa.MetaData()
    async with kysera_engine.begin() as connection:
        table = sa.Table(
            "wh_samples",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("n", sa.Integer, nullable=True),
            sa.Column("m", sa.Integer, nullable=False),
            sa.Column("s", binary_string(connection.dialect, 10), nullable=True),
        )
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
        await connection.execute(table.insert(), sample_rows())
    contents = await snapshot(kysera_engine, table)
    assert contents == sample_rows()  # the databases store every string exactly
    yield table, contents
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)


async def snapshot(engine: AsyncEngine, table: sa.Table) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        result = await connection.execute(sa.select(table).order_by(table.c.id))
        return [dict(row) for row in result.mappings()]


async def find_ids(engine: AsyncEngine, table: sa.Table, where: Any) -> list[int]:
    statement = sa.select(table.c.id).order_by(table.c.id)
    condition = compile_where(table, where)
    if condition is not None:
        statement = statement.where(condition)
    async with classify_database_errors(engine.dialect.name), engine.connect() as connection:
        return list((await connection.execute(statement)).scalars())


# -- the same conditions, evaluated in Python ---------------------------------------------


def like_regex(pattern: str) -> re.Pattern[str]:
    """A LIKE pattern (``%``, ``_``, ``\\`` escapes) as an anchored regular expression."""
    parts: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            parts.append(re.escape(next(chars)))
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def equals(value: Any, operand: Any) -> bool:
    return value is None if operand is None else value is not None and value == operand


def operator_holds(value: Any, operator: str, operand: Any) -> bool:
    if operator == "$eq":
        return equals(value, operand)
    if operator == "$ne":
        return not equals(value, operand)
    if operator == "$in":
        return any(equals(value, item) for item in operand)
    if operator == "$nin":
        return not any(equals(value, item) for item in operand)
    if operator == "$is_null":
        return (value is None) == operand
    if operator == "$not":
        return not field_holds(value, operand)
    if value is None:  # every other comparison is unknown, so false, for NULL
        return False
    if operator == "$between":
        return bool(operand[0] <= value <= operand[1])
    if operator == "$like":
        return like_regex(operand).fullmatch(value) is not None
    if operator == "$ilike":
        return like_regex(operand.lower()).fullmatch(value.lower()) is not None
    comparisons = {
        "$gt": lambda: value > operand,
        "$gte": lambda: value >= operand,
        "$lt": lambda: value < operand,
        "$lte": lambda: value <= operand,
        "$contains": lambda: operand in value,
        "$startswith": lambda: value.startswith(operand),
        "$endswith": lambda: value.endswith(operand),
    }
    return bool(comparisons[operator]())


def field_holds(value: Any, condition: Any) -> bool:
    if not isinstance(condition, Mapping):
        return equals(value, condition)
    return all(operator_holds(value, op, operand) for op, operand in condition.items())


def holds(row: Mapping[str, Any], where: Mapping[str, Any]) -> bool:
    for key, condition in where.items():
        if key == "$and":
            result = all(holds(row, item) for item in condition)
        elif key == "$or":
            result = any(holds(row, item) for item in condition)
        elif key == "$not":
            result = not holds(row, condition)
        else:
            result = field_holds(row[key], condition)
        if not result:
            return False
    return True


# -- random where-dicts --------------------------------------------------------------------

# Small numbers, and some beyond the 32-bit INTEGER columns (compared as BIGINT).
INTS = st.integers(-4, 7) | st.sampled_from([2**31, -(2**31) - 1, 2**63 - 1, -(2**63)])
TEXTS = st.text(ALPHABET, max_size=4)
PATTERNS = st.lists(
    st.sampled_from(["%", "_", "\\%", "\\_", "\\\\", "a", "A", "b", "*", "?", "[", "中", "'"]),
    max_size=4,
).map("".join)


def field_condition(values: st.SearchStrategy[Any], text: bool) -> st.SearchStrategy[Any]:
    """A condition on one column whose values come from ``values``."""
    operators: list[st.SearchStrategy[tuple[str, Any]]] = [
        st.tuples(st.sampled_from(["$eq", "$ne"]), values | st.none()),
        st.tuples(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), values),
        st.tuples(st.sampled_from(["$in", "$nin"]), st.lists(values | st.none(), max_size=3)),
        st.tuples(st.just("$between"), st.tuples(values, values).map(sorted)),
        st.tuples(st.just("$is_null"), st.booleans()),
    ]
    if text:
        operators += [
            st.tuples(st.sampled_from(["$like", "$ilike"]), PATTERNS),
            st.tuples(st.sampled_from(["$contains", "$startswith", "$endswith"]), TEXTS),
        ]
    operator_dict = st.lists(st.one_of(operators), min_size=1, max_size=2).map(dict)
    negated = operator_dict.map(lambda condition: {"$not": condition})
    return st.one_of(values, st.none(), operator_dict, negated)


COLUMN_DICTS = st.fixed_dictionaries(
    {},
    optional={
        "n": field_condition(INTS, text=False),
        "m": field_condition(INTS, text=False),
        "s": field_condition(TEXTS, text=True),
    },
)


def combine(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    logical = st.one_of(
        st.lists(children, max_size=3).map(lambda items: {"$and": items}),
        st.lists(children, max_size=3).map(lambda items: {"$or": items}),
        children.map(lambda item: {"$not": item}),
    )
    return st.tuples(COLUMN_DICTS, logical).map(lambda pair: {**pair[0], **pair[1]})


WHERE_DICTS = st.recursive(COLUMN_DICTS, combine, max_leaves=8)


@EXAMPLES
@given(where=WHERE_DICTS)
async def test_where_returns_the_rows_the_python_predicate_selects(
    kysera_engine: AsyncEngine,
    samples: tuple[sa.Table, list[dict[str, Any]]],
    where: dict[str, Any],
) -> None:
    table, contents = samples
    expected = [row["id"] for row in contents if holds(row, where)]
    assert await find_ids(kysera_engine, table, where) == expected


# -- random junk ---------------------------------------------------------------------------

SQL_FRAGMENTS = [
    "'",
    '"',
    "`",
    "' OR '1'='1",
    "1; DROP TABLE wh_samples; --",
    "'); DELETE FROM wh_samples; --",
    "UPDATE wh_samples SET n = 0",
    "\\",
    "%",
    "_",
    "/*",
    "n = n",
    "$where",
    "s; --",
]
OPERATORS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$between", "$is_null"]
OPERATORS += ["$like", "$ilike", "$contains", "$startswith", "$endswith", "$not", "$and", "$or"]
# Mostly names that exist, so that much of the junk gets past the first check.
KEYS = st.one_of(
    st.sampled_from(["n", "m", "s", "$and", "$or", "$not"]),
    st.sampled_from(OPERATORS),
    st.sampled_from(["id", "S", "n ", "wh_samples.n", "s--", "$regex", "$where", "$", ""]),
    st.sampled_from(SQL_FRAGMENTS),
    st.text(max_size=5),
)
SCALARS = st.one_of(
    INTS,
    TEXTS,
    st.sampled_from(SQL_FRAGMENTS),
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.decimals(allow_nan=True),
    st.text(max_size=8),
    st.binary(max_size=4),
)
JUNK = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.dictionaries(KEYS, children, max_size=3),
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
    ),
    max_leaves=10,
)
JUNK_WHERE = st.one_of(
    st.dictionaries(KEYS, JUNK, max_size=3),
    st.tuples(WHERE_DICTS, st.dictionaries(KEYS, JUNK, max_size=2)).map(
        lambda pair: {**pair[0], **pair[1]}
    ),
    JUNK,
)


@EXAMPLES
@given(where=JUNK_WHERE)
async def test_junk_raises_invalid_query_error_and_never_changes_the_table(
    kysera_engine: AsyncEngine, samples: tuple[sa.Table, list[dict[str, Any]]], where: Any
) -> None:
    table, contents = samples
    with contextlib.suppress(InvalidQueryError):
        await find_ids(kysera_engine, table, where)
    assert await snapshot(kysera_engine, table) == contents


def test_the_python_predicate_agrees_with_known_answers() -> None:
    row = {"id": 1, "n": None, "m": 2, "s": "a%b"}
    assert holds(row, {"n": {"$ne": 1}})
    assert not holds(row, {"n": {"$gt": 1}})
    assert holds(row, {"$not": {"n": {"$gt": 1}}})
    assert holds(row, {"s": {"$like": "a\\%_"}})
    assert not holds(row, {"s": {"$like": "a\\_%"}})
    assert holds(row, {"$or": [{"m": 3}, {"s": {"$contains": "%"}}]})
    assert not holds(row, {"$or": []})
    assert holds(row, {"n": {"$in": [None]}, "m": {"$nin": []}})


# -- order specs ---------------------------------------------------------------------------

SORT_KEYS = st.sampled_from(["m", "-m", ("m", "asc"), ("m", "DESC"), "n", "-n"])


def sort_key(spec: str | tuple[str, str]) -> tuple[str, bool]:
    """``(column, descending)`` of an order spec, worked out independently of Kysera."""
    if isinstance(spec, tuple):
        return spec[0], spec[1].lower() == "desc"
    return spec.removeprefix("-"), spec.startswith("-")


@EXAMPLES
@given(specs=st.lists(SORT_KEYS, max_size=3))
async def test_order_specs_sort_like_python(
    kysera_engine: AsyncEngine,
    samples: tuple[sa.Table, list[dict[str, Any]]],
    specs: list[str | tuple[str, str]],
) -> None:
    table, contents = samples
    order_by = [*specs, "id"]  # a unique last key: one right answer
    statement = sa.select(table.c.id).order_by(*compile_order_by(table, order_by))
    rows = list(contents)
    if any(sort_key(spec)[0] == "n" for spec in specs):
        # Where NULLs sort is the database's choice (see docs/where.md): leave them out.
        statement = statement.where(table.c.n.is_not(None))
        rows = [row for row in rows if row["n"] is not None]
    async with kysera_engine.connect() as connection:
        ids = list((await connection.execute(statement)).scalars())

    for name, descending in map(sort_key, reversed(order_by)):  # stable sorts, last key first
        rows.sort(key=lambda row, name=name: row[name], reverse=descending)
    assert ids == [row["id"] for row in rows]


@EXAMPLES
@given(order_by=JUNK)
async def test_junk_order_specs_raise_invalid_query_error(
    kysera_engine: AsyncEngine, samples: tuple[sa.Table, list[dict[str, Any]]], order_by: Any
) -> None:
    table, _ = samples
    try:
        clauses = compile_order_by(table, order_by)
    except InvalidQueryError:
        return
    async with kysera_engine.connect() as connection:
        await connection.execute(sa.select(table.c.id).order_by(*clauses))
