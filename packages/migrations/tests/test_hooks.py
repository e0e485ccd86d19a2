"""Plugin hooks fire for up, up_to, down and reset, and on failure."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.migrations import (
    InvalidMigrationError,
    Migration,
    MigrationError,
    MigrationRunner,
    hookimpl,
    migration,
)

TABLE = "mig_bookkeeping"
Tables = Callable[[], Awaitable[set[str]]]


async def create_users(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("CREATE TABLE mig_users (id INTEGER PRIMARY KEY)"))


async def drop_users(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("DROP TABLE mig_users"))


async def create_posts(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("CREATE TABLE mig_posts (id INTEGER PRIMARY KEY)"))


async def drop_posts(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("DROP TABLE mig_posts"))


async def broken(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("SELECT * FROM mig_no_such_table"))


MIGRATIONS = [
    migration("001_create_users", create_users, drop_users),
    migration("002_create_posts", create_posts, drop_posts),
]


class Recorder:
    """A migration plugin that records every hook call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    @hookimpl
    def kysera_before_migration(self, migration: Migration, direction: str) -> None:
        self.calls.append(("before", migration.name, direction))

    @hookimpl
    def kysera_after_migration(
        self, migration: Migration, direction: str, duration_ms: float
    ) -> None:
        assert duration_ms >= 0
        self.calls.append(("after", migration.name, direction))

    @hookimpl
    def kysera_migration_error(
        self, migration: Migration, direction: str, error: MigrationError
    ) -> None:
        self.calls.append(("error", migration.name, direction, type(error.cause).__name__))


async def test_hooks_fire_for_up_up_to_down_and_reset(engine: AsyncEngine) -> None:
    recorder = Recorder()
    runner = MigrationRunner(engine, MIGRATIONS, table=TABLE, plugins=[recorder])

    await runner.up_to("001_create_users")
    await runner.up()
    await runner.down()
    await runner.up()
    await runner.reset()

    assert recorder.calls == [
        ("before", "001_create_users", "up"),
        ("after", "001_create_users", "up"),
        ("before", "002_create_posts", "up"),
        ("after", "002_create_posts", "up"),
        ("before", "002_create_posts", "down"),
        ("after", "002_create_posts", "down"),
        ("before", "002_create_posts", "up"),
        ("after", "002_create_posts", "up"),
        ("before", "002_create_posts", "down"),
        ("after", "002_create_posts", "down"),
        ("before", "001_create_users", "down"),
        ("after", "001_create_users", "down"),
    ]


async def test_the_error_hook_sees_the_failure(engine: AsyncEngine) -> None:
    recorder = Recorder()
    runner = MigrationRunner(
        engine, [*MIGRATIONS, migration("003_broken", broken)], table=TABLE, plugins=[recorder]
    )

    with pytest.raises(MigrationError):
        await runner.up()

    assert recorder.calls[-2:] == [
        ("before", "003_broken", "up"),
        ("error", "003_broken", "up", "DatabaseError"),
    ]


async def test_a_before_hook_that_raises_stops_the_migration(
    engine: AsyncEngine, tables: Tables
) -> None:
    class Veto:
        @hookimpl
        def kysera_before_migration(self, migration: Migration) -> None:
            if migration.name == "002_create_posts":
                raise PermissionError("no posts on Fridays")

    runner = MigrationRunner(engine, MIGRATIONS, table=TABLE, plugins=[Veto()])

    with pytest.raises(MigrationError, match="no posts on Fridays") as caught:
        await runner.up()

    assert caught.value.name == "002_create_posts"
    assert await tables() == {TABLE, "mig_users"}
    assert (await runner.status()).pending == ("002_create_posts",)


def test_a_plugin_with_a_misspelt_hook_argument_is_rejected() -> None:
    class Misspelt:
        @hookimpl
        def kysera_after_migration(self, migraton: Migration) -> None:
            pass

    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine("sqlite+aiosqlite://")
    with pytest.raises(InvalidMigrationError, match="migraton"):
        MigrationRunner(engine, MIGRATIONS, plugins=[Misspelt()])


async def test_a_failing_after_hook_is_logged_and_the_run_goes_on(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    class Flaky:
        @hookimpl
        def kysera_after_migration(self, migration: Migration) -> None:
            raise ConnectionError("chat server down")

    result = await MigrationRunner(engine, MIGRATIONS, table=TABLE, plugins=[Flaky()]).up()

    assert result.applied == ("001_create_users", "002_create_posts")
    assert "kysera_after_migration hook failed after 001_create_users" in caplog.text
    assert "chat server down" in caplog.text
