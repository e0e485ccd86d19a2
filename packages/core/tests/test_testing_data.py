"""Factory, seeding and inspection helpers, used the way a test suite uses them."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.core import BadRequestError, InvalidQueryError, UniqueConstraintError
from kysera.core.testing import (
    Factory,
    assert_row_exists,
    clean_database,
    count_rows,
    seed_database,
    snapshot_table,
    wait_for,
)

metadata = sa.MetaData()
users = sa.Table(
    "tst_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(100), nullable=False, unique=True),
    sa.Column("name", sa.String(50), nullable=False, server_default="anonymous"),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("token", sa.String(40)),
)
posts = sa.Table(
    "tst_posts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.ForeignKey("tst_users.id"), nullable=False),
    sa.Column("title", sa.String(100), nullable=False),
)


@pytest.fixture(scope="module")
async def schema(kysera_engine: AsyncEngine) -> AsyncIterator[None]:
    # Created outside the rolled-back connections: DDL commits implicitly on MySQL.
    async with kysera_engine.begin() as setup:
        await setup.run_sync(metadata.drop_all)
        await setup.run_sync(metadata.create_all)
    yield
    async with kysera_engine.begin() as teardown:
        await teardown.run_sync(metadata.drop_all)


@pytest.fixture
def conn(schema: None, kysera_connection: AsyncConnection) -> AsyncConnection:
    """The plugin's rolled-back connection, once the tables exist."""
    return kysera_connection


def user_factory() -> Factory:
    tokens = itertools.count(1)
    return Factory(
        users,
        sequence=lambda n: {"email": f"user{n}@example.com"},
        token=lambda: f"token-{next(tokens)}",
    )


def test_build_uses_sequences_defaults_callables_and_overrides() -> None:
    factory = user_factory()

    first = factory.build()
    second = factory.build(name="Ada", token="fixed")

    assert first == {"email": "user1@example.com", "token": "token-1"}
    assert second == {"email": "user2@example.com", "token": "fixed", "name": "Ada"}
    assert [row["email"] for row in factory.build_many(2)] == [
        "user3@example.com",
        "user4@example.com",
    ]


def test_a_class_with_a_table_works_like_the_table() -> None:
    class UserRow:
        __table__ = users

    assert Factory(UserRow, name="Ada").build() == {"name": "Ada"}


def test_build_refuses_unknown_columns() -> None:
    with pytest.raises(InvalidQueryError, match="'nickname'"):
        Factory(users, nickname="x")
    with pytest.raises(InvalidQueryError, match="'nickname'"):
        user_factory().build(nickname="x")
    with pytest.raises(BadRequestError, match="Table"):
        Factory("tst_users")


async def test_create_inserts_real_rows_and_returns_them_as_stored(conn: AsyncConnection) -> None:
    factory = user_factory()

    ada = await factory.create(conn, name="Ada")
    others = await factory.create_many(conn, 3, active=False)

    assert ada["id"] is not None
    assert ada["name"] == "Ada"
    assert ada["active"] is True  # the server default, read back
    assert [row["email"] for row in others] == [f"user{n}@example.com" for n in (2, 3, 4)]
    assert [row["name"] for row in others] == ["anonymous"] * 3  # the server default
    assert len({row["id"] for row in [ada, *others]}) == 4
    assert await snapshot_table(conn, users) == [ada, *others]


async def test_create_many_of_zero_inserts_nothing(conn: AsyncConnection) -> None:
    assert await user_factory().create_many(conn, 0) == []
    assert await count_rows(conn, users) == 0


async def test_a_failing_create_raises_a_classified_error(conn: AsyncConnection) -> None:
    factory = user_factory()
    await factory.create(conn, email="taken@example.com")
    await conn.commit()

    with pytest.raises(UniqueConstraintError):
        await factory.create(conn, email="taken@example.com")
    await conn.rollback()

    assert await count_rows(conn, users) == 1


