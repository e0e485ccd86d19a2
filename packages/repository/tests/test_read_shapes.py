"""Reads reuse one statement per read shape, and answer exactly as a statement built per
call does.

Hypothesis draws where-dicts of plain comparisons, NULL tests and ``$in``/``$nin`` lists (the
shapes kept) with values of every kind a request could carry (NULLs, out-of-range integers,
wrong types, datetimes, bytes, empty lists), and each is run three times with new values by
one read method (`find`, `count`, `exists`, `find_and_count`, `paginate`, `paginate_cursor`):
once through the shape cache, once as the same condition compiled per call (`compile_where`,
which the cache never sees). Rows (in order), counts, pages with their cursors, or the error
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
OPERATORS = ["=", "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$is_null"]
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


def values_for(column: str, operator: str = "=") -> st.SearchStrategy[Any]:
    """Mostly values of the column's type (they reach the database), sometimes junk (NULL
    among it); lists of them (empty, holding NULLs or junk, as lists or tuples) for
    ``$in``/``$nin``; mostly true or false for ``$is_null``."""
    valid = VALID[column]
    value = st.one_of(valid, valid, valid, JUNK)
    if operator == "$is_null":
        return st.one_of(st.booleans(), st.booleans(), JUNK)
    if operator in ("$in", "$nin"):
        lists = st.one_of(st.lists(valid, min_size=1, max_size=4), st.lists(value, max_size=4))
        return st.one_of(lists, lists, lists.map(tuple), JUNK)
    return value


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
    """What a read answered, comparable: rows as dicts, pages as their parts, or the error."""
    try:
        found = await call
    except KyseraError as error:
        return (type(error), str(error))
    if isinstance(found, (int, bool, Pages)):
        return found
    if isinstance(found, tuple):  # find_and_count
        return [dict(row) for row in found[0]], found[1]
    if isinstance(found, list):
        return [dict(row) for row in found]
    return summary(found)


def summary(page: Any) -> Any:
    parts = {name: getattr(page, name) for name in page.__slots__ if name != "items"}
    return [dict(row) for row in page.items], parts


class Pages(list[Any]):
    """Keyset pages read one after the other."""


READS = ["find", "count", "exists", "find_and_count", "paginate", "paginate_cursor"]


def read(repo: Repository[Any], method: str, where: Any, order: Any, limit: Any) -> Any:
    """One read method of ``repo`` with these arguments (as far as the method takes them)."""
    if method == "find":
        return repo.find(where, order_by=order, limit=limit)
    if method == "count":
        return repo.count(where)
    if method == "exists":
        return repo.exists(where)
    if method == "find_and_count":
        return repo.find_and_count(where, order_by=order, limit=limit)
    if method == "paginate":
        return repo.paginate(2, 3, where=where, order_by=order)
    return pages_by_cursor(repo, where, order)


async def pages_by_cursor(repo: Repository[Any], where: Any, order: Any) -> Pages:
    """Keyset pages of 3 rows, following each page's next cursor to the end (through NULL
    positions too)."""
    pages = Pages()
    after = None
    for _ in range(15):  # 40 rows
        page = await repo.paginate_cursor(3, after=after, where=where, order_by=order)
        pages.append(summary(page))
        after = page.next_cursor
        if after is None:
            break
    return pages


@EXAMPLES
@given(data=st.data(), shape=shapes(), method=st.sampled_from(READS))
async def test_a_shaped_read_answers_as_a_statement_built_per_call(
    repo: Repository[Any], data: st.DataObject, shape: list[tuple[str, str]], method: str
) -> None:
    # Nullable keys (n, s) put NULLs into keyset cursors.
    order = data.draw(st.sampled_from([None, "id", "-n", "n", ["s", "-id"], ["m", "-id"]]))
    limit = data.draw(st.sampled_from([None, 5, 100]))
    for _ in range(3):  # later calls reuse the first one's statements (and, on asyncpg,
        # run them on the driver's prepared statement from the second use on)
        values = [data.draw(values_for(column, operator)) for column, operator in shape]
        where = where_of(shape, values)
        try:
            # Never None (which the shapes would serve): the per-call side shares no cache.
            expression: Any = compile_where(items, where)
            if expression is None:
                expression = sa.true()
        except KyseraError as error:
            expected: Any = (type(error), str(error))
        else:
            expected = await outcome(read(repo, method, expression, order, limit))
        assert await outcome(read(repo, method, where, order, limit)) == expected, where


async def test_one_shape_is_one_statement(repo: Repository[Any]) -> None:
    shapes = statements_of(items).shapes
    shapes.clear()
    for low in range(3):
        found = await repo.find({"m": {"$gte": low}, "s": "a"}, order_by="id", limit=10)
        assert all(row["m"] >= low and row["s"] == "a" for row in found)
    assert len(shapes) == 1
    await repo.find({"m": {"$gte": 1}}, order_by="id")  # another shape
    for listed in (["a"], ["a", "b"], ("a", "b", "zz")):  # one shape for every length
        found = await repo.find({"s": {"$in": listed}})
        assert sorted({row["s"] for row in found}) == sorted(set(listed))
    assert len(shapes) == 3
    await repo.find({"$or": [{"s": "a"}, {"m": 1}]})  # logical operators: built per call
    await repo.find({"s": {"$in": ["a", None]}})  # None in the list (matches NULL): too
    assert len(shapes) == 3
    # A NULL test is one shape however it is said (as is {"n": 1} and {"n": {"$eq": 1}}).
    nulls = sum(row["n"] is None for row in rows())
    for null_test in (None, {"$eq": None}, {"$is_null": True}):
        assert len(await repo.find({"n": null_test})) == nulls
    assert len(shapes) == 4
