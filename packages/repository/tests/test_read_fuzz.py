"""Fuzz of every repository read method's arguments (issue 15; SPEC §7 "hostile input").

Whatever a request could carry as ``where``, ``order_by``, ``limit``, ``offset``, ``page``,
``columns``, ids or a cursor, a read method returns a result or raises a `KyseraError`
subclass, and the table is unchanged. One table with a column of every common type is
created once per database and reused; each example is one call.

The number of examples comes from ``KYSERA_FUZZ_EXAMPLES`` (default 2,000 per database, what
CI runs); set it lower for a quick local run, e.g. ``KYSERA_FUZZ_EXAMPLES=200``.
"""

from __future__ import annotations

import datetime
import decimal
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import KyseraError
from kysera.repository import Repository, create_repository

EXAMPLES = int(os.environ.get("KYSERA_FUZZ_EXAMPLES", "2000"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

metadata = sa.MetaData()
fuzzed = sa.Table(
    "fz_rows",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("n", sa.Integer, nullable=True),
    sa.Column("big", sa.BigInteger, nullable=True),
    sa.Column("small", sa.SmallInteger, nullable=True),
    sa.Column("f", sa.Float, nullable=True),
    sa.Column("d", sa.Numeric(10, 2), nullable=True),
    sa.Column("s", sa.String(20), nullable=True),
    sa.Column("t", sa.Text, nullable=True),
    sa.Column("b", sa.Boolean, nullable=True),
    sa.Column("at", sa.DateTime, nullable=True),
    sa.Column("day", sa.Date, nullable=True),
    sa.Column("span", sa.Interval, nullable=True),
    sa.Column("u", sa.Uuid, nullable=True),
    sa.Column("j", sa.JSON, nullable=True),
    sa.Column("kind", sa.Enum("a", "b", name="fz_kind", native_enum=False), nullable=True),
)
COLUMNS = [column.key for column in fuzzed.columns]

ROWS = [
    {
        "id": index,
        "n": None if index % 4 == 0 else index - 3,
        "big": index * 2**40,
        "small": index,
        "f": index / 3,
        "d": decimal.Decimal(index) / 4,
        "s": f"s{index}%_",
        "t": "text" * index,
        "b": index % 2 == 0,
        "at": datetime.datetime(2024, 1, index % 28 + 1, 12, index),
        "day": datetime.date(2024, 2, index % 28 + 1),
        "span": datetime.timedelta(minutes=index),
        "u": uuid.UUID(int=index),
        "j": {"k": index, "l": [index]},
        "kind": "a" if index % 3 else None,
    }
    for index in range(1, 13)
]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def repo(kysera_engine: AsyncEngine) -> AsyncIterator[Repository[Any]]:
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
        await connection.execute(fuzzed.insert(), ROWS)
    yield create_repository(kysera_engine, fuzzed)
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def contents(kysera_engine: AsyncEngine, repo: Repository[Any]) -> list[Any]:
    return await snapshot(kysera_engine)


async def snapshot(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as connection:
        result = await connection.execute(sa.select(fuzzed).order_by(fuzzed.c.id))
        return [tuple(row) for row in result]


# -- strategies ----------------------------------------------------------------------------

SQL_FRAGMENTS = ["'", '"', "`", "' OR '1'='1", "1; DROP TABLE fz_rows; --", "\\", "%", "_"]
HUGE_INTS = st.sampled_from([2**31, 2**32, 2**63 - 1, 2**63, 2**64, 2**70, -(2**63), -(2**63) - 1])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-20, max_value=20),
    HUGE_INTS,
    st.integers(),
    st.floats(),
    st.decimals(),
    st.text(max_size=8),
    st.sampled_from(SQL_FRAGMENTS),
    st.sampled_from(["\x00", "\ud800", "a" * 300, "2024-01-02", "1 day"]),
    st.binary(max_size=4),
    st.datetimes(),
    st.datetimes(timezones=st.just(datetime.UTC)),
    st.dates(),
    st.times(),
    st.timedeltas(),
    st.uuids(),
    st.uuids().map(str),
    st.uuids().map(lambda value: value.hex),
    st.just(object()),
    st.frozensets(st.integers(0, 3), max_size=3),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.sets(st.integers(0, 5), max_size=3),
        st.dictionaries(st.text(max_size=3), children, max_size=2),
    ),
    max_leaves=6,
)
# Values that fit each column (so that many calls get past the checks and reach the
# database), mixed with anything at all.
SMALL_INTS = st.one_of(st.integers(min_value=-5, max_value=15), HUGE_INTS)
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=3)),
    lambda children: st.one_of(
        st.lists(children, max_size=2), st.dictionaries(st.text(max_size=2), children, max_size=2)
    ),
    max_leaves=4,
)
FITTING: dict[str, st.SearchStrategy[Any]] = {
    "id": SMALL_INTS,
    "n": SMALL_INTS,
    "big": SMALL_INTS,
    "small": SMALL_INTS,
    "f": st.floats(min_value=-10, max_value=10),
    "d": st.decimals(min_value=-100, max_value=100, places=2),
    "s": st.one_of(st.text(max_size=6), st.sampled_from(["s1%_", "s%", "S1", *SQL_FRAGMENTS])),
    "t": st.text(max_size=6),
    "b": st.booleans(),
    "at": st.datetimes(min_value=datetime.datetime(2023, 12, 1)),
    "day": st.dates(min_value=datetime.date(2024, 1, 1), max_value=datetime.date(2024, 3, 1)),
    "span": st.timedeltas(min_value=datetime.timedelta(0), max_value=datetime.timedelta(hours=1)),
    "u": st.one_of(st.uuids(), st.integers(0, 14).map(lambda n: str(uuid.UUID(int=n)))),
    "j": JSON_VALUES,
    "kind": st.sampled_from(["a", "b", "c"]),
}


