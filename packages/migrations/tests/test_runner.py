"""MigrationRunner on every configured database: up, up_to, down, reset, status."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.core import BadRequestError
from kysera.migrations import (
    InvalidMigrationError,
    MigrationError,
    MigrationResult,
    MigrationRunner,
    migration,
)

TABLE = "mig_bookkeeping"
Tables = Callable[[], Awaitable[set[str]]]


async def create_users(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("CREATE TABLE mig_users (id INTEGER PRIMARY KEY, name VARCHAR(50))"))


async def drop_users(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("DROP TABLE mig_users"))


async def create_posts(conn: AsyncConnection) -> None:
    await conn.execute(
        sa.text("CREATE TABLE mig_posts (id INTEGER PRIMARY KEY, title VARCHAR(50))")
    )


async def drop_posts(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("DROP TABLE mig_posts"))


async def seed_users(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("INSERT INTO mig_users (id, name) VALUES (1, 'ada'), (2, 'bob')"))


async def unseed_users(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("DELETE FROM mig_users"))


MIGRATIONS = [
    migration("001_create_users", create_users, drop_users, description="users table"),
    migration("002_create_posts", create_posts, drop_posts),
    migration("003_seed_users", seed_users, unseed_users),
]


def runner(
    engine: AsyncEngine, migrations: list = MIGRATIONS, **options: object
) -> MigrationRunner:  # type: ignore[type-arg]
    return MigrationRunner(engine, migrations, table=TABLE, **options)  # type: ignore[arg-type]


async def test_up_applies_every_pending_migration_in_order(
    engine: AsyncEngine, tables: Tables
) -> None:
    result = await runner(engine).up()

    assert result.applied == ("001_create_users", "002_create_posts", "003_seed_users")
    assert result.skipped == ()
    assert result.failed is None
    assert result.dry_run is False
    assert {"mig_users", "mig_posts"} <= await tables()
    status = await runner(engine).status()
    assert status.applied == result.applied
    assert status.pending == ()
    assert status.up_to_date


async def test_applied_migrations_are_ordered_by_a_monotonic_id(engine: AsyncEngine) -> None:
    await runner(engine).up_to("002_create_posts")
    await runner(engine).down()
    await runner(engine).up()

    records = (await runner(engine).status()).records
    ids = [record.id for record in records]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    # 002 was applied, rolled back and applied again: it now comes after 001, by id.
    assert [record.name for record in records] == [
        "001_create_users",
        "002_create_posts",
        "003_seed_users",
    ]
    assert records[1].id > 2


async def test_up_twice_applies_nothing_the_second_time(engine: AsyncEngine) -> None:
    await runner(engine).up()

    again = await runner(engine).up()

    assert again.applied == ()
    assert again.skipped == ("001_create_users", "002_create_posts", "003_seed_users")


async def test_up_to_stops_after_the_named_migration(engine: AsyncEngine) -> None:
    result = await runner(engine).up_to("002_create_posts")

    assert result.applied == ("001_create_users", "002_create_posts")
    assert (await runner(engine).status()).pending == ("003_seed_users",)


async def test_up_to_an_unknown_migration_is_a_bad_request(
    engine: AsyncEngine, tables: Tables
) -> None:
    with pytest.raises(InvalidMigrationError, match="unknown migration '004_nope'"):
        await runner(engine).up_to("004_nope")
    assert await tables() == set()


async def test_down_rolls_back_the_newest_migrations_first(
    engine: AsyncEngine, tables: Tables
) -> None:
    await runner(engine).up()

    result = await runner(engine).down(steps=2)

    assert result == MigrationResult(
        direction="down",
        applied=("003_seed_users", "002_create_posts"),
        duration_ms=result.duration_ms,
    )
    assert await tables() == {TABLE, "mig_users"}
    async with engine.connect() as conn:
        assert (await conn.execute(sa.text("SELECT COUNT(*) FROM mig_users"))).scalar() == 0
    assert (await runner(engine).status()).applied == ("001_create_users",)


async def test_down_defaults_to_one_step_and_stops_when_nothing_is_applied(
    engine: AsyncEngine,
) -> None:
    await runner(engine).up_to("001_create_users")

    assert (await runner(engine).down()).applied == ("001_create_users",)
    assert (await runner(engine).down(steps=5)).applied == ()


async def test_reset_rolls_back_everything(engine: AsyncEngine, tables: Tables) -> None:
    await runner(engine).up()

    result = await runner(engine).reset()

    assert result.applied == ("003_seed_users", "002_create_posts", "001_create_users")
    assert await tables() == {TABLE}
    assert (await runner(engine).status()).applied == ()


async def test_down_over_a_migration_without_down_raises_and_rolls_back_nothing(
    engine: AsyncEngine, tables: Tables
) -> None:
    migrations = [
        migration("001_create_users", create_users),  # no down()
        migration("002_create_posts", create_posts, drop_posts),
    ]
    await runner(engine, migrations).up()

    with pytest.raises(MigrationError, match="has no down") as caught:
        await runner(engine, migrations).down(steps=2)

    assert caught.value.name == "001_create_users"
    assert caught.value.direction == "down"
    assert caught.value.result is not None
    assert caught.value.result.failed == "001_create_users"
    # Checked before anything ran: 002 is still applied.
    assert (await runner(engine, migrations).status()).applied == (
        "001_create_users",
        "002_create_posts",
    )
    assert {"mig_users", "mig_posts"} <= await tables()


async def test_down_over_a_migration_missing_from_the_code_raises(engine: AsyncEngine) -> None:
    await runner(engine).up()

    with pytest.raises(MigrationError, match="missing from the code") as caught:
        await runner(engine, MIGRATIONS[:2]).down()

    assert caught.value.name == "003_seed_users"


@pytest.mark.parametrize("steps", [0, -1, 1.5, True])
async def test_down_needs_a_positive_number_of_steps(engine: AsyncEngine, steps: object) -> None:
    with pytest.raises(BadRequestError, match="positive integer"):
        await runner(engine).down(steps=steps)  # type: ignore[arg-type]


async def test_runner_rejects_a_connection_duplicates_and_bad_table_names(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        with pytest.raises(BadRequestError, match="needs an AsyncEngine"):
            MigrationRunner(conn, MIGRATIONS)  # type: ignore[arg-type]
    with pytest.raises(InvalidMigrationError, match="duplicate migration name '001_create_users'"):
        MigrationRunner(engine, [MIGRATIONS[0], MIGRATIONS[0]])
    with pytest.raises(InvalidMigrationError, match="invalid bookkeeping table name"):
        MigrationRunner(engine, MIGRATIONS, table="drop table; --")
    with pytest.raises(BadRequestError, match="lock_timeout must be"):
        MigrationRunner(engine, MIGRATIONS, lock_timeout=-1)
    with pytest.raises(InvalidMigrationError, match="expected Migration objects"):
        MigrationRunner(engine, [create_users])  # type: ignore[list-item]


async def test_status_creates_nothing(engine: AsyncEngine, tables: Tables) -> None:
    status = await runner(engine).status()

    assert status.applied == ()
    assert status.pending == ("001_create_users", "002_create_posts", "003_seed_users")
    assert not status.up_to_date
    assert await tables() == set()


async def test_bookkeeping_records_checksum_time_and_duration(engine: AsyncEngine) -> None:
    await runner(engine).up_to("001_create_users")

    (record,) = (await runner(engine).status()).records

    assert record.name == "001_create_users"
    assert record.checksum == MIGRATIONS[0].checksum
    assert len(record.checksum) == 64
    assert record.applied_at.tzinfo is not None
    assert record.duration_ms >= 0


async def test_an_in_memory_sqlite_database_migrates_too() -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    memory = create_async_engine("sqlite+aiosqlite://")
    try:
        assert (await runner(memory).up()).applied == tuple(m.name for m in MIGRATIONS)
        assert (await runner(memory).status()).up_to_date
        assert (await runner(memory).reset()).applied[-1] == "001_create_users"
    finally:
        await memory.dispose()


async def test_runners_racing_in_one_process_apply_each_migration_once(engine: AsyncEngine) -> None:
    results = await asyncio.gather(*(runner(engine).up() for _ in range(4)))

    applied = sorted(name for result in results for name in result.applied)
    assert applied == [m.name for m in MIGRATIONS]
    for result in results:
        assert sorted(result.applied + result.skipped) == applied
    async with engine.connect() as conn:
        assert (await conn.execute(sa.text("SELECT COUNT(*) FROM mig_users"))).scalar() == 2
