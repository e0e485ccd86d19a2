"""bulk_update, upsert and who commits: atomic writes on every database."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel
from repository_support import User, UserCreate, counters, users, writes
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import InvalidQueryError, NotFoundError, UniqueConstraintError, ValidationError
from kysera.core.capture import capture_queries
from kysera.core.testing import snapshot_table
from kysera.repository import Repository, create_repository


class Counter(BaseModel):
    name: str
    value: int
    note: str | None


def user_repository(executor: Any) -> Repository[User]:
    return create_repository(executor, users, entity=User, create=UserCreate)


def new_users(count: int) -> list[dict[str, Any]]:
    return [{"email": f"b{n}@example.com", "name": f"B{n}", "age": n} for n in range(count)]


async def test_bulk_update_applies_every_change_and_returns_rows_in_order(
    engine: AsyncEngine,
) -> None:
    repo = user_repository(engine)
    created = await repo.create_many(new_users(4))

    updated = await repo.bulk_update(
        [(created[2].id, {"age": 200}), (created[0].id, {"age": 100, "status": "vip"})]
    )

    assert [(u.id, u.age, u.status) for u in updated] == [
        (created[2].id, 200, "active"),
        (created[0].id, 100, "vip"),
    ]
    assert [row["age"] for row in await snapshot_table(engine, users)] == [100, 1, 200, 3]
    assert await repo.bulk_update([]) == []


async def test_bulk_update_with_one_missing_id_changes_nothing(engine: AsyncEngine) -> None:
    repo = user_repository(engine)
    created = await repo.create_many(new_users(3))
    before = await snapshot_table(engine, users)

    with pytest.raises(NotFoundError) as raised:
        await repo.bulk_update([(created[0].id, {"age": 50}), (10**6, {"age": 60})])
    assert raised.value.filters == [10**6]
    with pytest.raises(ValidationError):
        await repo.bulk_update([(created[0].id, {"age": 50}), (created[1].id, {"age": -1})])

    assert await snapshot_table(engine, users) == before


async def test_bulk_update_uses_a_fixed_number_of_statements(engine: AsyncEngine) -> None:
    repo = user_repository(engine)
    created = await repo.create_many(new_users(40))

    counts = []
    for size in (2, 40):
        with capture_queries(engine) as log:
            await repo.bulk_update([(user.id, {"age": 7}) for user in created[:size]])
        counts.append(log.count)
    assert counts[0] == counts[1] <= 5  # lock, one executemany UPDATE, read back (+BEGIN/COMMIT)


async def test_bulk_update_in_a_callers_transaction_is_all_or_nothing(
    engine: AsyncEngine,
) -> None:
    seeded = await user_repository(engine).create_many(new_users(2))
    async with engine.connect() as connection:
        await connection.begin()
        repo = user_repository(connection)
        await repo.update(seeded[0].id, {"name": "kept"})
        # The second change collides with the unique email of the first row.
        with pytest.raises(UniqueConstraintError):
            await repo.bulk_update(
                [(seeded[0].id, {"age": 99}), (seeded[1].id, {"email": seeded[0].email})]
            )
        assert (await repo.get(seeded[0].id)).model_dump(include={"name", "age"}) == {
            "name": "kept",
            "age": 0,
        }
        await connection.commit()
    assert [row["name"] for row in await snapshot_table(engine, users)] == ["kept", "B1"]


async def test_upsert_inserts_then_updates(engine: AsyncEngine) -> None:
    repo = create_repository(engine, counters, entity=Counter)

    inserted = await repo.upsert({"name": "hits", "value": 1, "note": "first"})
    assert inserted == Counter(name="hits", value=1, note="first")
    updated = await repo.upsert({"name": "hits", "value": 2, "note": "second"}, update=["value"])
    assert updated == Counter(name="hits", value=2, note="first")
    assert await snapshot_table(engine, counters) == [{"name": "hits", "value": 2, "note": "first"}]

    users_repo = user_repository(engine)
    user = await users_repo.upsert({"email": "u@example.com", "name": "U"}, conflict=["email"])
    again = await users_repo.upsert(
        {"email": "u@example.com", "name": "U2", "age": 5}, conflict=["email"]
    )
    assert (again.id, again.name, again.age) == (user.id, "U2", 5)


async def test_upsert_many_merges_duplicates_and_returns_rows_in_order(
    engine: AsyncEngine,
) -> None:
    repo = create_repository(engine, counters, entity=Counter)
    await repo.create({"name": "b", "value": 0})

    found = await repo.upsert_many(
        [
            {"name": "a", "value": 1},
            {"name": "b", "value": 2},
            {"name": "c", "value": 3},
            {"name": "a", "value": 4},
        ]
    )

    assert [(c.name, c.value) for c in found] == [("a", 4), ("b", 2), ("c", 3)]
    assert [(r["name"], r["value"]) for r in await snapshot_table(engine, counters)] == [
        ("a", 4),
        ("b", 2),
        ("c", 3),
    ]
    with pytest.raises(InvalidQueryError):
        await repo.upsert({"value": 1})
    with pytest.raises(InvalidQueryError):
        await repo.upsert({"name": "a", "value": 1}, conflict=["nope"])
    with pytest.raises(ValidationError):
        await repo.upsert_many([{"name": "z", "value": 1}, {"name": "y", "bogus": 1}])
    assert await repo.count() == 3


async def test_concurrent_upserts_of_one_key_leave_one_row(engine: AsyncEngine) -> None:
    repo = create_repository(engine, counters, entity=Counter)

    results = await asyncio.gather(*(repo.upsert({"name": "race", "value": n}) for n in range(20)))

    assert {result.name for result in results} == {"race"}
    rows = await snapshot_table(engine, counters)
    assert len(rows) == 1
    assert rows[0]["value"] in range(20)


async def test_an_engine_repository_commits_each_write(engine: AsyncEngine) -> None:
    repo = user_repository(engine)
    created = await repo.create(new_users(1)[0])
    await repo.update(created.id, {"age": 77})

    # Visible from another connection: committed.
    assert [row["age"] for row in await snapshot_table(engine, users)] == [77]


async def test_a_connection_repository_never_commits(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        repo = user_repository(connection)
        created = await repo.create(new_users(1)[0])
        updated = await repo.update(created.id, {"age": 42})
        assert updated.age == 42
        assert (await repo.get(created.id)).age == 42
        await repo.create_many(new_users(3)[1:])
        await repo.upsert({"email": "b0@example.com", "name": "again"}, conflict=["email"])
        assert await repo.count() == 3
        await connection.rollback()

    assert await snapshot_table(engine, users) == []


async def test_reads_on_an_engine_open_no_transaction(engine: AsyncEngine) -> None:
    repo = user_repository(engine)
    created = await repo.create(new_users(1)[0])

    with capture_queries(engine) as log:
        await repo.find_by_id(created.id)
        await repo.find({"age": 0})
        await repo.count()
    assert log.count == 3
    assert all(query.sql.startswith("SELECT") for query in log.queries)


async def test_create_on_an_engine_sends_one_statement(engine: AsyncEngine) -> None:
    repo = user_repository(engine)
    with capture_queries(engine) as log:
        await repo.create(new_users(1)[0])
    if engine.dialect.name == "postgresql":
        assert log.count == 1
    assert len(writes(log)) == 1


@pytest.mark.kysera_databases("postgresql", "mysql")
async def test_a_deadlocked_write_of_its_own_is_run_again(engine: AsyncEngine) -> None:
    repo = user_repository(engine)
    first, second = await repo.create_many(new_users(2))

    async with engine.connect() as other:
        if engine.dialect.name == "postgresql":
            # Let the repository's transaction be the one that detects the deadlock.
            await other.execute(sa.text("SET deadlock_timeout = '20s'"))
            await other.commit()
        await other.begin()
        # MySQL aborts the transaction that changed less: make this one heavier.
        await other.execute(counters.insert(), [{"name": f"w{n}", "value": n} for n in range(20)])
        await other.execute(users.update().where(users.c.id == second.id).values(age=500))
        task = asyncio.create_task(
            repo.bulk_update([(first.id, {"age": 100}), (second.id, {"age": 200})])
        )
        await asyncio.sleep(0.5)  # bulk_update now holds `first` and waits for `second`
        await other.execute(users.update().where(users.c.id == first.id).values(age=501))
        await other.commit()
        if engine.dialect.name == "postgresql":
            await other.execute(sa.text("RESET deadlock_timeout"))
            await other.commit()

    # The database aborted the repository's transaction; it ran again after `other` committed.
    assert [user.age for user in await task] == [100, 200]
    assert [row["age"] for row in await snapshot_table(engine, users)] == [100, 200]


async def test_a_mixin_can_keep_columns_out_of_the_upsert_update(engine: AsyncEngine) -> None:
    class KeepNote(Repository[Counter]):
        def upsert_update_columns(self, columns: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(name for name in super().upsert_update_columns(columns) if name != "note")

    repo = KeepNote(engine, counters, entity=Counter)
    await repo.upsert({"name": "n", "value": 1, "note": "first"})

    again = await repo.upsert({"name": "n", "value": 2, "note": "second"})

    assert (again.value, again.note) == (2, "first")
