"""The where-dialect on real databases: every operator, nesting, NULLs, escaping, errors."""

from __future__ import annotations

import datetime
import enum
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import InvalidQueryError, classify_database_errors
from kysera.repository import compile_where
from kysera.repository.where import COMPARISON_OPERATORS

PEOPLE = [
    {"id": 1, "name": "alice", "age": 30, "active": True},
    {"id": 2, "name": "bob", "age": 17, "active": False},
    {"id": 3, "name": "Carol", "age": None, "active": True},
    {"id": 4, "name": "100% pure", "age": 40, "active": False},
    {"id": 5, "name": "snake_case", "age": 25, "active": True},
    {"id": 6, "name": None, "age": 50, "active": False},
    {"id": 7, "name": "ünïcödé 中🙂", "age": 60, "active": True},
    {"id": 8, "name": "back\\slash", "age": 17, "active": True},
    {"id": 9, "name": "ALICE", "age": 31, "active": False},
    {"id": 10, "name": "100 pure", "age": None, "active": True},
    {"id": 11, "name": "snakeXcase", "age": 20, "active": False},
]


def binary_string(dialect: sa.Dialect, length: int) -> sa.types.TypeEngine[str]:
    """A VARCHAR that compares by code point, case-sensitively, on ``engine``'s database.

    PostgreSQL ``"C"``; MariaDB ``utf8mb4_nopad_bin`` (its ``utf8mb4_bin`` ignores trailing
    spaces); MySQL ``utf8mb4_0900_bin``; SQLite's default collation is already binary.
    """
    if dialect.name == "postgresql":
        return postgresql.VARCHAR(length, collation="C")
    if dialect.name == "mysql":
        collation = "utf8mb4_nopad_bin" if dialect.is_mariadb else "utf8mb4_0900_bin"
        return mysql.VARCHAR(length, charset="utf8mb4", collation=collation)
    return sa.String(length)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def people(kysera_engine: AsyncEngine) -> AsyncIterator[sa.Table]:
    metadata = sa.MetaData()
    async with kysera_engine.begin() as connection:
        # After connecting: only then does the dialect know whether it talks to MariaDB.
        table = sa.Table(
            "wh_people",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("name", binary_string(connection.dialect, 40), nullable=True),
            sa.Column("age", sa.Integer, nullable=True),
            sa.Column("active", sa.Boolean, nullable=False),
        )
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
        await connection.execute(table.insert(), PEOPLE)
    yield table
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)


async def find_ids(engine: AsyncEngine, table: sa.Table, where: Any) -> list[int]:
    """``SELECT id ... WHERE <where> ORDER BY id``, errors classified as a repository does."""
    statement = sa.select(table.c.id).order_by(table.c.id)
    condition = compile_where(table, where)
    if condition is not None:
        statement = statement.where(condition)
    async with classify_database_errors(engine.dialect.name), engine.connect() as connection:
        return list((await connection.execute(statement)).scalars())


ALL_IDS = [row["id"] for row in PEOPLE]

