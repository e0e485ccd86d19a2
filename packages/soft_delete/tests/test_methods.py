"""The methods soft delete adds, and what it changes in updates and deletes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from soft_delete_support import memberships, users
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import InvalidQueryError, NotFoundError
from kysera.repository import Orm, Repository, create_orm
from kysera.soft_delete import RecordNotDeletedError, SoftDeleteMixin, SoftDeletePlugin


async def raw_rows(orm: Orm, table: sa.Table) -> list[dict]:
    result = await orm.execute(sa.select(table).order_by(*table.primary_key), include_deleted=True)
    return [dict(row) for row in result.mappings()]


async def test_soft_delete_marks_and_restore_clears(orm: Orm) -> None:
    repo = orm.repository(users)
    assert isinstance(repo, SoftDeleteMixin)
    ann = await repo.create({"email": "ann@example.com", "name": "ann"})
    before = datetime.now(UTC) - timedelta(seconds=5)

    deleted = await repo.soft_delete(ann["id"])
    assert deleted["id"] == ann["id"]
    stamp = deleted["deleted_at"]
    if stamp.tzinfo is None:  # MariaDB/SQLite DATETIME: UTC wall-clock time, read back naive
        stamp = stamp.replace(tzinfo=UTC)
    assert before <= stamp <= datetime.now(UTC) + timedelta(seconds=5)
    assert await repo.find_by_id(ann["id"]) is None
    assert (await repo.find_with_deleted(ann["id"]))["name"] == "ann"

    with pytest.raises(NotFoundError):  # already deleted
        await repo.soft_delete(ann["id"])
    restored = await repo.restore(ann["id"])
    assert restored["deleted_at"] is None
    assert (await repo.get(ann["id"]))["name"] == "ann"

    with pytest.raises(RecordNotDeletedError) as not_deleted:
        await repo.restore(ann["id"])
    assert (not_deleted.value.entity, not_deleted.value.key) == ("sd_users", ann["id"])
    assert not_deleted.value.code == "RECORD_NOT_DELETED"
    with pytest.raises(NotFoundError):
        await repo.restore(10_000)
    with pytest.raises(NotFoundError):
        await repo.soft_delete(10_000)


async def test_many_variants_and_listing_deleted_rows(orm: Orm) -> None:
    repo = orm.repository(users)
    rows = await repo.create_many(
        [{"email": f"u{i}@example.com", "name": f"u{i}"} for i in range(4)]
    )
    ids = [row["id"] for row in rows]

    assert await repo.soft_delete_many([*ids[:3], 10000]) == 3
    assert await repo.soft_delete_many(ids[:3]) == 0  # already deleted
    assert await repo.soft_delete_many([]) == 0
    assert [u["name"] for u in await repo.find_all()] == ["u3"]
    assert [u["name"] for u in await repo.find_deleted(order_by="name")] == ["u0", "u1", "u2"]
    assert [u["name"] for u in await repo.find_deleted({"name": "u1"})] == ["u1"]
    assert len(await repo.find_all_with_deleted()) == 4
    assert [u["name"] for u in await repo.find_all_with_deleted(order_by="-name", limit=2)] == [
        "u3",
        "u2",
    ]

    assert await repo.restore_many([*ids[:2], ids[3]]) == 2  # u3 was not deleted
    assert [u["name"] for u in await repo.find_all(order_by="name")] == ["u0", "u1", "u3"]

    assert await repo.hard_delete(ids[2]) is True  # a deleted row can be removed for good
    assert await repo.hard_delete(ids[2]) is False
    assert await repo.hard_delete_many(ids[:2]) == 2
    assert [r["name"] for r in await raw_rows(orm, users)] == ["u3"]


async def test_updates_do_not_reach_deleted_rows(orm: Orm) -> None:
    repo = orm.repository(users)
    ann, bob = await repo.create_many(
        [{"email": "ann@example.com", "name": "ann"}, {"email": "bob@example.com", "name": "bob"}]
    )
    await repo.soft_delete(bob["id"])

    with pytest.raises(NotFoundError):
        await repo.update(bob["id"], {"name": "robert"})
    with pytest.raises(NotFoundError):
        await repo.update(bob["id"], {})
    with pytest.raises(NotFoundError):
        await repo.bulk_update([(ann["id"], {"name": "x"}), (bob["id"], {"name": "y"})])
    assert await repo.update_many({}, {"name": "everyone"}) == 1
    assert [r["name"] for r in await raw_rows(orm, users)] == ["everyone", "bob"]

    # Setting the deletion column itself is explicit: it reaches the row, deleted or not.
    moment = datetime(2031, 1, 1, tzinfo=UTC)
    dated = await repo.update(bob["id"], {"deleted_at": moment})
    assert dated["deleted_at"].replace(tzinfo=UTC) == moment
    marked = await repo.update(ann["id"], {"deleted_at": moment})
    assert marked["deleted_at"] is not None
    assert await repo.count() == 0
    await repo.update(ann["id"], {"deleted_at": None})
    assert await repo.count() == 1

    revived = await repo.update(bob["id"], {"name": "robert"}, include_deleted=True)
    assert revived["name"] == "robert"
    assert revived["deleted_at"] is not None


async def test_rows_written_deleted_are_returned_by_every_write(orm: Orm) -> None:
    """MySQL/MariaDB read a write's rows back; that SELECT is a read-back
    (`QueryContext.read_back`), which the plugin never filters."""
    repo = orm.repository(users)
    moment = datetime(2031, 1, 1, tzinfo=UTC)

    one = await repo.create({"email": "a@example.com", "name": "a", "deleted_at": moment})
    two, three = await repo.create_many(
        [
            {"email": "b@example.com", "name": "b", "deleted_at": moment},
            {"email": "c@example.com", "name": "c"},
        ]
    )
    upserted = await repo.upsert(
        {"id": three["id"], "email": "c@example.com", "name": "c2", "deleted_at": moment}
    )
    stamped = await repo.update(one["id"], {"deleted_at": moment, "name": "a2"})

    assert [row["name"] for row in (one, two, upserted, stamped)] == ["a", "b", "c2", "a2"]
    assert all(row["deleted_at"] is not None for row in (one, two, upserted, stamped))
    assert await repo.count() == 0  # and reads still hide them
    assert await repo.count(include_deleted=True) == 3


async def test_delete_is_hard_unless_replace_delete(orm: Orm, engine) -> None:
    repo = orm.repository(users)
    ann = await repo.create({"email": "ann@example.com", "name": "ann"})
    assert await repo.delete(ann["id"]) is True
    assert await raw_rows(orm, users) == []

    replacing = await create_orm(engine, plugins=[SoftDeletePlugin(replace_delete=True)])
    soft = replacing.repository(users)
    rows = await soft.create_many(
        [{"email": f"{n}@example.com", "name": n} for n in ("a", "b", "c")]
    )
    assert await soft.delete(rows[0]["id"]) is True
    assert await soft.delete(rows[0]["id"]) is False  # already deleted
    assert await soft.delete_many([r["id"] for r in rows]) == 2
    assert await soft.count() == 0
    assert all(r["deleted_at"] is not None for r in await raw_rows(orm, users))
    assert await soft.hard_delete_many([r["id"] for r in rows]) == 3
    assert await raw_rows(orm, users) == []


async def test_composite_primary_keys(orm: Orm) -> None:
    repo = orm.repository(memberships)
    await repo.create_many(
        [
            {"org": "acme", "user_id": 1, "role": "admin"},
            {"org": "acme", "user_id": 2, "role": "dev"},
            {"org": "init", "user_id": 1, "role": "dev"},
        ]
    )
    deleted = await repo.soft_delete(("acme", 1))
    assert deleted["deleted_at"] is not None
    assert await repo.find_by_id({"org": "acme", "user_id": 1}) is None
    assert await repo.soft_delete_many([("acme", 2), {"org": "init", "user_id": 1}]) == 2
    assert await repo.count() == 0
    assert (await repo.restore({"org": "acme", "user_id": 2}))["role"] == "dev"
    assert await repo.restore_many([("acme", 1), ("init", 1)]) == 2
    assert await repo.count() == 3
    with pytest.raises(RecordNotDeletedError):
        await repo.restore(("acme", 1))
    with pytest.raises(NotFoundError):
        await repo.restore(("acme", 99))
    with pytest.raises(InvalidQueryError, match="composite key"):
        await repo.soft_delete("acme")
    assert await repo.hard_delete(("acme", 1)) is True
    assert await repo.count() == 2


async def test_deletion_time_is_timezone_aware_utc_and_the_clock_is_injectable(engine) -> None:
    moment = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    orm = await create_orm(engine, plugins=[SoftDeletePlugin(now=lambda: moment)])
    repo = orm.repository(users)
    ann = await repo.create({"email": "ann@example.com", "name": "ann"})
    deleted = await repo.soft_delete(ann["id"])
    stamp = deleted["deleted_at"]
    if engine.dialect.name == "postgresql":
        assert stamp.tzinfo is not None
    else:  # DATETIME without a zone: the UTC wall-clock time
        stamp = stamp.replace(tzinfo=UTC)
    assert stamp == moment
    assert stamp.astimezone(UTC).hour == 1


async def test_naive_timestamp_column_on_postgresql_gets_utc_wall_clock(orm: Orm) -> None:
    repo = orm.repository(memberships)  # sa.DateTime without timezone
    await repo.create({"org": "acme", "user_id": 1, "role": "dev"})
    before = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=5)
    stamp = (await repo.soft_delete(("acme", 1)))["deleted_at"]
    assert stamp.tzinfo is None
    assert before <= stamp <= before + timedelta(seconds=15)


async def test_writes_roll_back_with_the_callers_transaction(orm: Orm) -> None:
    repo = orm.repository(users)
    ann = await repo.create({"email": "ann@example.com", "name": "ann"})

    async def delete_then_fail() -> None:
        async with orm.transaction():
            await repo.soft_delete(ann["id"])
            assert await repo.count() == 0
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError, match="abort"):
        await delete_then_fail()
    assert await repo.count() == 1


class UserRepository(SoftDeleteMixin, Repository[Any]):
    """Composed explicitly, so that type checkers see the added methods."""


async def test_explicit_composition_with_the_plugin(orm: Orm) -> None:
    repo = orm.repository(users, repository_class=UserRepository)
    assert isinstance(repo, UserRepository)
    ann = await repo.create({"email": "ann@example.com", "name": "ann"})
    await repo.soft_delete(ann["id"])
    assert await repo.count() == 0
    assert await repo.restore_many([ann["id"]]) == 1


async def test_bad_keys_are_refused_before_anything_is_written(orm: Orm) -> None:
    repo = orm.repository(users)
    ann = await repo.create({"email": "ann@example.com", "name": "ann"})
    with pytest.raises(InvalidQueryError, match="has 1 value"):
        await repo.soft_delete_many([ann["id"], (ann["id"], 2)])
    with pytest.raises(InvalidQueryError, match="cannot be None"):
        await repo.restore(None)
    assert [r["deleted_at"] for r in await raw_rows(orm, users)] == [None]


async def test_a_typed_soft_delete_repository_has_the_methods_at_run_time(
    orm: Orm, engine: AsyncEngine
) -> None:
    from pydantic import BaseModel

    from kysera.core import BadRequestError
    from kysera.soft_delete import SoftDeleteRepository

    class User(BaseModel):
        id: int
        email: str
        name: str

    repo = orm.repository(users, entity=User, repository_class=SoftDeleteRepository[User])
    created = await repo.create({"email": "typed@example.com", "name": "typed"})

    assert isinstance(repo, SoftDeleteRepository)
    assert (await repo.soft_delete(created.id)).id == created.id
    assert await repo.find_by_id(created.id) is None
    assert [user.id for user in await repo.find_deleted()] == [created.id]

    # Without the plugin there are no such methods: refused when the repository is built.
    plain = await create_orm(engine)
    with pytest.raises(BadRequestError, match="needs an ORM with SoftDeletePlugin"):
        plain.repository(users, entity=User, repository_class=SoftDeleteRepository[User])
