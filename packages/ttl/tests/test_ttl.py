"""TTLPlugin on a real database: hidden on every read path, writes with ttl, touch, purge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from ttl_support import memberships, notes, posts, users

from kysera.core import NotFoundError, ValidationError
from kysera.core.capture import capture_queries
from kysera.repository import Orm, create_orm
from kysera.soft_delete import SoftDeletePlugin
from kysera.timestamps import TimestampsPlugin
from kysera.ttl import TTLPlugin

pytestmark = pytest.mark.asyncio(loop_scope="session")

HOUR = timedelta(hours=1)


def now() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def seed(orm: Orm) -> None:
    """Users 1 (live), 2 (expired), 3 (never expires); each has one live and one expired
    post."""
    await orm.repository(users).create_many(
        [
            {"id": 1, "name": "live", "expires_at": now() + HOUR},
            {"id": 2, "name": "gone", "expires_at": now() - HOUR},
            {"id": 3, "name": "forever", "expires_at": None},
        ]
    )
    naive = now().replace(tzinfo=None)
    await orm.repository(posts).create_many(
        [
            {"id": 10 * u + k, "user_id": u, "title": f"{u}-{k}",
             "expires_at": naive + HOUR if k == 1 else naive - HOUR}
            for u in (1, 2, 3) for k in (1, 2)
        ]
    )  # fmt: skip


async def test_every_read_path_hides_expired_rows(orm: Orm) -> None:
    await seed(orm)
    repo = orm.repository(users)
    assert await repo.find_by_id(2) is None
    with pytest.raises(NotFoundError):
        await repo.get(2)
    assert [u["id"] for u in await repo.find_by_ids([1, 2, 3])] == [1, 3]
    assert [u["id"] for u in await repo.find_all(order_by="id")] == [1, 3]
    assert [u["id"] for u in await repo.find({"name": "gone"})] == []
    assert await repo.find_one({"id": 2}) is None
    assert await repo.count() == 2
    assert not await repo.exists({"id": 2})
    found, total = await repo.find_and_count(order_by="id")
    assert ([u["id"] for u in found], total) == ([1, 3], 2)
    page = await repo.paginate(page=1, limit=10, order_by="id")
    assert [u["id"] for u in page.items] == [1, 3]
    cursor_page = await repo.paginate_cursor(order_by="id", limit=10)
    assert [u["id"] for u in cursor_page.items] == [1, 3]
    # Relation includes: expired children are hidden, both ways.
    loaded = await repo.find_all(order_by="id", include="ttl_posts")
    assert [[p["id"] for p in u["ttl_posts"]] for u in loaded] == [[11], [31]]
    post_repo = orm.repository(posts)
    assert [p["id"] for p in await post_repo.find_all(order_by="id")] == [11, 21, 31]
    # orm.execute: a hand-written join.
    rows = (
        await orm.execute(
            sa.select(users.c.id, posts.c.id)
            .join(posts, posts.c.user_id == users.c.id)
            .order_by(posts.c.id)
        )
    ).all()
    assert [tuple(r) for r in rows] == [(1, 11), (3, 31)]
    assert (await orm.execute(sa.select(sa.func.count()).select_from(users))).scalar() == 2
    # include_expired=True shows everything, on every path.
    assert (await repo.find_by_id(2, include_expired=True))["name"] == "gone"  # type: ignore[index]
    assert await repo.count(include_expired=True) == 3
    assert await repo.exists({"id": 2}, include_expired=True)
    page = await repo.paginate(page=1, limit=10, order_by="id", include_expired=True)
    assert page.total == 3
    loaded = await repo.find_all(order_by="id", include="ttl_posts", include_expired=True)
    assert [len(u["ttl_posts"]) for u in loaded] == [2, 2, 2]
    rows = (await orm.execute(sa.select(users.c.id), include_expired=True)).all()
    assert len(rows) == 3
    # An expired row is gone for updates too.
    with pytest.raises(NotFoundError):
        await repo.update(2, {"name": "back"})


async def test_row_expires_at_read_time(orm: Orm, engine: AsyncEngine) -> None:
    repo = orm.repository(users)
    await repo.create({"id": 1, "name": "soon"}, ttl="1h")
    assert await repo.count() == 1
    # Time passes (moved in the database): the same cached statement now hides it.
    async with engine.begin() as connection:
        await connection.execute(sa.update(users).values(expires_at=now() - timedelta(seconds=1)))
    assert await repo.count() == 0
    assert await repo.find_by_id(1) is None


async def test_ttl_on_create_create_many_and_upsert(engine: AsyncEngine) -> None:
    fixed = datetime(2030, 1, 1, tzinfo=UTC)
    orm = await create_orm(engine, plugins=[TTLPlugin(now=lambda: fixed)])
    repo = orm.repository(users)
    created = await repo.create({"id": 1, "name": "a"}, ttl="5m")
    assert aware(created["expires_at"]) == fixed + timedelta(minutes=5)
    explicit = fixed + timedelta(days=3)
    many = await repo.create_many(
        [{"id": 2, "name": "b"}, {"id": 3, "name": "c", "expires_at": explicit}],
        ttl=timedelta(hours=2),
        returning=True,
    )
    assert [aware(r["expires_at"]) for r in many] == [fixed + 2 * HOUR, explicit]
    upserted = await repo.upsert({"id": 1, "name": "a2"}, ttl="1h30m")
    assert aware(upserted["expires_at"]) == fixed + timedelta(hours=1, minutes=30)
    naive = await orm.repository(posts).create({"id": 1, "user_id": 1, "title": "t"}, ttl="30d")
    assert naive["expires_at"] == (fixed + timedelta(days=30)).replace(tzinfo=None)


# The last two end after the year 9999 (the first parses; adding it to now overflows).
TOO_LONG = ["3000000d", timedelta(days=999_999_999)]


@pytest.mark.parametrize("bad", ["5", "garbage", "-5m", "0s", 5, "1h 30m", *TOO_LONG])
async def test_bad_ttl_writes_nothing(orm: Orm, bad: Any) -> None:
    repo = orm.repository(users)
    with pytest.raises(ValidationError):
        await repo.create({"id": 1, "name": "a"}, ttl=bad)
    with pytest.raises(ValidationError):
        await repo.create_many([{"id": 2, "name": "b"}, {"id": 3, "name": "c"}], ttl=bad)
    with pytest.raises(ValidationError):
        await repo.upsert({"id": 4, "name": "d"}, ttl=bad)
    assert await repo.count(include_expired=True) == 0
    await repo.create({"id": 5, "name": "e"}, ttl="1h")
    before = await repo.get(5)
    with pytest.raises(ValidationError):
        await repo.touch_ttl(5, bad)  # type: ignore[attr-defined]
    assert await repo.get(5) == before


async def test_touch_ttl(orm: Orm) -> None:
    await seed(orm)
    repo: Any = orm.repository(users)
    touched = await repo.touch_ttl(1, "30d")
    assert aware(touched["expires_at"]) > now() + timedelta(days=29)
    with pytest.raises(NotFoundError):
        await repo.touch_ttl(2, "1h")
    revived = await repo.touch_ttl(2, "1h", include_expired=True)
    assert revived["id"] == 2
    assert await repo.count() == 3
    assert (await repo.touch_ttl(3, None))["expires_at"] is None


async def test_purge_is_batched_and_bounded(orm: Orm, engine: AsyncEngine) -> None:
    repo: Any = orm.repository(users)
    await repo.create_many(
        [{"id": i, "name": "x", "expires_at": now() - HOUR} for i in range(1, 8)]
        + [{"id": 100, "name": "live", "expires_at": now() + HOUR},
           {"id": 101, "name": "forever"}]
    )  # fmt: skip
    with pytest.raises(ValidationError):
        await repo.purge_expired(batch_size=0)
    async with capture_queries(engine) as captured:
        assert await repo.purge_expired(batch_size=3) == 7
    # Batches of 3, 3, 1: a SELECT of keys and a conditional DELETE each.
    statements = [q.sql.split()[0].upper() for q in captured.queries]
    assert [s for s in statements if s in ("SELECT", "DELETE")] == ["SELECT", "DELETE"] * 3
    assert [u["id"] for u in await repo.find_all(order_by="id", include_expired=True)] == [
        100,
        101,
    ]
    assert await repo.purge_expired() == 0


async def test_purge_spares_a_row_extended_meanwhile(orm: Orm, engine: AsyncEngine) -> None:
    repo: Any = orm.repository(users)
    await repo.create_many([{"id": i, "name": "x", "expires_at": now() - HOUR} for i in (1, 2)])
    other: Any = (await create_orm(engine, plugins=[TTLPlugin()])).repository(users)
    async with engine.connect() as connection:
        # The purge's first statement: pick the expired keys ...
        async with connection.begin():
            picked = await repo._expired_keys(connection, 10, {})
        assert sorted(picked) == [1, 2]
        # ... another host extends row 1 (its own transaction, committed) ...
        await other.touch_ttl(1, "1h", include_expired=True)
        # ... and the purge's conditional DELETE removes only row 2.
        async with connection.begin():
            assert await repo._delete_expired(connection, picked, {}) == 1
    assert [u["id"] for u in await repo.find_all(include_expired=True)] == [1]


async def test_composes_with_soft_delete_and_timestamps(engine: AsyncEngine) -> None:
    orm = await create_orm(engine, plugins=[SoftDeletePlugin(), TimestampsPlugin(), TTLPlugin()])
    repo: Any = orm.repository(notes)
    created = await repo.create({"id": 1, "body": "a"}, ttl="1h")
    assert created["created_at"] is not None
    assert created["expires_at"] is not None
    await repo.create({"id": 2, "body": "b", "expires_at": now() - HOUR})
    await repo.create({"id": 3, "body": "c"}, ttl="1h")
    await repo.soft_delete(3)
    assert [n["id"] for n in await repo.find_all()] == [1]
    assert [n["id"] for n in await repo.find_all(include_expired=True)] == [1, 2]
    assert [n["id"] for n in await repo.find_all(include_deleted=True)] == [1, 3]
    touched = await repo.touch_ttl(1, "2h")
    assert aware(touched["updated_at"]) >= aware(created["updated_at"])
    await repo.update(3, {"expires_at": now() - HOUR}, include_deleted=True)
    # Expired rows go, soft-deleted or not; the live one stays.
    assert await repo.purge_expired() == 2
    assert [n["id"] for n in await repo.find_all(include_deleted=True, include_expired=True)] == [1]


async def test_upsert_many_and_composite_keys(orm: Orm) -> None:
    repo: Any = orm.repository(memberships)
    await repo.upsert_many(
        [{"org": "a", "user_id": i} for i in range(5)], conflict=["org", "user_id"], ttl="1h"
    )
    assert await repo.count() == 5
    await repo.create_many(
        [{"org": "b", "user_id": i, "expires_at": now() - HOUR} for i in range(5)]
    )
    assert await repo.count() == 5
    assert await repo.purge_expired(batch_size=2) == 5
    assert await repo.count(include_expired=True) == 5
    touched = await repo.touch_ttl(("a", 1), "2h")
    assert aware(touched["expires_at"]) > now() + HOUR
