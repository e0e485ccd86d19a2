"""Hostile arguments (issue 15, item 8): each is a `BadRequestError` before any SQL runs.

Values that no database can take, or that the column's type cannot bind, used to escape as
raw ``OverflowError``/``TypeError``/``StatementError``/``ArgumentError``, or reached the
database (``get("abc")`` on an integer key). Every call here must raise a `KyseraError`
subclass that says the caller is at fault (`InvalidQueryError`), with no statement sent, and
leave the table as it was.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import InvalidQueryError
from kysera.core.capture import capture_queries
from kysera.core.pytest_plugin import kysera_schema_fixture
from kysera.core.testing import snapshot_table
from kysera.repository import Repository, create_repository

metadata = sa.MetaData()
things = sa.Table(
    "hi_things",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("age", sa.Integer, nullable=True),
    sa.Column("big", sa.BigInteger, nullable=True),
    sa.Column("data", sa.JSON, nullable=True),
    sa.Column("uid", sa.Uuid, nullable=True),
    sa.Column("active", sa.Boolean, nullable=True),
    sa.Column("span", sa.Interval, nullable=True),
    sa.Column("name", sa.String(20), nullable=True),
)
engine = kysera_schema_fixture(metadata)

UID = uuid.UUID("12345678-1234-5678-1234-567812345678")
ROW = {
    "id": 1,
    "age": 30,
    "big": 2**40,
    "data": {"a": [1, 2]},
    "uid": UID,
    "active": True,
    "span": datetime.timedelta(hours=2),
    "name": "ada",
}

Call = Callable[[Repository[Any]], Awaitable[Any]]

HOSTILE: dict[str, Call] = {
    "find(limit=2**63)": lambda r: r.find(limit=2**63),
    "find(offset=2**63)": lambda r: r.find(offset=2**63),
    "find_all(limit=-1)": lambda r: r.find_all(limit=-1),
    "paginate(page=2**62)": lambda r: r.paginate(page=2**62),
    "paginate(page=2**63, limit=1)": lambda r: r.paginate(page=2**63 + 1, limit=1),
    "count(age=2**63)": lambda r: r.count({"age": 2**63}),
    "count(big=-2**63-1)": lambda r: r.count({"big": {"$lt": -(2**63) - 1}}),
    "count(age $in [2**64])": lambda r: r.count({"age": {"$in": [1, 2**64]}}),
    "find(columns=0)": lambda r: r.find(columns=0),  # type: ignore[arg-type]
    "find(columns={'id': 1})": lambda r: r.find(columns={"id": 1}),  # type: ignore[arg-type]
    "count(data={1, 2})": lambda r: r.count({"data": {1, 2}}),
    "count(data=[object()])": lambda r: r.count({"data": [object()]}),
    "count(data=nan)": lambda r: r.count({"data": [float("nan")]}),
    "count(name=object())": lambda r: r.count({"name": object()}),
    "count(span=huge timedelta)": lambda r: r.count({"span": datetime.timedelta(days=10**8)}),
    "count(span=str)": lambda r: r.count({"span": "1 day"}),
    "count(uid='zzz')": lambda r: r.count({"uid": "zzz"}),
    "count(uid=int)": lambda r: r.count({"uid": 5}),
    "get('abc')": lambda r: r.get("abc"),
    "find_by_id(1.5)": lambda r: r.find_by_id(1.5),
    "find_by_id(2**70)": lambda r: r.find_by_id(2**70),
    "find_by_id(True)": lambda r: r.find_by_id(True),
    "find_by_ids([1, 'abc'])": lambda r: r.find_by_ids([1, "abc"]),
    "delete('abc')": lambda r: r.delete("abc"),
    "delete_many([2**63])": lambda r: r.delete_many([2**63]),
    "update('abc', ...)": lambda r: r.update("abc", {"age": 1}),
    "bulk_update([('abc', ...)])": lambda r: r.bulk_update([("abc", {"age": 1})]),
}


@pytest.mark.parametrize("call", HOSTILE.values(), ids=list(HOSTILE))
async def test_hostile_arguments_are_refused_before_any_sql(
    engine: AsyncEngine, call: Call
) -> None:
    repo = create_repository(engine, things)
    await repo.create(ROW)
    before = await snapshot_table(engine, things)

    with capture_queries(engine) as queries, pytest.raises(InvalidQueryError):
        await call(repo)

    assert queries.queries == [], "no statement may be sent for a hostile argument"
    assert await snapshot_table(engine, things) == before


async def test_a_uuid_given_as_text_matches_the_stored_uuid(engine: AsyncEngine) -> None:
    repo = create_repository(engine, things)
    await repo.create(ROW)

    assert await repo.count({"uid": str(UID)}) == 1
    assert await repo.count({"uid": UID.hex}) == 1
    assert await repo.count({"uid": {"$in": [str(UID), uuid.uuid4()]}}) == 1
    assert await repo.count({"uid": {"$ne": str(UID)}}) == 0


async def test_booleans_compare_in_order(engine: AsyncEngine) -> None:
    repo = create_repository(engine, things)
    await repo.create(ROW)
    await repo.create({**ROW, "id": 2, "active": False, "uid": None})

    assert [row["id"] for row in await repo.find({"active": {"$gt": False}})] == [1]
    assert await repo.count({"active": {"$gt": True}}) == 0
    assert await repo.count({"active": {"$between": [False, True]}}) == 2


async def test_limits_at_the_edge_of_64_bits_are_accepted(engine: AsyncEngine) -> None:
    repo = create_repository(engine, things)
    await repo.create(ROW)

    assert len(await repo.find(limit=2**63 - 1)) == 1
    assert await repo.find(offset=2**63 - 1) == []
    assert await repo.count({"big": {"$lt": 2**63 - 1}}) == 1
    assert await repo.count({"age": {"$gt": -(2**63)}}) == 1
    assert await repo.find_by_id(2**63 - 1) is None


async def test_json_documents_and_intervals_in_range_still_compare(engine: AsyncEngine) -> None:
    repo = create_repository(engine, things)
    await repo.create(ROW)

    assert await repo.count({"span": {"$lt": datetime.timedelta(days=365 * 7000)}}) == 1
    assert await repo.count({"data": {"$is_null": False}}) == 1