def values_for(name: str) -> st.SearchStrategy[Any]:
    fitting = FITTING[name]
    return st.one_of(*[fitting] * 6, SCALARS)


def condition_for(name: str) -> st.SearchStrategy[Any]:
    value = values_for(name)
    operand = st.one_of(
        value,
        value,
        st.lists(value, max_size=4),
        st.tuples(value, value).map(list),
        st.booleans(),
        VALUES,
    )
    operators = st.dictionaries(
        st.one_of(*[st.sampled_from(OPERATORS)] * 6, st.sampled_from(["$regex", "eq"])),
        operand,
        min_size=1,
        max_size=2,
    )
    return st.one_of(value, value, operators, operators, operators.map(lambda ops: {"$not": ops}))


FITTING_DICTS = st.lists(
    st.sampled_from(COLUMNS).flatmap(lambda name: condition_for(name).map(lambda c: (name, c))),
    max_size=3,
).map(dict)
OPERATORS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$between", "$is_null"]
OPERATORS += ["$like", "$ilike", "$contains", "$startswith", "$endswith", "$not"]
FIELD_KEYS = st.one_of(st.sampled_from(COLUMNS), st.sampled_from(["nope", "", "ID", "$where"]))
OPERATOR_DICTS = st.dictionaries(
    st.one_of(st.sampled_from(OPERATORS), st.sampled_from(["$regex", "eq", 1])),
    VALUES,
    min_size=1,
    max_size=2,
)
COLUMN_DICTS = st.one_of(
    FITTING_DICTS,
    FITTING_DICTS,
    FITTING_DICTS,
    st.dictionaries(FIELD_KEYS, st.one_of(VALUES, OPERATOR_DICTS), max_size=3),
)
WHERE = st.one_of(
    st.none(),
    st.recursive(
        COLUMN_DICTS,
        lambda children: st.one_of(
            st.lists(children, max_size=3).map(lambda items: {"$and": items}),
            st.lists(children, max_size=3).map(lambda items: {"$or": items}),
            children.map(lambda item: {"$not": item}),
            st.tuples(children, children).map(lambda pair: {**pair[0], **pair[1]}),
        ),
        max_leaves=6,
    ),
    VALUES,
)
ORDER_ITEMS = st.one_of(
    st.sampled_from(COLUMNS),
    st.sampled_from(COLUMNS).map(lambda name: "-" + name),
    st.tuples(st.sampled_from(COLUMNS), st.sampled_from(["asc", "desc", "up", ""])),
    st.text(max_size=5),
    SCALARS,
)
GOOD_ORDER_ITEMS = st.one_of(
    st.sampled_from(COLUMNS), st.sampled_from(COLUMNS).map(lambda name: "-" + name)
)
ORDER_BY = st.one_of(
    st.none(),
    GOOD_ORDER_ITEMS,
    st.lists(GOOD_ORDER_ITEMS, max_size=3),
    ORDER_ITEMS,
    st.lists(ORDER_ITEMS, max_size=3),
)
VALID_NUMBERS = st.one_of(st.none(), st.integers(min_value=1, max_value=5))
NUMBERS = st.one_of(
    *[VALID_NUMBERS] * 6,
    st.integers(min_value=0, max_value=20),
    st.integers(min_value=-3, max_value=30),
    HUGE_INTS,
    st.integers(),
    st.floats(),
    st.booleans(),
    st.text(max_size=3),
)
COLUMN_LISTS = st.one_of(
    st.none(),
    st.lists(st.one_of(st.sampled_from(COLUMNS), SCALARS), max_size=3),
    SCALARS,
    st.dictionaries(st.sampled_from(COLUMNS), st.integers(), max_size=2),
)
IDS = st.one_of(SCALARS, SMALL_INTS, SMALL_INTS, st.lists(SCALARS, max_size=2))
ID_LISTS = st.one_of(
    st.lists(SMALL_INTS, max_size=5),
    st.lists(st.one_of(SMALL_INTS, SCALARS), max_size=5),
    SCALARS,
)
CURSORS = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.sampled_from(SQL_FRAGMENTS),
    st.binary(max_size=8),
    st.integers(),
    # Base64-looking text, some of it valid JSON once decoded.
    st.sampled_from(["e30", "W10", "eyJrIjpbMV19", "bnVsbA", "eyJvIjoiIiwiayI6W119", "===="]),
)
OPTIONS = st.dictionaries(st.sampled_from(["include_deleted", "secret"]), SCALARS, max_size=1)


