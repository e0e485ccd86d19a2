"""Every update path sets updated_at (and leaves created_at alone), after validation, unless
the caller did; on every configured database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from timestamps_support import T0, Clock, Post, PostCreate, PostUpdate, memberships, posts, writes

from kysera.core import NotFoundError
from kysera.core.capture import capture_queries
from kysera.core.testing import snapshot_table
from kysera.repository import Orm

EARLY = datetime(2001, 1, 1, 8, 30, tzinfo=UTC)
LATER = T0 + timedelta(days=1)


async def seed(orm: Orm, clock: Clock, count: int = 3) -> list[Post]:
    repo = orm.repository(posts, entity=Post, create=PostCreate)
    created = await repo.create_many([{"slug": f"p{i}", "title": f"P{i}"} for i in range(count)])
    clock.advance(days=1)
    return created


async def test_update_sets_updated_at_even_when_the_model_strips_it(orm: Orm, clock: Clock) -> None:
    first, *_ = await seed(orm, clock)
    repo = orm.repository(posts, entity=Post, create=PostCreate, update=PostUpdate)

    # PostUpdate ignores unknown fields: the caller's updated_at is dropped by validation,
    # and the plugin's is added after it.
    post = await repo.update(first.id, {"title": "New", "updated_at": EARLY})

    assert (post.title, post.created_at, post.updated_at) == ("New", T0, LATER)
    assert await repo.get(first.id) == post


async def test_update_keeps_the_callers_updated_at(orm: Orm, clock: Clock) -> None:
    first, *_ = await seed(orm, clock)
    repo = orm.repository(posts)

    row = await repo.update(first.id, {"title": "New", "updated_at": EARLY})

    assert (row["created_at"], row["updated_at"]) == (T0, EARLY)


async def test_update_sends_one_update(orm: Orm, engine: AsyncEngine, clock: Clock) -> None:
    first, *_ = await seed(orm, clock)
    repo = orm.repository(posts, entity=Post, update=PostUpdate)

    with capture_queries(engine) as log:
        await repo.update(first.id, {"title": "New"})

    assert len(writes(log)) == 1
    assert "updated_at" in writes(log)[0]


async def test_an_update_without_values_writes_nothing(
    orm: Orm, engine: AsyncEngine, clock: Clock
) -> None:
    first, *_ = await seed(orm, clock)
    repo = orm.repository(posts, entity=Post, update=PostUpdate)

    with capture_queries(engine) as log:
        post = await repo.update(first.id, {})

    assert writes(log) == []
    assert post.updated_at == T0


async def test_update_of_a_missing_row_still_raises(orm: Orm, engine: AsyncEngine) -> None:
    repo = orm.repository(posts, entity=Post, update=PostUpdate)

    with pytest.raises(NotFoundError):
        await repo.update(12345, {"title": "Nobody"})
    assert await snapshot_table(engine, posts) == []


async def test_update_many_stamps_only_the_matching_rows(
    orm: Orm, engine: AsyncEngine, clock: Clock
) -> None:
    await seed(orm, clock)
    repo = orm.repository(posts, entity=Post, update=PostUpdate)

    assert await repo.update_many({"slug": {"$in": ["p0", "p2"]}}, {"title": "Both"}) == 2
    assert await repo.update_many({"slug": "p1"}, {"title": "Same"}, timestamps=False) == 1

    stored = await snapshot_table(engine, posts)
    assert [(r["title"], r["created_at"], r["updated_at"]) for r in stored] == [
        ("Both", T0, LATER),
        ("Same", T0, T0),
        ("Both", T0, LATER),
    ]


async def test_update_many_keeps_the_callers_updated_at(orm: Orm, engine: AsyncEngine) -> None:
    await orm.repository(posts).create({"slug": "a", "title": "A"})

    await orm.repository(posts).update_many({}, {"title": "B", "updated_at": EARLY})

    assert [r["updated_at"] for r in await snapshot_table(engine, posts)] == [EARLY]


async def test_bulk_update_stamps_every_row_unless_the_caller_did(
    orm: Orm, engine: AsyncEngine, clock: Clock
) -> None:
    first, second, _third = await seed(orm, clock)
    repo = orm.repository(posts)

    found = await repo.bulk_update(
        [(first.id, {"title": "One"}), (second.id, {"title": "Two", "updated_at": EARLY})]
    )

    assert [(p["title"], p["created_at"], p["updated_at"]) for p in found] == [
        ("One", T0, LATER),
        ("Two", T0, EARLY),
    ]
    stored = await snapshot_table(engine, posts)
    assert stored[2]["updated_at"] == T0  # third was not in the batch


async def test_composite_keys(orm: Orm, clock: Clock) -> None:
    repo = orm.repository(memberships)
    await repo.create({"org_id": 1, "user_id": 2, "role": "viewer"})
    clock.advance(days=1)

    by_tuple = await repo.update((1, 2), {"role": "admin"})
    clock.advance(days=1)
    [by_dict] = await repo.bulk_update([({"org_id": 1, "user_id": 2}, {"role": "owner"})])

    assert (by_tuple["created_at"], by_tuple["updated_at"]) == (T0, LATER)
    assert (by_dict["role"], by_dict["updated_at"]) == ("owner", LATER + timedelta(days=1))


async def test_update_without_timestamp_leaves_updated_at_alone(orm: Orm, clock: Clock) -> None:
    first, *_ = await seed(orm, clock)
    repo = orm.repository(posts, entity=Post, update=PostUpdate)

    post = await repo.update_without_timestamp(first.id, {"title": "Typo fixed"})

    assert (post.title, post.updated_at) == ("Typo fixed", T0)


async def test_rows_written_in_a_rolled_back_transaction_are_gone(
    orm: Orm, engine: AsyncEngine, clock: Clock
) -> None:
    first, *_ = await seed(orm, clock)
    repo = orm.repository(posts, entity=Post, update=PostUpdate)

    async def update_then_fail() -> None:
        async with orm.transaction():
            assert (await repo.update(first.id, {"title": "New"})).updated_at == LATER
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError, match="abort"):
        await update_then_fail()

    assert (await repo.get(first.id)).updated_at == T0


async def test_a_repository_bound_to_a_connection_stamps_in_that_transaction(
    orm: Orm, engine: AsyncEngine, clock: Clock
) -> None:
    repo = orm.repository(posts, entity=Post, create=PostCreate, update=PostUpdate)
    async with engine.connect() as connection:
        bound = repo.with_executor(connection)
        post = await bound.create({"slug": "a", "title": "A"})
        clock.advance(days=1)
        assert (await bound.update(post.id, {"title": "B"})).updated_at == LATER
        assert (await bound.touch(post.id)).updated_at == LATER
        await connection.rollback()

    assert await snapshot_table(engine, posts) == []