async def test_create_on_an_engine_commits(kysera_engine: AsyncEngine, schema: None) -> None:
    try:
        row = await user_factory().create(kysera_engine)

        assert await assert_row_exists(kysera_engine, users, email=row["email"]) == row
    finally:
        await clean_database(kysera_engine, tables=[users])


async def test_seed_inserts_parents_first_in_one_transaction(conn: AsyncConnection) -> None:
    await seed_database(
        conn,
        {
            posts: [{"id": 10, "user_id": 1, "title": "Hello"}],
            "tst_users": [{"id": 1, "email": "ada@example.com"}],
        },
    )

    assert await count_rows(conn, "tst_posts") == 1
    assert await assert_row_exists(conn, users, id=1, email="ada@example.com")


async def test_seed_with_a_bad_row_inserts_nothing(conn: AsyncConnection) -> None:
    with pytest.raises(InvalidQueryError, match="'titel'"):
        await seed_database(
            conn,
            {
                users: [{"id": 1, "email": "ada@example.com"}],
                posts: [{"id": 10, "user_id": 1, "titel": "typo"}],
            },
        )
    assert await count_rows(conn, users) == 0


@pytest.mark.parametrize("name", ["tst_nope", "tst_users; DROP TABLE tst_posts", 'tst_users"'])
async def test_bad_table_names_are_refused(conn: AsyncConnection, name: str) -> None:
    with pytest.raises(BadRequestError, match="table"):
        await count_rows(conn, name)
    with pytest.raises(BadRequestError, match="table"):
        await seed_database(conn, {name: [{"id": 1}]})
    assert await count_rows(conn, posts) == 0


async def test_snapshot_is_ordered_by_primary_key(conn: AsyncConnection) -> None:
    await seed_database(
        conn,
        {users: [{"id": n, "email": f"u{n}@example.com"} for n in (3, 1, 2)]},
    )

    snapshot = await snapshot_table(conn, "tst_users")

    assert [row["id"] for row in snapshot] == [1, 2, 3]
    assert snapshot[0] == {
        "id": 1,
        "email": "u1@example.com",
        "name": "anonymous",
        "active": True,
        "token": None,
    }


async def test_count_rows_and_assert_row_exists_filter_by_columns(conn: AsyncConnection) -> None:
    factory = user_factory()
    await factory.create_many(conn, 2)
    await factory.create(conn, active=False)

    assert await count_rows(conn, users) == 3
    assert await count_rows(conn, users, active=False) == 1
    assert await count_rows(conn, users, token=None) == 0
    found = await assert_row_exists(conn, users, email="user3@example.com")
    assert found["active"] is False

    with pytest.raises(AssertionError, match=r"no row in 'tst_users' with \{'email': 'x@y.z'\}"):
        await assert_row_exists(conn, users, email="x@y.z")
    with pytest.raises(InvalidQueryError, match="'mail'"):
        await count_rows(conn, users, mail="x")


async def test_wait_for_returns_once_the_condition_holds(conn: AsyncConnection) -> None:
    flag = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, flag.set)
    checks = 0

    async def flag_is_set() -> bool:
        nonlocal checks
        checks += 1
        return flag.is_set()

    assert await wait_for(flag_is_set, timeout=2, interval=0.01) is True
    assert checks > 1

    assert await wait_for(lambda: "ready") == "ready"


async def test_wait_for_times_out_with_the_last_value() -> None:
    with pytest.raises(TimeoutError, match="last value: 0"):
        await wait_for(lambda: 0, timeout=0.05, interval=0.01)


@pytest.mark.parametrize(("timeout", "interval"), [(0, 0.1), (1, 0), (-1, 0.1)])
async def test_wait_for_refuses_non_positive_times(timeout: float, interval: float) -> None:
    with pytest.raises(BadRequestError, match="positive"):
        await wait_for(lambda: True, timeout=timeout, interval=interval)