CASES: list[tuple[str, Any, list[int]]] = [
    # equality, NULL
    ("bare value is $eq", {"name": "alice"}, [1]),
    ("$eq", {"age": {"$eq": 17}}, [2, 8]),
    ("$eq is case-sensitive on a binary column", {"name": {"$eq": "ALICE"}}, [9]),
    ("bare None is IS NULL", {"age": None}, [3, 10]),
    ("$eq None is IS NULL", {"name": {"$eq": None}}, [6]),
    ("$ne keeps NULL rows", {"age": {"$ne": 17}}, [1, 3, 4, 5, 6, 7, 9, 10, 11]),
    ("$ne None is IS NOT NULL", {"age": {"$ne": None}}, [1, 2, 4, 5, 6, 7, 8, 9, 11]),
    ("$eq on a boolean", {"active": False}, [2, 4, 6, 9, 11]),
    ("$ne on a NOT NULL column", {"active": {"$ne": True}}, [2, 4, 6, 9, 11]),
    # ordering comparisons never match NULL
    ("$gt", {"age": {"$gt": 40}}, [6, 7]),
    ("$gte", {"age": {"$gte": 40}}, [4, 6, 7]),
    ("$lt", {"age": {"$lt": 20}}, [2, 8]),
    ("$lte", {"age": {"$lte": 20}}, [2, 8, 11]),
    ("$gt on strings compares code points", {"name": {"$gt": "s"}}, [5, 11, 7]),
    ("$between is inclusive", {"age": {"$between": [25, 31]}}, [1, 5, 9]),
    ("two operators on one column are ANDed", {"age": {"$gt": 17, "$lt": 31}}, [1, 5, 11]),
    (
        "a value beyond INTEGER compares as BIGINT",
        {"age": {"$lt": 2**40}},
        [1, 2, 4, 5, 6, 7, 8, 9, 11],
    ),
    ("$eq beyond INTEGER matches nothing", {"age": 2**31}, []),
    ("$in beyond INTEGER", {"age": {"$in": [17, -(2**63)]}}, [2, 8]),
    ("$between beyond INTEGER", {"age": {"$between": [-(2**40), 20]}}, [2, 8, 11]),
    # sets
    ("$in", {"name": {"$in": ["bob", "Carol", "nobody"]}}, [2, 3]),
    ("$in with None also matches NULL", {"age": {"$in": [17, None]}}, [2, 3, 8, 10]),
    ("$in empty matches nothing", {"age": {"$in": []}}, []),
    ("$nin keeps NULL rows", {"age": {"$nin": [17, 30]}}, [3, 4, 5, 6, 7, 9, 10, 11]),
    ("$nin with None drops NULL rows", {"age": {"$nin": [17, None]}}, [1, 4, 5, 6, 7, 9, 11]),
    ("$nin empty matches everything", {"age": {"$nin": []}}, ALL_IDS),
    ("$in accepts a tuple", {"id": {"$in": (1, 2)}}, [1, 2]),
    # NULL tests
    ("$is_null true", {"name": {"$is_null": True}}, [6]),
    ("$is_null false", {"age": {"$is_null": False}}, [1, 2, 4, 5, 6, 7, 8, 9, 11]),
    # patterns
    ("$like wildcards", {"name": {"$like": "snake_c%"}}, [5, 11]),
    ("$like escapes _ with a backslash", {"name": {"$like": "snake\\_c%"}}, [5]),
    ("$like _ is one character", {"name": {"$like": "snake_case"}}, [5, 11]),
    ("$like backslash escapes %", {"name": {"$like": "100\\%%"}}, [4]),
    ("$like escaped backslash", {"name": {"$like": "back\\\\slash"}}, [8]),
    ("$like is case-sensitive", {"name": {"$like": "a%"}}, [1]),
    ("$contains is case-sensitive", {"name": {"$contains": "LIC"}}, [9]),
    ("$startswith is case-sensitive", {"name": {"$startswith": "C"}}, [3]),
    ("$endswith is case-sensitive", {"name": {"$endswith": "ice"}}, [1]),
    ("$ilike", {"name": {"$ilike": "ALI%"}}, [1, 9]),
    ("$ilike lower-case pattern", {"name": {"$ilike": "carol"}}, [3]),
    ("$contains escapes %", {"name": {"$contains": "0%"}}, [4]),
    ("$contains escapes _", {"name": {"$contains": "e_c"}}, [5]),
    ("$contains a backslash", {"name": {"$contains": "\\"}}, [8]),
    ("$contains the escape character /", {"name": {"$contains": "/"}}, []),
    ("$contains unicode", {"name": {"$contains": "中🙂"}}, [7]),
    ("$startswith escapes %", {"name": {"$startswith": "100%"}}, [4]),
    ("$startswith", {"name": {"$startswith": "100"}}, [4, 10]),
    ("$endswith escapes _", {"name": {"$endswith": "_case"}}, [5]),
    (
        "pattern operators never match NULL",
        {"name": {"$like": "%"}},
        [1, 2, 3, 4, 5, 7, 8, 9, 10, 11],
    ),
    # logic
    ("several columns are ANDed", {"age": 17, "name": "bob"}, [2]),
    ("$or", {"$or": [{"age": {"$gte": 50}}, {"name": "bob"}]}, [2, 6, 7]),
    ("$and", {"$and": [{"age": {"$gte": 20}}, {"age": {"$lt": 30}}]}, [5, 11]),
    ("$and empty matches everything", {"$and": []}, ALL_IDS),
    ("$or empty matches nothing", {"$or": []}, []),
    ("$not is the exact complement", {"$not": {"age": {"$gt": 30}}}, [1, 2, 3, 5, 8, 10, 11]),
    ("$not of $or", {"$not": {"$or": [{"age": None}, {"active": True}]}}, [2, 4, 6, 9, 11]),
    (
        "$not of $and",
        {"$not": {"$and": [{"age": {"$lt": 30}}, {"active": False}]}},
        [1, 3, 4, 5, 6, 7, 8, 9, 10],
    ),
    ("$not of $ne is $eq", {"$not": {"age": {"$ne": 17}}}, [2, 8]),
    ("$not $not", {"$not": {"$not": {"age": 17}}}, [2, 8]),
    ("$not of $in empty", {"$not": {"age": {"$in": []}}}, ALL_IDS),
    ("$not under a column", {"age": {"$not": {"$gte": 30}}}, [2, 3, 5, 8, 10, 11]),
    (
        "$not of a pattern keeps NULL",
        {"$not": {"name": {"$contains": "a"}}},
        [2, 4, 6, 7, 9, 10],
    ),
    (
        "nesting",
        {
            "active": True,
            "$or": [
                {"age": {"$lt": 20}},
                {"$and": [{"name": {"$ilike": "%o%"}}, {"$not": {"age": None}}]},
            ],
        },
        [8],
    ),
]


