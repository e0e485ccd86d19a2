"""`find` reuses one statement per read shape, and answers exactly as a statement built per
call does.

Hypothesis draws where-dicts of plain comparisons (the shapes kept) with values of every
kind a request could carry (NULLs, out-of-range integers, wrong types, datetimes, bytes), and
each is run twice with new values: once through the shape cache, once as the same condition
compiled per call (`compile_where`, which the cache never sees). Rows (in order) or the error
(class and message) must be the same, on every database.
"""

from __future__ import annotations

import datetime as dt
import decimal
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import KyseraError
from kysera.repository import Repository, compile_where, create_repository
from kysera.repository._statements import statements_of

metadata = sa.MetaData()
items = sa.Table(
    "rs_items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("n", sa.Integer, nullable=True),
    sa.Column("m", sa.SmallInteger, nullable=False),
    sa.Column("s", sa.String(10), nullable=True),
    sa.Column("price", sa.Numeric(6, 2), nullable=False),
    sa.Column("flag", sa.Boolean, nullable=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("blob", sa.LargeBinary(8), nullable=True),
)
COLUMNS = ["id", "n", "m", "s", "price", "flag", "at", "blob"]
OPERATORS = ["=", "$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]
JUNK = st.one_of(
    st.none(),
    st.sampled_from([2**31, -(2**40), 40_000, True, False, 1.5, "", "中"]),
    st.sampled_from([dt.date(2026, 1, 1), b"ab", [1, 2], {"x": 1}]),
)
VALID = {
    "id": st.integers(-1, 42),
    "n": st.integers(-4, 7),
    "m": st.integers(-1, 5),
    "s": st.sampled_from(["", "a", "b", "ab", "zz"]),
    "price": st.decimals(min_value=-1, max_value=41, places=2, allow_nan=False),
    "flag": st.booleans(),
    "at": st.integers(-2, 50).map(
        lambda h: dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=h)
    ),
    "blob": st.sampled_from([b"ab", b"\x00", b"zz"]),
}


def values_for(column: str) -> st.SearchStrategy[Any]:
    """Mostly values of the column's type (they reach the database), sometimes junk."""
    valid = VALID[column]
    return st.one_of(valid, valid, valid, JUNK)


EXAMPLES = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def rows() -> list[dict[str, Any]]:
    rng = random.Random(23)
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return [
        {
            "id": row_id,
            "n": None if rng.random() < 0.2 else rng.randint(-3, 6),
            "m": rng.randint(0, 4),
            "s": None if rng.random() < 0.2 else rng.choice(["", "a", "b", "ab", "zz"]),
            "price": decimal.Decimal(rng.randint(0, 4000)) / 100,
            "flag": None if rng.random() < 0.2 else rng.random() < 0.5,
            "at": None if rng.random() < 0.2 else base + dt.timedelta(hours=rng.randint(0, 48)),
            "blob": None if rng.random() < 0.3 else rng.choice([b"ab", b"\x00", b"zz"]),
        }
        for row_id in range(1, 41)
    ]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def repo(kysera_engine: AsyncEngine) -> AsyncIterator[Repository[Any]]:
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
        await connection.execute(items.insert(), rows())
    yield create_repository(kysera_engine, items)
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)


@st.composite
def shapes(draw: st.DrawFn) -> list[tuple[str, str]]:
    """Columns and operators, in order (a column may repeat under one operator dict)."""
    return draw(
        st.lists(
            st.tuples(st.sampled_from(COLUMNS), st.sampled_from(OPERATORS)),
            min_size=0,
            max_size=3,
        )
    )


def where_of(shape: list[tuple[str, str]], values: list[Any]) -> dict[str, Any]:
    where: dict[str, Any] = {}
    for (column, operator), value in zip(shape, values, strict=True):
        if operator == "=":
            where[column] = value
        else:
            spec = where.get(column)
            where[column] = {**(spec if isinstance(spec, dict) else {}), operator: value}
    return where


async def outcome(call: Any) -> Any:
    try:
        return [dict(row) for row in await call]
    except KyseraError as error:
        return (type(error), str(error))


@EXAMPLES
@given(data=st.data(), shape=shapes())
async def test_a_shaped_find_answers_as_a_statement_built_per_call(
    repo: Repository[Any], data: st.DataObject, shape: list[tuple[str, str]]
) -> None:
    order = data.draw(st.sampled_from([None, "id", "-n", ["m", "-id"]]))
    limit = data.draw(st.sampled_from([None, 5, 100]))
    for _ in range(2):  # the second call reuses the first one's statement
        values = [data.draw(values_for(column)) for column, _ in shape]
        where = where_of(shape, values)
        try:
            expression: Any = compile_where(items, where)
        except KyseraError as error:
            expected: Any = (type(error), str(error))
        else:
            expected = await outcome(repo.find(expression, order_by=order, limit=limit))
        assert await outcome(repo.find(where, order_by=order, limit=limit)) == expected, where


async def test_one_shape_is_one_statement(repo: Repository[Any]) -> None:
    shapes = statements_of(items).shapes
    shapes.clear()
    for low in range(3):
        found = await repo.find({"m": {"$gte": low}, "s": "a"}, order_by="id", limit=10)
        assert all(row["m"] >= low and row["s"] == "a" for row in found)
    assert len(shapes) == 1
    await repo.find({"m": {"$gte": 1}}, order_by="id")  # another shape
    await repo.find({"s": {"$in": ["a", "b"]}})  # a list: not shaped, built per call
    assert len(shapes) == 2
