"""Every insert path sets created_at and updated_at, after validation, unless the caller
did; on every configured database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from timestamps_support import T0, Clock, Post, PostCreate, events, memberships, posts, writes

from kysera.core import NotNullError, ValidationError
from kysera.core.capture import capture_queries
from kysera.core.testing import snapshot_table
from kysera.repository import Orm

EARLY = datetime(2001, 1, 1, 8, 30, tzinfo=UTC)


async def test_create_stamps_both_columns_after_validation(orm: Orm, engine: AsyncEngine) -> None:
    repo = orm.repository(posts, entity=Post, create=PostCreate)

    # PostCreate forbids unknown fields, so the timestamps cannot come from the input ...
    with pytest.raises(ValidationError):
        await repo.create({"slug": "a", "title": "A", "created_at": EARLY})
    # ... and are added after validation.
    post = await repo.create({"slug": "hello", "title": "Hello"})

    assert post.created_at == post.updated_at == T0
    assert await repo.get(post.id) == post
    stored = await snapshot_table(engine, posts)
    assert [(row["created_at"], row["updated_at"]) for row in stored] == [(T0, T0)]


async def test_a_value_the_caller_sets_wins_and_none_counts_as_unset(orm: Orm) -> None:
    repo = orm.repository(posts)  # no create model: the caller may set any column

    explicit = await repo.create({"slug": "a", "title": "A", "created_at": EARLY})
    unset = await repo.create({"slug": "b", "title": "B", "created_at": None, "updated_at": None})

    assert (explicit["created_at"], explicit["updated_at"]) == (EARLY, T0)
    assert (unset["created_at"], unset["updated_at"]) == (T0, T0)


async def test_create_sends_one_insert_and_reads_the_clock_once(
    orm: Orm, engine: AsyncEngine, clock: Clock
) -> None:
    repo = orm.repository(posts, entity=Post, create=PostCreate)
    with capture_queries(engine) as log:
        await repo.create({"slug": "one", "title": "One"})

    # RETURNING where the database has it; MariaDB adds a re-select.
    expected = 1 if engine.dialect.insert_returning else 2
    assert log.count == expected
    assert len(writes(log)) == 1
    assert clock.reads == 1


async def test_create_many_stamps_every_row_with_one_instant(
    orm: Orm, engine: AsyncEngine, clock: Clock
) -> None:
    repo = orm.repository(posts, entity=Post, create=PostCreate)

    created = await repo.create_many([{"slug": f"p{i}", "title": f"P{i}"} for i in range(3)])
    clock.advance(seconds=5)
    count = await repo.create_many(
        [{"slug": f"q{i}", "title": f"Q{i}"} for i in range(2)], returning=False
    )

    assert [(p.created_at, p.updated_at) for p in created] == [(T0, T0)] * 3
    assert count == 2
    later = T0 + timedelta(seconds=5)
    stored = await snapshot_table(engine, posts)
    assert [(row["created_at"], row["updated_at"]) for row in stored] == [(T0, T0)] * 3 + [
        (later, later)
    ] * 2
    assert clock.reads == 2


async def test_a_large_bulk_insert_is_stamped_too(orm: Orm, engine: AsyncEngine) -> None:
    # 600 rows without RETURNING: PostgreSQL's COPY path, an executemany elsewhere.
    repo = orm.repository(posts, create=PostCreate)
    rows = [{"slug": f"bulk-{i}", "title": "bulk"} for i in range(600)]

    assert await repo.create_many(rows, returning=False) == 600

    stored = await snapshot_table(engine, posts)
    assert len(stored) == 600
    assert {(row["created_at"], row["updated_at"]) for row in stored} == {(T0, T0)}


async def test_upsert_inserts_with_both_and_updates_only_updated_at(orm: Orm, clock: Clock) -> None:
    repo = orm.repository(posts, entity=Post, create=PostCreate)

    inserted = await repo.upsert({"slug": "s", "title": "first"}, conflict=["slug"])
    clock.advance(minutes=1)
    updated = await repo.upsert({"slug": "s", "title": "second"}, conflict=["slug"])
    clock.advance(minutes=1)
    named = await repo.upsert({"slug": "s", "title": "third"}, conflict=["slug"], update=["title"])
    clock.advance(minutes=1)
    untouched = await repo.upsert({"slug": "s", "title": "ignored"}, conflict=["slug"], update=[])

    assert (inserted.created_at, inserted.updated_at) == (T0, T0)
    assert (updated.title, updated.created_at) == ("second", T0)
    assert updated.updated_at == T0 + timedelta(minutes=1)
    # update=[...] names what to overwrite; updated_at is refreshed as well.
    assert (named.title, named.created_at) == ("third", T0)
    assert named.updated_at == T0 + timedelta(minutes=2)
    # update=[] leaves an existing row alone, timestamps included.
    assert untouched == named


async def test_upsert_many_mixes_inserts_and_updates(orm: Orm, clock: Clock) -> None:
    repo = orm.repository(posts, entity=Post, create=PostCreate)
    await repo.create({"slug": "old", "title": "Old"})
    clock.advance(hours=1)

    found = await repo.upsert_many(
        [{"slug": "old", "title": "Old again"}, {"slug": "new", "title": "New"}],
        conflict=["slug"],
    )

    later = T0 + timedelta(hours=1)
    assert [(p.slug, p.created_at, p.updated_at) for p in found] == [
        ("old", T0, later),
        ("new", later, later),
    ]


async def test_upsert_keeps_the_callers_updated_at(orm: Orm) -> None:
    repo = orm.repository(posts)
    await repo.create({"slug": "s", "title": "first"})

    row = await repo.upsert(
        {"slug": "s", "title": "second", "updated_at": EARLY}, conflict=["slug"]
    )

    assert (row["created_at"], row["updated_at"]) == (T0, EARLY)


async def test_composite_keys_and_a_table_with_only_created_at(
    orm: Orm, engine: AsyncEngine
) -> None:
    members = orm.repository(memberships)
    member = await members.create({"org_id": 1, "user_id": 2, "role": "admin"})
    upserted = await members.upsert({"org_id": 1, "user_id": 3, "role": "viewer"})
    event = await orm.repository(events).create({"name": "signup"})

    assert (member["created_at"], member["updated_at"]) == (T0, T0)
    assert (upserted["created_at"], upserted["updated_at"]) == (T0, T0)
    assert event["created_at"] == T0
    assert [row["created_at"] for row in await snapshot_table(engine, events)] == [T0]


async def test_create_without_timestamps_writes_exactly_the_input(
    orm: Orm, engine: AsyncEngine
) -> None:
    posts_repo = orm.repository(posts, create=PostCreate)
    events_repo = orm.repository(events)

    imported = await events_repo.create_without_timestamps({"name": "imported"})
    dated = await events_repo.create_without_timestamps({"name": "dated", "created_at": EARLY})
    assert (imported["created_at"], dated["created_at"]) == (None, EARLY)

    # The same as the per-call option; NOT NULL columns then need values from somewhere.
    with pytest.raises(NotNullError):
        await posts_repo.create({"slug": "x", "title": "X"}, timestamps=False)
    assert await snapshot_table(engine, posts) == []


async def test_concurrent_calls_each_use_their_own_instant(orm: Orm, clock: Clock) -> None:
    repo = orm.repository(posts, entity=Post, create=PostCreate)

    async def create(index: int) -> Post:
        await asyncio.sleep(0)
        clock.advance(seconds=1)
        return await repo.create({"slug": f"c{index}", "title": "C"})

    created = await asyncio.gather(*(create(index) for index in range(5)))

    assert all(post.created_at == post.updated_at for post in created)
    assert len({post.created_at for post in created}) == 5