@pytest.mark.parametrize(
    ("where", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
async def test_where_dialect(
    kysera_engine: AsyncEngine, people: sa.Table, where: Any, expected: list[int]
) -> None:
    assert await find_ids(kysera_engine, people, where) == sorted(expected)


async def test_a_sqlalchemy_expression_passes_through(
    kysera_engine: AsyncEngine, people: sa.Table
) -> None:
    condition = people.c.age > 50
    assert compile_where(people, condition) is condition
    assert await find_ids(kysera_engine, people, condition) == [7]


async def test_expressions_mix_with_dicts(kysera_engine: AsyncEngine, people: sa.Table) -> None:
    where = {"$or": [people.c.age > 50, {"name": "bob"}]}
    assert await find_ids(kysera_engine, people, where) == [2, 7]


@pytest.mark.parametrize("where", [None, {}])
async def test_no_filter(kysera_engine: AsyncEngine, people: sa.Table, where: Any) -> None:
    assert compile_where(people, where) is None
    assert await find_ids(kysera_engine, people, where) == ALL_IDS


@pytest.mark.parametrize(
    "dialect",
    [postgresql.asyncpg.dialect(), mysql.aiomysql.dialect(), sqlite.aiosqlite.dialect()],
    ids=["postgresql", "mysql", "sqlite"],
)
def test_values_are_bound_parameters_never_sql_text(dialect: sa.Dialect) -> None:
    table = sa.Table("wh_users", sa.MetaData(), sa.Column("name", sa.String(20)))
    hostile = "x'); DROP TABLE wh_users; --"
    every_operator = {
        "$eq": hostile,
        "$gt": hostile,
        "$in": [hostile],
        "$between": [hostile, hostile],
        "$like": hostile,
        "$ilike": hostile,
        "$contains": hostile,
        "$startswith": hostile,
        "$endswith": hostile,
    }
    condition = compile_where(table, {"$or": [{"name": every_operator}], "$not": {"name": hostile}})
    assert condition is not None
    compiled = sa.select(table).where(condition).compile(dialect=dialect)
    assert "DROP" not in str(compiled)
    assert len(compiled.params) >= len(every_operator)


# -- errors --------------------------------------------------------------------------------

USERS = sa.Table(
    "wh_users",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(20)),
    sa.Column("age", sa.Integer),
)

ERRORS: list[tuple[Any, str]] = [
    (
        {"agee": 1},
        "unknown column 'agee' for table wh_users; valid columns: age, id, name"
        " (did you mean 'age'?)",
    ),
    (
        {"age": {"$gtt": 1}},
        "unknown operator '$gtt' for column 'age'; valid operators: $between, $contains,",
    ),
    ({"age": {"gt": 1}}, "a dict under a column holds operators"),
    (
        {"$nor": []},
        "where['$nor']: unknown operator '$nor' next to column names; "
        "valid operators: $and, $not, $or",
    ),
    ({"$gt": 1}, "comparison operators go inside a column"),
    ({"age": "18"}, "where['age']: the Integer column 'age' takes an integer, not str '18'"),
    ({"age": [1, 2]}, "for several values use {'$in': [...]}"),
    ({"age": True}, "takes an integer, not bool True"),
    ({"age": 2**64}, "out of the 64-bit range of the integer column 'age'"),
    ({"age": 10**5000}, "where['age']: <int> is out of the 64-bit range"),
    ({"age": {"$between": {1, 2}}}, "$between takes a [low, high] pair"),
    (
        {"age": {"$in": [1, "2"]}},
        "where['age']['$in'][1]: the Integer column 'age' takes an integer",
    ),
    ({"age": {"$in": "12"}}, "expected a list of values, not str '12'"),
    ({"age": {"$gt": None}}, "$gt None matches nothing; use {'$is_null': True}"),
    ({"age": {"$between": [1]}}, "$between takes a [low, high] pair"),
    ({"age": {"$between": [1, None]}}, "$between takes a [low, high] pair"),
    ({"age": {"$is_null": "yes"}}, "$is_null takes true or false"),
    ({"age": {"$like": "1%"}}, "$like needs a string column; 'age' is Integer"),
    ({"name": {"$contains": 5}}, "$contains takes a string, not int 5"),
    ({"name": {"$like": "50\\"}}, "the pattern ends with the escape character"),
    ({"name": "a\x00b"}, "NUL"),
    ({"name": "\ud800"}, "lone surrogate"),
    ({"name": {}}, "an empty operator dict"),
    ({"$or": {"age": 1}}, "where['$or']: expected a list of condition dicts"),
    ({"$or": [1]}, "where['$or'][0]: expected a dict of conditions, not int 1"),
    ({"$not": "age"}, "expected a dict of conditions"),
    ({1: 2}, "keys must be column names or operators, not int 1"),
    ({"name": {"$eq": USERS.c.age}}, "expected a plain value"),
    ("age > 1", "where must be a dict or a SQLAlchemy boolean expression, not str"),
    (sa.text("age > 1"), "not TextClause"),
]


@pytest.mark.parametrize(("where", "message"), ERRORS, ids=[message for _, message in ERRORS])
def test_invalid_where_raises_invalid_query_error(where: Any, message: str) -> None:
    with pytest.raises(InvalidQueryError) as raised:
        compile_where(USERS, where)
    assert message in str(raised.value)
    assert raised.value.code == "INVALID_QUERY"


def test_deep_nesting_is_rejected_not_recursed() -> None:
    where: dict[str, Any] = {"age": 1}
    for _ in range(10_000):
        where = {"$not": where}
    with pytest.raises(InvalidQueryError, match="nest deeper than"):
        compile_where(USERS, where)


def test_the_sql_reads_like_hand_written_sql() -> None:
    condition = compile_where(
        USERS, {"age": {"$ne": 3}, "$or": [{"name": None}, {"id": {"$nin": [1, 2]}}]}
    )
    assert str(condition) == (
        "(wh_users.age != :age_1 OR wh_users.age IS NULL) "
        "AND (wh_users.name IS NULL OR (wh_users.id NOT IN (__[POSTCOMPILE_id_1])))"
    )


NUMBERS = sa.Table(
    "wh_numbers",
    sa.MetaData(),
    sa.Column("ratio", sa.Float),
    sa.Column("price", sa.Numeric(10, 2)),
    sa.Column("flag", sa.Boolean),
)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ({"ratio": float("nan")}, "the Float column 'ratio' takes a finite number, not float nan"),
        ({"ratio": 10**400}, "takes a number within the range of a float"),
        ({"price": "1.50"}, "the Numeric column 'price' takes a number, not str '1.50'"),
        ({"price": True}, "takes a number, not bool True"),
        ({"flag": 1}, "the Boolean column 'flag' takes true or false, not int 1"),
    ],
)
def test_values_must_fit_the_column_type(where: Any, message: str) -> None:
    with pytest.raises(InvalidQueryError) as raised:
        compile_where(NUMBERS, where)
    assert message in str(raised.value)


