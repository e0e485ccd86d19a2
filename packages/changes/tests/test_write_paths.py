"""Every write path records one change per changed entity, in the same transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from changes_support import CHANGES, accounts, memberships, posts
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.changes import Change, ChangeFeedPlugin, follow_changes, purge_changes, read_changes
from kysera.core import InvalidQueryError, NotFoundError, UniqueConstraintError
from kysera.core.capture import capture_queries
from kysera.repository import create_orm
from kysera.soft_delete import SoftDeletePlugin


async def repository(engine: AsyncEngine, table: Any = accounts, **plugin: Any) -> Any:
    orm = await create_orm(engine, plugins=[ChangeFeedPlugin(table=CHANGES, **plugin)])
    return orm.repository(table)


async def feed(engine: AsyncEngine, after: int = 0, **options: Any) -> list[Change]:
    return await read_changes(engine, after=after, table=CHANGES, **options)


def summary(changes: list[Change]) -> list[tuple[str, tuple[Any, ...], tuple[str, ...]]]:
    return [(c.operation, c.key, c.columns) for c in changes]


async def test_create_and_create_many_record_inserts(engine: AsyncEngine) -> None:
    repo = await repository(engine)
    a = await repo.create({"email": "a@example.com", "name": "A"})
    many = await repo.create_many(
        [{"email": f"{i}@example.com", "name": str(i)} for i in range(3)], returning=False
    )
    assert many == 3
    changes = await feed(engine)
    assert [c.id for c in changes] == [1, 2, 3, 4]
    assert changes[0].table == "cf_accounts"
    assert summary(changes)[0] == ("INSERT", (a["id"],), ("email", "name"))
    assert [c.operation for c in changes[1:]] == ["INSERT"] * 3
    assert len({c.key for c in changes}) == 4
    assert changes[0].changed_at.tzinfo is not None


async def test_updates_record_the_columns_they_set(engine: AsyncEngine) -> None:
    repo = await repository(engine)
    a = await repo.create({"email": "a@example.com", "name": "A"})
    b = await repo.create({"email": "b@example.com", "name": "B"})
    await repo.update(a["id"], {"name": "A2"})
    assert await repo.update_many({"name": "B"}, {"email": "b2@example.com"}) == 1
    await repo.bulk_update([(a["id"], {"name": "A3"}), (b["id"], {"name": "B3"})])
    await repo.increment(a["id"], balance=5)
    assert await repo.increment_many({"id": {"$in": [a["id"], b["id"]]}}, balance=1) == 2
    assert await repo.update_many({"name": "nobody"}, {"name": "x"}) == 0

    changes = summary(await feed(engine, after=2))
    changes[5:] = sorted(changes[5:])
    assert changes == [
        ("UPDATE", (a["id"],), ("name",)),
        ("UPDATE", (b["id"],), ("email",)),
        ("UPDATE", (a["id"],), ("name",)),
        ("UPDATE", (b["id"],), ("name",)),
        ("UPDATE", (a["id"],), ("balance",)),
        *sorted([("UPDATE", (a["id"],), ("balance",)), ("UPDATE", (b["id"],), ("balance",))]),
    ]


async def test_upsert_records_insert_or_update(engine: AsyncEngine) -> None:
    repo = await repository(engine, memberships)
    await repo.upsert({"org_id": 1, "user_id": 1, "role": "member"})
    await repo.upsert({"org_id": 1, "user_id": 1, "role": "admin"})
    await repo.upsert_many(
        [{"org_id": 1, "user_id": 1, "role": "owner"}, {"org_id": 1, "user_id": 2, "role": "m"}]
    )
    changes = summary(await feed(engine))
    assert changes[:2] == [
        ("INSERT", (1, 1), ("org_id", "role", "user_id")),
        ("UPDATE", (1, 1), ("org_id", "role", "user_id")),
    ]
    assert sorted(c[:2] for c in changes[2:]) == [("INSERT", (1, 2)), ("UPDATE", (1, 1))]


async def test_deletes_record_only_rows_that_existed(engine: AsyncEngine) -> None:
    repo = await repository(engine)
    a = await repo.create({"email": "a@example.com", "name": "A"})
    b = await repo.create({"email": "b@example.com", "name": "B"})
    c = await repo.create({"email": "c@example.com", "name": "C"})
    assert await repo.delete(a["id"]) is True
    assert await repo.delete(a["id"]) is False
    assert await repo.delete_many([b["id"], c["id"], 999_999]) == 2
    assert await repo.delete_many([999_998]) == 0
    changes = summary(await feed(engine, after=3))
    assert changes[0] == ("DELETE", (a["id"],), ())
    assert sorted(changes[1:]) == [("DELETE", (b["id"],), ()), ("DELETE", (c["id"],), ())]


async def test_soft_delete_and_restore_are_recorded(engine: AsyncEngine) -> None:
    orm = await create_orm(engine, plugins=[ChangeFeedPlugin(table=CHANGES), SoftDeletePlugin()])
    repo: Any = orm.repository(posts)
    a = await repo.create({"title": "a"})
    b = await repo.create({"title": "b"})
    await repo.soft_delete(a["id"])
    await repo.restore(a["id"])
    assert await repo.soft_delete_many([a["id"], b["id"]]) == 2
    assert await repo.restore_many([a["id"], b["id"], 999]) == 2
    assert await repo.hard_delete(a["id"]) is True
    assert await repo.hard_delete_many([b["id"]]) == 1
    ops = [(c.operation, c.key) for c in await feed(engine, after=2)]
    a_key, b_key = (a["id"],), (b["id"],)
    assert ops[:2] == [("SOFT_DELETE", a_key), ("RESTORE", a_key)]
    assert sorted(ops[2:4]) == sorted([("SOFT_DELETE", a_key), ("SOFT_DELETE", b_key)])
    assert sorted(ops[4:6]) == sorted([("RESTORE", a_key), ("RESTORE", b_key)])
    assert ops[6:] == [("DELETE", a_key), ("DELETE", b_key)]
    assert "deleted_at" in (await feed(engine, after=2))[0].columns


async def test_a_rolled_back_write_yields_no_change_and_no_gap(engine: AsyncEngine) -> None:
    orm = await create_orm(engine, plugins=[ChangeFeedPlugin(table=CHANGES)])
    repo = orm.repository(accounts)
    with pytest.raises(RuntimeError):  # noqa: PT012 - the block is the transaction
        async with orm.transaction():
            await repo.create({"email": "r@example.com", "name": "R"})
            await repo.create_many([{"email": "s@example.com", "name": "S"}])
            raise RuntimeError("roll back")
    with pytest.raises(NotFoundError):
        await repo.update(424242, {"name": "missing"})
    with pytest.raises(UniqueConstraintError):
        await repo.create_many(
            [{"email": "d@example.com", "name": "1"}, {"email": "d@example.com", "name": "2"}]
        )
    assert await feed(engine) == []
    await repo.create({"email": "ok@example.com", "name": "OK"})
    assert [c.id for c in await feed(engine)] == [1]


async def test_tables_and_exclude_tables_choose_what_is_recorded(engine: AsyncEngine) -> None:
    only = await repository(engine, memberships, tables=["cf_accounts"])
    await only.create({"org_id": 9, "user_id": 9, "role": "x"})
    excluded = await repository(engine, accounts, exclude_tables=["cf_accounts"])
    await excluded.create({"email": "e@example.com", "name": "E"})
    assert await feed(engine) == []


async def test_bulk_paths_add_a_constant_number_of_statements(engine: AsyncEngine) -> None:
    """The plugin adds the same few statements to a bulk write of 2 rows and of 50 rows."""
    plain = (await create_orm(engine)).repository(accounts)
    recorded = await repository(engine)

    async def statements(repo: Any, size: int, tag: str) -> tuple[int, int, int]:
        rows = [{"email": f"{tag}{size}-{i}@example.com", "name": tag} for i in range(size)]
        with capture_queries(engine) as created:
            made = await repo.create_many(rows)
        with capture_queries(engine) as updated:
            await repo.update_many({"name": tag}, {"name": f"{tag}{size}"})
        with capture_queries(engine) as deleted:
            await repo.delete_many([row["id"] for row in made])
        return created.count, updated.count, deleted.count

    added = []
    for size in (2, 50):
        base = await statements(plain, size, "p")
        more = await statements(recorded, size, "r")
        added.append(tuple(m - b for m, b in zip(more, base, strict=True)))
    assert added[0] == added[1]
    assert all(extra <= 5 for extra in added[0]), added


async def test_tables_filter_and_limit(engine: AsyncEngine) -> None:
    accounts_repo = await repository(engine)
    members = await repository(engine, memberships)
    await accounts_repo.create({"email": "a@example.com", "name": "A"})
    await members.create({"org_id": 1, "user_id": 1, "role": "x"})
    await accounts_repo.create({"email": "b@example.com", "name": "B"})
    assert [c.id for c in await feed(engine, tables=["cf_accounts"])] == [1, 3]
    assert [c.id for c in await feed(engine, tables="cf_memberships")] == [2]
    assert [c.id for c in await feed(engine, limit=2)] == [1, 2]
    assert [c.id for c in await feed(engine, after=2)] == [3]


async def test_purge_changes_deletes_only_old_rows(engine: AsyncEngine) -> None:
    repo = await repository(engine)
    await repo.create({"email": "a@example.com", "name": "A"})
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    assert (
        await purge_changes(engine, older_than=dt.timedelta(hours=3), table=CHANGES, now=later) == 0
    )
    assert (
        await purge_changes(engine, older_than=dt.timedelta(hours=1), table=CHANGES, now=later) == 1
    )
    await repo.create({"email": "b@example.com", "name": "B"})
    # Ids are never reused after a purge: a stored cursor stays valid.
    assert [c.id for c in await feed(engine)] == [2]


async def test_bad_input_is_refused_before_any_sql(engine: AsyncEngine) -> None:
    for after in (-1, "3", 1.5, True):
        with pytest.raises(InvalidQueryError):
            await read_changes(engine, after=after, table=CHANGES)  # type: ignore[arg-type]
    with pytest.raises(InvalidQueryError):
        await read_changes(engine, limit=0, table=CHANGES)
    with pytest.raises(InvalidQueryError):
        await purge_changes(engine, older_than=5, table=CHANGES)  # type: ignore[arg-type]
    with pytest.raises(InvalidQueryError):
        await purge_changes(engine, older_than=dt.timedelta(seconds=-1), table=CHANGES)
    for bad in ({"poll_interval": -1}, {"batch_size": 0}, {"after": -5}):
        with pytest.raises(InvalidQueryError):
            follow_changes(engine, table=CHANGES, **bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ChangeFeedPlugin(table="")
