"""``savepoint=True``: a failed write inside the caller's transaction leaves it usable (SPEC §8).

On PostgreSQL any failed statement aborts the whole transaction; a write run in a SAVEPOINT
rolls back to it instead, so "try the insert, on UniqueConstraintError read" works inside
``orm.transaction()`` on every dialect.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import DatabaseError, ForeignKeyError, UniqueConstraintError
from kysera.core.testing import snapshot_table
from kysera.repository import Repository, create_orm

metadata = sa.MetaData()
members = sa.Table(
    "savepoint_members",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("email", sa.String(60), nullable=False, unique=True),
    sa.Column("visits", sa.Integer, nullable=False, server_default="0"),
)
badges = sa.Table(
    "savepoint_badges",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("member_id", sa.Integer, sa.ForeignKey("savepoint_members.id"), nullable=False),
)


@pytest_asyncio.fixture(loop_scope="session")
async def engine(kysera_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
        await connection.execute(
            members.insert(),
            [{"id": 1, "email": "ada@example.com"}, {"id": 2, "email": "bob@example.com"}],
        )
        await connection.execute(badges.insert(), [{"id": 1, "member_id": 1}])
    try:
        yield kysera_engine
    finally:
        async with kysera_engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)


Repo = Repository[dict[str, Any]]
Write = Callable[[Repo, Repo], Awaitable[object]]
# Each write fails: a unique violation, or (for upserts, which MySQL turns into an update on
# any unique key) a foreign key violation on the badges table.
FAILING_WRITES: dict[str, tuple[Write, type[DatabaseError]]] = {
    "create": (
        lambda repo, badges: repo.create({"id": 9, "email": "ada@example.com"}, savepoint=True),
        UniqueConstraintError,
    ),
    "create_many": (
        lambda repo, badges: repo.create_many(
            [{"id": 8, "email": "new@example.com"}, {"id": 9, "email": "bob@example.com"}],
            savepoint=True,
        ),
        UniqueConstraintError,
    ),
    "update": (
        lambda repo, badges: repo.update(2, {"email": "ada@example.com"}, savepoint=True),
        UniqueConstraintError,
    ),
    "update_many": (
        lambda repo, badges: repo.update_many(
            {"id": 2}, {"email": "ada@example.com"}, savepoint=True
        ),
        UniqueConstraintError,
    ),
    "bulk_update": (
        lambda repo, badges: repo.bulk_update([(2, {"email": "ada@example.com"})], savepoint=True),
        UniqueConstraintError,
    ),
    "upsert": (
        lambda repo, badges: badges.upsert({"id": 9, "member_id": 404}, savepoint=True),
        ForeignKeyError,
    ),
    "upsert_many": (
        lambda repo, badges: badges.upsert_many(
            [{"id": 8, "member_id": 1}, {"id": 9, "member_id": 404}], savepoint=True
        ),
        ForeignKeyError,
    ),
    "delete": (lambda repo, badges: repo.delete(1, savepoint=True), ForeignKeyError),
    "delete_many": (
        lambda repo, badges: repo.delete_many([1, 2], savepoint=True),
        ForeignKeyError,
    ),
}


@pytest.mark.parametrize("name", sorted(FAILING_WRITES))
async def test_a_failed_write_in_a_savepoint_leaves_the_transaction_usable(
    engine: AsyncEngine, name: str
) -> None:
    write, expected = FAILING_WRITES[name]
    orm = await create_orm(engine)
    repo = orm.repository(members)
    before = await snapshot_table(engine, members)

    async with orm.transaction():
        await repo.update(1, {"visits": 5})
        with pytest.raises(expected):
            await write(repo, orm.repository(badges))
        # The transaction goes on: a read and a write after the failure both work.
        assert (await repo.get(1))["visits"] == 5
        await repo.update(2, {"visits": 3})

    after = {row["id"]: row for row in await snapshot_table(engine, members)}
    assert {row["id"]: row["email"] for row in before} == {
        id: row["email"] for id, row in after.items()
    }
    assert after[1]["visits"] == 5
    assert after[2]["visits"] == 3
    async with engine.begin() as connection:  # put the seed back for the next test
        await connection.execute(members.update().values(visits=0))


@pytest.mark.kysera_databases("postgresql")
async def test_without_a_savepoint_postgresql_aborts_the_transaction(engine: AsyncEngine) -> None:
    """Why the option exists: the same failed insert, without it, poisons the transaction."""
    orm = await create_orm(engine)
    repo = orm.repository(members)

    async def insert_then_read() -> None:
        async with orm.transaction():
            with pytest.raises(UniqueConstraintError):
                await repo.create({"id": 9, "email": "ada@example.com"})
            await repo.get(1)

    with pytest.raises(DatabaseError, match="current transaction is aborted"):
        await insert_then_read()


async def get_or_create(repo: Repo, id: int, email: str) -> dict[str, Any]:
    """The get-or-create pattern of docs/repository.md."""
    try:
        return await repo.create({"id": id, "email": email}, savepoint=True)
    except UniqueConstraintError:
        found = await repo.find_one(where={"email": email})
        assert found is not None
        return found


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    emails=st.lists(st.sampled_from(["ada", "bob", "cy", "dee"]), min_size=1, max_size=8),
)
async def test_get_or_create_inside_one_transaction_matches_a_model(
    engine: AsyncEngine, emails: list[str]
) -> None:
    """Any sequence of get-or-creates, duplicates included, in one transaction: every call
    returns the row for its email, and the transaction commits exactly one row per email."""
    orm = await create_orm(engine)
    repo = orm.repository(members)
    seed = {row["email"]: row["id"] for row in await snapshot_table(engine, members)}
    expected = dict(seed)
    try:
        async with orm.transaction():
            for index, name in enumerate(emails):
                email = f"{name}@example.com"
                row = await get_or_create(repo, 100 + index, email)
                expected.setdefault(email, 100 + index)
                assert row["email"] == email
                assert row["id"] == expected[email]
        stored = {row["email"]: row["id"] for row in await snapshot_table(engine, members)}
        assert stored == expected
    finally:
        async with engine.begin() as connection:
            await connection.execute(members.delete().where(members.c.id >= 100))


async def test_atomic_without_savepoints_sends_none_and_is_still_all_or_nothing(
    engine: AsyncEngine,
) -> None:
    """``atomic(savepoints=False)`` (what plugin mixins use to record a write): a bulk write
    inside sends no SAVEPOINT of its own, and a failure still rolls back the whole block."""
    from kysera.core.capture import capture_queries

    repo = (await create_orm(engine)).repository(members)
    rows = [{"id": 30 + i, "email": f"m{i}@example.com"} for i in range(3)]

    with capture_queries(engine) as captured:
        async with repo.atomic(savepoints=False) as unit:
            await unit.create_many(rows)
            await unit.delete_many([row["id"] for row in rows])
    sent = [query.sql.split()[0].upper() for query in captured.queries]
    assert sent == ["INSERT", "DELETE"]

    async def fails_halfway() -> None:
        async with repo.atomic(savepoints=False) as unit:
            await unit.create_many(rows)
            await unit.create_many([{"id": 40, "email": "ada@example.com"}])

    with pytest.raises(UniqueConstraintError):
        await fails_halfway()
    assert {row["id"] for row in await snapshot_table(engine, members)} == {1, 2}
    # By default the same bulk write is isolated in a SAVEPOINT (the block may go on).
    async with repo.atomic() as unit:
        with pytest.raises(UniqueConstraintError):
            await unit.create_many([{"id": 40, "email": "ada@example.com"}])
        await unit.create(rows[0])
    assert {row["id"] for row in await snapshot_table(engine, members)} == {1, 2, 30}
    await repo.delete(30)
    # A repository bound elsewhere from inside such a block gets its savepoints back.
    async with repo.atomic(savepoints=False) as unit:
        assert unit.with_executor(engine)._write_savepoints is True