def test_numbers_of_any_kind_compare_with_numeric_columns() -> None:
    condition = compile_where(NUMBERS, {"ratio": {"$gt": 1}, "price": {"$lt": 2.5}})
    assert str(condition) == "wh_numbers.ratio > :ratio_1 AND wh_numbers.price < :price_1"


class Kind(enum.Enum):
    click = "click"
    view = "view"


class Upper(sa.TypeDecorator[str]):
    """A user's own type: Kysera leaves its values to its bind processing."""

    impl = sa.String(20)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        return None if value is None else str(value).upper()


EVENTS_METADATA = sa.MetaData()
EVENTS = sa.Table(
    "wh_events",
    EVENTS_METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.Enum(Kind, name="wh_event_kind"), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("at", sa.DateTime, nullable=True),
    sa.Column("ref", sa.Uuid, nullable=False),
    sa.Column("code", Upper, nullable=True),
)
REF = uuid.UUID("12345678-1234-5678-1234-567812345678")
EVENT_ROWS = [
    {
        "id": 1,
        "kind": Kind.click,
        "day": datetime.date(2026, 1, 1),
        "at": None,
        "ref": REF,
        "code": "AB",
    },
    {
        "id": 2,
        "kind": Kind.view,
        "day": datetime.date(2026, 1, 2),
        "at": datetime.datetime(2026, 1, 2, 12, 30),
        "ref": uuid.UUID(int=2),
        "code": "cd",
    },
    {
        "id": 3,
        "kind": Kind.view,
        "day": datetime.date(2026, 1, 3),
        "at": datetime.datetime(2026, 1, 3, 8, 0),
        "ref": uuid.UUID(int=3),
        "code": None,
    },
]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def events(kysera_engine: AsyncEngine) -> AsyncIterator[sa.Table]:
    async with kysera_engine.begin() as connection:
        await connection.run_sync(EVENTS_METADATA.drop_all)
        await connection.run_sync(EVENTS_METADATA.create_all)
        await connection.execute(EVENTS.insert(), EVENT_ROWS)
    yield EVENTS
    async with kysera_engine.begin() as connection:
        await connection.run_sync(EVENTS_METADATA.drop_all)


