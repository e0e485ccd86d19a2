"""orm.transaction(): ambient binding, rollback, savepoints, isolation, concurrent tasks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from repository_support import User, UserCreate, users
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from kysera.core import BadRequestError
from kysera.core.testing import snapshot_table
from kysera.repository import Orm, Repository, Transaction, create_orm


class Boom(Exception):
    pass


async def user_repository(engine: AsyncEngine) -> tuple[Orm, Repository[User]]:
    orm = await create_orm(engine)
    return orm, orm.repository(users, entity=User, create=UserCreate)


def person(n: int) -> dict[str, object]:
    return {"email": f"t{n}@example.com", "name": f"T{n}"}


async def test_repositories_created_before_the_block_join_it(engine: AsyncEngine) -> None:
    orm, repo = await user_repository(engine)

    async with orm.transaction() as tx:
        created = await repo.create(person(1))
        # Not visible outside the transaction yet...
        assert await snapshot_table(engine, users) == [] or engine.dialect.name == "sqlite"
        # ...but visible inside it, including to plain Core statements on tx.connection.
        count = await tx.connection.scalar(sa.select(sa.func.count()).select_from(users))
        assert count == 1
        assert orm.executor is tx.connection
    assert orm.executor is engine
    assert [row["id"] for row in await snapshot_table(engine, users)] == [created.id]


async def test_an_exception_rolls_the_whole_block_back(engine: AsyncEngine) -> None:
    orm, repo = await user_repository(engine)

    async def failing_block() -> None:
        async with orm.transaction():
            created = await repo.create(person(1))
            await repo.update(created.id, {"age": 5})
            await repo.create_many([person(2), person(3)])
            raise Boom

    with pytest.raises(Boom):
        await failing_block()

    assert await snapshot_table(engine, users) == []


async def test_a_nested_block_is_a_savepoint(engine: AsyncEngine) -> None:
    orm, repo = await user_repository(engine)

    async def failing_savepoint(outer: Transaction) -> None:
        async with orm.transaction() as inner:
            assert inner.nested
            assert inner.connection is outer.connection
            await repo.create(person(2))
            raise Boom

    async with orm.transaction() as outer:
        await repo.create(person(1))
        with pytest.raises(Boom):
            await failing_savepoint(outer)
        async with orm.transaction():
            await repo.create(person(3))
        with pytest.raises(BadRequestError):
            async with orm.transaction(isolation_level="SERIALIZABLE"):
                pass

    assert [row["email"] for row in await snapshot_table(engine, users)] == [
        "t1@example.com",
        "t3@example.com",
    ]


async def _isolation(connection: AsyncConnection) -> str:
    dialect = connection.dialect.name
    if dialect == "postgresql":
        return str(await connection.scalar(sa.text("SHOW transaction_isolation"))).upper()
    if dialect == "mysql":
        return str(await connection.scalar(sa.text("SELECT @@session.tx_isolation")))
    uncommitted = await connection.scalar(sa.text("PRAGMA read_uncommitted"))
    return "READ UNCOMMITTED" if uncommitted else "SERIALIZABLE"


async def test_the_isolation_level_is_really_applied(engine: AsyncEngine) -> None:
    orm, _repo = await user_repository(engine)
    wanted = {
        "postgresql": ("SERIALIZABLE", "SERIALIZABLE"),
        "mysql": ("SERIALIZABLE", "SERIALIZABLE"),
        "sqlite": ("READ UNCOMMITTED", "READ UNCOMMITTED"),
    }[engine.dialect.name]

    async with orm.transaction(isolation_level=wanted[0]) as tx:
        assert tx.isolation_level == wanted[0]
        assert (await _isolation(tx.connection)).replace("-", " ") == wanted[1]

    # The pooled connection got its default level back.
    async with engine.connect() as connection:
        assert (await _isolation(connection)).replace("-", " ") != wanted[1]


async def test_concurrent_tasks_never_share_a_transaction(engine: AsyncEngine) -> None:
    orm, repo = await user_repository(engine)
    connections: dict[int, AsyncConnection] = {}
    tasks = 12

    async def work(n: int) -> None:
        async with orm.transaction() as tx:
            connections[n] = tx.connection
            await repo.create(person(n))
            await asyncio.sleep(0.01)  # let the other tasks interleave
            # Each task sees its own row and no other task's uncommitted row.
            assert [user.email for user in await repo.find({"email": f"t{n}@example.com"})]
            assert orm.executor is tx.connection
            if n % 3 == 0:
                raise Boom

    results = await asyncio.gather(*(work(n) for n in range(tasks)), return_exceptions=True)

    assert [isinstance(r, Boom) for r in results] == [n % 3 == 0 for n in range(tasks)]
    assert len({id(connection) for connection in connections.values()}) == tasks
    assert sorted(row["email"] for row in await snapshot_table(engine, users)) == sorted(
        f"t{n}@example.com" for n in range(tasks) if n % 3
    )


async def test_an_orm_on_a_connection_never_commits(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.begin()
        orm = await create_orm(connection)
        repo = orm.repository(users, entity=User, create=UserCreate)
        async with orm.transaction() as tx:
            assert tx.nested
            await repo.create(person(1))

        async def failing_block() -> None:
            async with orm.transaction():
                await repo.create(person(2))
                raise Boom

        with pytest.raises(Boom):
            await failing_block()
        assert await repo.count() == 1
        await connection.rollback()

    assert await snapshot_table(engine, users) == []


async def test_repository_atomic_groups_writes(engine: AsyncEngine) -> None:
    _orm, repo = await user_repository(engine)

    async def failing_unit() -> None:
        async with repo.atomic() as unit:
            await unit.create(person(1))
            raise Boom

    with pytest.raises(Boom):
        await failing_unit()
    async with repo.atomic() as unit:
        await unit.create(person(2))

    assert [row["email"] for row in await snapshot_table(engine, users)] == ["t2@example.com"]


async def test_savepoints_work_on_a_plain_sqlite_engine(tmp_path: Path) -> None:
    # A plain aiosqlite engine keeps the sqlite3 driver's legacy transaction handling
    # (no SQLAlchemy recipe): Kysera must still nest and roll back correctly.
    plain = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'plain.db'}")
    try:
        async with plain.begin() as connection:
            await connection.run_sync(users.create)
        orm, repo = await user_repository(plain)

        async def failing_savepoint() -> None:
            async with orm.transaction():
                await repo.create_many([person(2), person(3)])
                raise Boom

        async with orm.transaction():
            with pytest.raises(Boom):
                await failing_savepoint()
            await repo.create(person(1))

        async with plain.connect() as connection:
            caller = repo.with_executor(connection)
            await caller.create_many([person(4), person(5)])
            await caller.bulk_update([(1, {"age": 9})])
            await connection.rollback()

        assert [(row["email"], row["age"]) for row in await snapshot_table(plain, users)] == [
            ("t1@example.com", None)
        ]
    finally:
        await plain.dispose()


async def test_orm_execute_runs_core_statements_in_the_current_transaction(
    engine: AsyncEngine,
) -> None:
    orm, _repo = await user_repository(engine)

    await orm.execute(sa.insert(users).values(email="x@example.com", name="X"))  # commits
    assert len(await snapshot_table(engine, users)) == 1

    async def failing_block() -> None:
        async with orm.transaction():
            await orm.execute(sa.update(users).values(name="changed"))
            await orm.execute(sa.text("DELETE FROM rp_users"))
            raise Boom

    with pytest.raises(Boom):
        await failing_block()
    rows = (await orm.execute(sa.select(users.c.name))).all()
    assert [row.name for row in rows] == ["X"]
