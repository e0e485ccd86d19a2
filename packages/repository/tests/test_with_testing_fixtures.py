"""Repositories under kysera.core's testing fixtures: everything done on `kysera_connection`
is rolled back, whatever the repository does with transactions and savepoints."""

from __future__ import annotations

import pytest
from repository_support import User, UserCreate, users
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.core import NotFoundError
from kysera.core.testing import snapshot_table
from kysera.repository import create_orm, create_repository


async def test_repositories_work_on_the_rolled_back_connection(
    engine: AsyncEngine, kysera_connection: AsyncConnection
) -> None:
    repo = create_repository(kysera_connection, users, entity=User, create=UserCreate)
    orm = await create_orm(kysera_connection)
    in_orm = orm.repository(users, entity=User, create=UserCreate)

    many = await repo.create_many([{"email": f"k{n}@example.com", "name": "K"} for n in range(3)])
    await repo.bulk_update([(user.id, {"age": 3}) for user in many])
    with pytest.raises(NotFoundError):
        await repo.bulk_update([(many[0].id, {"age": 4}), (10**6, {"age": 4})])
    async with orm.transaction():
        await in_orm.upsert({"email": "k0@example.com", "name": "Again"}, conflict=["email"])
    await kysera_connection.commit()  # code under test may commit: still rolled back later

    assert [u.age for u in await repo.find_all(order_by="id")] == [3, 3, 3]
    assert (await repo.get(many[0].id)).name == "Again"


async def test_and_afterwards_nothing_is_left(schema: AsyncEngine) -> None:
    # Runs after the test above (same module, same database) without emptying the tables.
    assert await snapshot_table(schema, users) == []