TYPED_CASES: list[tuple[str, Any, list[int]]] = [
    ("an enum member", {"kind": Kind.view}, [2, 3]),
    ("an enum name", {"kind": {"$in": ["click"]}}, [1]),
    ("$ne on an enum", {"kind": {"$ne": "click"}}, [2, 3]),
    (
        "a date range",
        {"day": {"$between": [datetime.date(2026, 1, 2), datetime.date(2026, 1, 9)]}},
        [2, 3],
    ),
    ("a datetime", {"at": {"$gt": datetime.datetime(2026, 1, 2, 13, 0)}}, [3]),
    ("$ne on a datetime keeps NULL", {"at": {"$ne": datetime.datetime(2026, 1, 3, 8, 0)}}, [1, 2]),
    ("a UUID", {"ref": REF}, [1]),
    ("a TypeDecorator's own bind processing", {"code": "cd"}, [2]),
    ("a pattern on a TypeDecorator over a string", {"code": {"$startswith": "A"}}, [1]),
]


@pytest.mark.parametrize(
    ("where", "expected"), [case[1:] for case in TYPED_CASES], ids=[case[0] for case in TYPED_CASES]
)
async def test_typed_columns(
    kysera_engine: AsyncEngine, events: sa.Table, where: Any, expected: list[int]
) -> None:
    assert await find_ids(kysera_engine, events, where) == expected


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ({"kind": "hover"}, "takes one of click, view, not str 'hover'"),
        ({"kind": {"$like": "c%"}}, "$like needs a string column; 'kind' is"),
        ({"day": "2026-01-01"}, "the Date column 'day' takes a date, not str '2026-01-01'"),
        ({"at": datetime.date(2026, 1, 1)}, "the DateTime column 'at' takes a datetime"),
        ({"ref": 5}, "the Uuid column 'ref' takes a UUID, not int 5"),
    ],
)
def test_typed_columns_reject_values_of_another_type(where: Any, message: str) -> None:
    with pytest.raises(InvalidQueryError) as raised:
        compile_where(EVENTS, where)
    assert message in str(raised.value)