@st.composite
def read_calls(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    method = draw(
        st.sampled_from(
            [
                "find",
                "find_all",
                "find_one",
                "count",
                "exists",
                "find_and_count",
                "find_by_id",
                "get",
                "find_by_ids",
                "paginate",
                "paginate_cursor",
            ]
        )
    )
    arguments: dict[str, Any] = {}
    if method in ("find", "find_one", "count", "exists", "find_and_count", "paginate"):
        arguments["where"] = draw(WHERE)
    if method in ("find", "find_all", "find_and_count", "paginate", "paginate_cursor"):
        arguments["order_by"] = draw(ORDER_BY)
    if method in ("find", "find_all", "find_and_count", "paginate", "paginate_cursor"):
        arguments["limit"] = draw(NUMBERS)
    if method in ("find", "find_all", "find_and_count"):
        arguments["offset"] = draw(NUMBERS)
    if method == "find":
        arguments["columns"] = draw(COLUMN_LISTS)
    if method == "paginate":
        arguments["page"] = draw(NUMBERS)
    if method == "paginate_cursor":
        arguments["where"] = draw(WHERE)
        direction = draw(st.sampled_from(["after", "before"]))
        arguments[direction] = draw(CURSORS)
        if draw(st.booleans()):
            # A cursor the repository handed out, as is or with one character changed.
            arguments[direction] = TAMPER(
                draw(st.integers(min_value=0, max_value=200)),
                draw(st.sampled_from(["", "A", "_", "-", "=", "%", "\x00", "Z"])),
            )
    if method in ("find_by_id", "get"):
        arguments["id"] = draw(IDS)
    if method == "find_by_ids":
        arguments["ids"] = draw(ID_LISTS)
    # Leave out arguments drawn as None half the time, so defaults are fuzzed too.
    arguments = {
        name: value
        for name, value in arguments.items()
        if value is not None or name in ("id", "ids") or draw(st.booleans())
    }
    return method, arguments


class TAMPER:
    """Replace the character at ``position`` (modulo the length) of a real cursor by
    ``replacement`` (nothing: the real cursor)."""

    def __init__(self, position: int, replacement: str) -> None:
        self.position = position
        self.replacement = replacement

    def __repr__(self) -> str:
        return f"TAMPER({self.position!r}, {self.replacement!r})"

    async def apply(self, repo: Repository[Any], arguments: dict[str, Any]) -> str | None:
        page = await repo.paginate_cursor(
            limit=2, order_by=arguments.get("order_by"), after=None, where=None
        )
        cursor = page.next_cursor
        if cursor is None or not self.replacement:
            return cursor
        index = self.position % len(cursor)
        return cursor[:index] + self.replacement + cursor[index + 1 :]


@FUZZ
@given(call=read_calls())
async def test_every_read_returns_a_result_or_a_kysera_error_and_changes_nothing(
    kysera_engine: AsyncEngine,
    repo: Repository[Any],
    contents: list[Any],
    call: tuple[str, dict[str, Any]],
) -> None:
    method, arguments = call
    try:
        for name in ("after", "before"):
            if isinstance(arguments.get(name), TAMPER):
                arguments[name] = await arguments[name].apply(repo, arguments)
        await getattr(repo, method)(**arguments)
    except KyseraError as error:
        event(f"{method}: {type(error).__name__}")
    else:
        event(f"{method}: a result")
    assert await snapshot(kysera_engine) == contents
