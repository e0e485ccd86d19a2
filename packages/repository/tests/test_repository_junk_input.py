"""Junk arguments to any repository method raise a KyseraError and change nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from repository_support import User, UserCreate, users
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import KyseraError
from kysera.core.testing import snapshot_table
from kysera.repository import Repository, create_repository

Call = Callable[[Repository[User]], Awaitable[Any]]

JUNK_CALLS: dict[str, Call] = {
    "find_by_id(None)": lambda r: r.find_by_id(None),
    "find_by_id(tuple too long)": lambda r: r.find_by_id((1, 2, 3)),
    "find_by_id(dict of wrong keys)": lambda r: r.find_by_id({"email": "x"}),
    "get(list)": lambda r: r.get([]),
    "find_by_ids([None])": lambda r: r.find_by_ids([None]),
    "find(where=str)": lambda r: r.find("id = 1; DROP TABLE rp_users"),
    "find(where=list)": lambda r: r.find([1, 2]),
    "find(limit=str)": lambda r: r.find(limit="10"),  # type: ignore[arg-type]
    "find(offset=-1)": lambda r: r.find(offset=-1),
    "find(order_by=int)": lambda r: r.find(order_by=5),
    "find(columns=[])": lambda r: r.find(columns=[]),
    "find(columns=[1])": lambda r: r.find(columns=[1]),  # type: ignore[list-item]
    "count(where=op)": lambda r: r.count({"age": {"$regex": ".*"}}),
    "exists(where=bad nesting)": lambda r: r.exists({"$or": {"age": 1}}),
    "create(None)": lambda r: r.create(None),
    "create(list)": lambda r: r.create([1, 2]),
    "create_many(str)": lambda r: r.create_many("abc"),
    "create_many([None])": lambda r: r.create_many([None]),
    "update(1, str)": lambda r: r.update(1, "age=5"),
    "update(None, {})": lambda r: r.update(None, {"age": 1}),
    "update_many(str, {})": lambda r: r.update_many("1=1", {"age": 1}),
    "update_many({}, junk)": lambda r: r.update_many({}, {"age": "old"}),
    "bulk_update(str)": lambda r: r.bulk_update("abc"),  # type: ignore[arg-type]
    "bulk_update([(1, None)])": lambda r: r.bulk_update([(1, None)]),
    "delete(None)": lambda r: r.delete(None),
    "delete_many([(1, 2)])": lambda r: r.delete_many([(1, 2)]),
    "upsert(conflict=int)": lambda r: r.upsert({"email": "a@b.c", "name": "A"}, conflict=[5]),  # type: ignore[list-item]
    "upsert(update=unknown)": lambda r: r.upsert(
        {"email": "a@b.c", "name": "A"}, conflict=["email"], update=["nope"]
    ),
    "upsert_many([1])": lambda r: r.upsert_many([1]),
    "paginate(page=0)": lambda r: r.paginate(page=0),
    "paginate(limit=10**6)": lambda r: r.paginate(limit=10**6),
    "paginate_cursor(after=junk)": lambda r: r.paginate_cursor(after="'; DROP TABLE x; --"),
}


@pytest.mark.parametrize("call", JUNK_CALLS.values(), ids=list(JUNK_CALLS))
async def test_junk_raises_a_kysera_error_and_changes_nothing(
    engine: AsyncEngine, call: Call
) -> None:
    repo = create_repository(engine, users, entity=User, create=UserCreate)
    await repo.create({"email": "keep@example.com", "name": "Keep", "age": 1})
    before = await snapshot_table(engine, users)

    with pytest.raises(KyseraError):
        await call(repo)

    assert await snapshot_table(engine, users) == before
