"""The methods the plugin adds: touch, the time-range queries and the bypasses; on every
configured database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from timestamps_support import T0, Clock, Post, PostCreate, events, legacy, memberships, posts, tags

from kysera.core import InvalidQueryError, NotFoundError
from kysera.core.capture import capture_queries
from kysera.core.testing import snapshot_table
from kysera.repository import Orm
from kysera.timestamps import InvalidTimestampError, TimestampedRepository, TimestampsMixin


async def posts_created_a_minute_apart(orm: Orm, clock: Clock, count: int = 4) -> list[Post]:
    """Posts p0..p{count-1} created at T0, T0+1min, ...; the clock is left one minute on."""
    repo = orm.repository(posts, entity=Post, create=PostCreate)
    created = []
    for index in range(count):
        created.append(await repo.create({"slug": f"p{index}", "title": f"P{index}"}))
        clock.advance(minutes=1)
    return created


def slugs(found: list[Post]) -> list[str]:
    return [post.slug for post in found]


async def test_the_repository_has_the_added_methods(orm: Orm) -> None:
    repo = orm.repository(posts, entity=Post)
    assert isinstance(repo, TimestampsMixin)
    assert isinstance(repo, TimestampedRepository)
    assert not isinstance(orm.repository(tags), TimestampsMixin)  # no timestamp columns


async def test_touch_changes_only_updated_at(orm: Orm, engine: AsyncEngine, clock: Clock) -> None:
    first, second, *_ = await posts_created_a_minute_apart(orm, clock)
    repo = orm.repository(posts, entity=Post)

    touched = await repo.touch(first.id)

    assert touched == first.model_copy(update={"updated_at": T0 + timedelta(minutes=4)})
    assert await repo.get(first.id) == touched
    assert await repo.get(second.id) == second
    with pytest.raises(NotFoundError):
        await repo.touch(999_999)


async def test_touch_many_counts_the_rows_it_found(
    orm: Orm, engine: AsyncEngine, clock: Clock
) -> None:
    created = await posts_created_a_minute_apart(orm, clock)
    repo = orm.repository(posts, entity=Post)

    assert await repo.touch_many([created[0].id, created[2].id, 999_999]) == 2
    with capture_queries(engine) as log:
        assert await repo.touch_many([]) == 0
    assert log.queries == []

    now = T0 + timedelta(minutes=4)
    assert [row["updated_at"] for row in await snapshot_table(engine, posts)] == [
        now,
        T0 + timedelta(minutes=1),
        now,
        T0 + timedelta(minutes=3),
    ]


async def test_touch_with_composite_keys(orm: Orm, clock: Clock) -> None:
    repo = orm.repository(memberships)
    await repo.create_many(
        [{"org_id": 1, "user_id": 1, "role": "a"}, {"org_id": 1, "user_id": 2, "role": "b"}]
    )
    clock.advance(hours=1)

    touched = await repo.touch({"org_id": 1, "user_id": 2})
    assert await repo.touch_many([(1, 1), (1, 2), (2, 2)]) == 2
    with pytest.raises(InvalidQueryError, match="composite key"):
        await repo.touch(1)

    assert (touched["created_at"], touched["updated_at"]) == (T0, T0 + timedelta(hours=1))


async def test_created_ranges_have_strict_after_before_and_inclusive_between(
    orm: Orm, clock: Clock
) -> None:
    await posts_created_a_minute_apart(orm, clock)
    repo = orm.repository(posts, entity=Post)
    t1, t2 = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)

    assert slugs(await repo.find_created_after(t1)) == ["p2", "p3"]
    assert slugs(await repo.find_created_before(t2)) == ["p0", "p1"]
    assert slugs(await repo.find_created_between(t1, t2)) == ["p1", "p2"]
    assert slugs(await repo.find_created_between(t1, t1)) == ["p1"]
    assert slugs(await repo.find_created_between(t2, t1)) == []
    assert slugs(await repo.find_created_after(T0, limit=1)) == ["p1"]


async def test_ranges_compare_instants_whatever_the_time_zone(orm: Orm, clock: Clock) -> None:
    await posts_created_a_minute_apart(orm, clock)
    repo = orm.repository(posts, entity=Post)
    paris = timezone(timedelta(hours=1))
    t1_in_paris = (T0 + timedelta(minutes=1)).astimezone(paris)

    assert slugs(await repo.find_created_after(t1_in_paris)) == ["p2", "p3"]
    with pytest.raises(InvalidTimestampError, match="has no time zone"):
        await repo.find_created_after(datetime(2024, 3, 1, 12, 0))  # naive: which instant?
    with pytest.raises(InvalidTimestampError, match="got str"):
        await repo.find_created_before("2024-03-01")  # type: ignore[arg-type]


async def test_find_updated_after_and_the_recent_lists(orm: Orm, clock: Clock) -> None:
    created = await posts_created_a_minute_apart(orm, clock)
    repo = orm.repository(posts, entity=Post)
    await repo.touch(created[1].id)  # p1 is now the most recently updated

    assert slugs(await repo.find_updated_after(T0 + timedelta(minutes=2))) == ["p3", "p1"]
    assert slugs(await repo.find_recently_created()) == ["p3", "p2", "p1", "p0"]
    assert slugs(await repo.find_recently_created(limit=2)) == ["p3", "p2"]
    assert slugs(await repo.find_recently_updated(limit=2)) == ["p1", "p3"]


async def test_ties_are_ordered_by_primary_key(orm: Orm) -> None:
    repo = orm.repository(posts, entity=Post, create=PostCreate)
    await repo.create_many([{"slug": f"t{i}", "title": "T"} for i in range(3)])  # one instant

    assert slugs(await repo.find_recently_created()) == ["t2", "t1", "t0"]
    assert slugs(await repo.find_created_between(T0, T0)) == ["t0", "t1", "t2"]


async def test_rows_without_a_timestamp_come_last_on_every_dialect(orm: Orm, clock: Clock) -> None:
    # Rows older than the columns hold NULL there; they are not the "most recent" (PostgreSQL
    # sorts NULL first in DESC order unless told otherwise).
    clock.current = T0.replace(microsecond=0)
    repo = orm.repository(legacy)
    await repo.create_without_timestamps({"name": "before the column"})
    await repo.create({"name": "stamped"})
    clock.advance(seconds=1)
    await repo.create({"name": "newer"})
    await repo.create_without_timestamps({"name": "also before"})

    created = [row["name"] for row in await repo.find_recently_created()]
    assert created == ["newer", "stamped", "also before", "before the column"]
    updated = [row["name"] for row in await repo.find_recently_updated(limit=2)]
    assert updated == ["newer", "stamped"]


async def test_methods_needing_a_missing_column_say_so(orm: Orm) -> None:
    repo = orm.repository(events)  # created_at only

    await repo.create({"name": "signup"})
    assert [e["name"] for e in await repo.find_recently_created()] == ["signup"]
    with pytest.raises(InvalidQueryError, match="'ts_events' has no 'updated_at' column"):
        await repo.touch(1)
    with pytest.raises(InvalidQueryError, match="has no 'updated_at' column"):
        await repo.find_recently_updated()


async def test_plain_datetime_columns_hold_naive_utc_readings(
    orm: Orm, engine: AsyncEngine, clock: Clock
) -> None:
    # (Whole seconds: a plain DATETIME on MySQL/MariaDB has no fraction of a second.)
    start = clock.current = T0.replace(microsecond=0)
    repo = orm.repository(legacy)
    row = await repo.create({"name": "old style"})
    naive_t0 = start.replace(tzinfo=None)

    assert (row["created_at"], row["updated_at"]) == (naive_t0, naive_t0)
    # Queries take aware values (converted) or naive UTC readings.
    assert await repo.find_created_between(start, start) == [row]
    assert await repo.find_created_between(naive_t0, naive_t0) == [row]
    clock.advance(seconds=1)
    touched = await repo.touch(row["id"])
    assert touched["updated_at"] == naive_t0 + timedelta(seconds=1)


async def test_the_recent_lists_accept_read_options(orm: Orm) -> None:
    # Per-call options reach the other plugins (soft delete's include_deleted, say).
    repo = orm.repository(posts, entity=Post, create=PostCreate)
    await repo.create({"slug": "a", "title": "A"})

    assert slugs(await repo.find_recently_created(limit=5, include_deleted=True)) == ["a"]
    with pytest.raises(InvalidQueryError):
        await repo.find_recently_created(limit=-1)


async def test_a_typed_timestamps_repository_has_the_methods_at_run_time(
    orm: Orm, engine: AsyncEngine, clock: Clock
) -> None:
    from kysera.core import BadRequestError
    from kysera.repository import create_orm
    from kysera.timestamps import TimestampsRepository

    first, *_ = await posts_created_a_minute_apart(orm, clock)
    repo = orm.repository(posts, entity=Post, repository_class=TimestampsRepository[Post])

    assert isinstance(repo, TimestampsRepository)
    assert slugs(await repo.find_recently_created(2)) == ["p3", "p2"]
    touched = await repo.touch(first.id)
    assert touched.updated_at == T0 + timedelta(minutes=4)
    assert slugs(await repo.find_recently_updated(1)) == ["p0"]

    # Without the plugin there are no such methods: refused when the repository is built.
    plain = await create_orm(engine)
    with pytest.raises(BadRequestError, match="needs an ORM with TimestampsPlugin"):
        plain.repository(posts, entity=Post, repository_class=TimestampsRepository[Post])
    # A table the plugin leaves alone (no timestamp columns) is refused too.
    with pytest.raises(BadRequestError, match="needs an ORM with TimestampsPlugin"):
        orm.repository(tags, repository_class=TimestampsRepository[dict[str, object]])