async def test_in_takes_more_values_than_a_statement_has_parameters(
    kysera_engine: AsyncEngine, people: sa.Table
) -> None:
    many = [*range(-40_000, 0), 1]  # PostgreSQL allows 32,767 parameters per statement
    assert await find_ids(kysera_engine, people, {"id": {"$in": many}}) == [1]
    assert await find_ids(kysera_engine, people, {"id": {"$nin": many}}) == ALL_IDS[1:]


def test_in_is_one_array_parameter_on_postgresql() -> None:
    # One statement text whatever the list's length, so asyncpg prepares it once.
    def sql(values: list[int]) -> str:
        condition = compile_where(USERS, {"id": {"$in": values}})
        assert condition is not None
        return str(condition.compile(dialect=postgresql.asyncpg.dialect()))

    assert sql([1]) == sql([1, 2, 3]) == "wh_users.id = ANY ($1::INTEGER[])"


@pytest.mark.parametrize(
    ("operator", "suggestion"),
    [
        ("$regex", None),  # no operator is close: the shared "$" must not make one look so
        ("$like", None),
        ("$gtt", "$gt"),
        ("$lte ", "$lte"),
        ("$nin_", "$nin"),
        ("$betwen", "$between"),
        ("$cotnains", "$contains"),
    ],
)
def test_only_close_names_are_suggested(operator: str, suggestion: str | None) -> None:
    with pytest.raises(InvalidQueryError) as raised:
        compile_where(USERS, {"age": {operator: 1}})
    message = str(raised.value)
    if suggestion is None:
        assert "did you mean" not in message
    else:
        assert message.endswith(f"(did you mean {suggestion!r}?)")


@settings(deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz$_", max_size=12))
def test_a_suggestion_is_always_within_two_edits(name: str) -> None:
    from kysera.repository._messages import closest_name, edit_distance

    suggestion = closest_name(name, COMPARISON_OPERATORS)
    if suggestion is not None:
        assert edit_distance(name.lstrip("$"), suggestion.lstrip("$")) <= 2


@settings(deadline=None)
@given(st.sampled_from(COMPARISON_OPERATORS), st.integers(min_value=1), st.sampled_from("xyz"))
def test_one_typo_in_an_operator_is_caught(operator: str, position: int, letter: str) -> None:
    from kysera.repository._messages import closest_name

    index = 1 + position % (len(operator) - 1)  # never the "$"
    typo = operator[:index] + letter + operator[index + 1 :]
    assert closest_name(typo, COMPARISON_OPERATORS) is not None
