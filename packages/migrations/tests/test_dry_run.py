"""``dry_run=True`` reports the plan and changes nothing: schema and bookkeeping stay identical."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.migrations import MigrationRunner, hookimpl, migration
from kysera.migrations.migration import Migration

TABLE = "mig_bookkeeping"
Snapshot = Callable[[], Awaitable[dict[str, Any]]]


async def create_users(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("CREATE TABLE mig_users (id INTEGER PRIMARY KEY, name VARCHAR(50))"))
    await conn.execute(sa.text("CREATE INDEX mig_users_name ON mig_users (name)"))


async def drop_users(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("DROP TABLE mig_users"))


async def add_email(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("ALTER TABLE mig_users ADD COLUMN email VARCHAR(100)"))


async def drop_email(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("ALTER TABLE mig_users DROP COLUMN email"))


async def seed_users(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("INSERT INTO mig_users (id, name) VALUES (1, 'ada')"))


async def unseed_users(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("DELETE FROM mig_users"))


MIGRATIONS = [
    migration("001_create_users", create_users, drop_users),
    migration("002_add_email", add_email, drop_email),
    migration("003_seed_users", seed_users, unseed_users),
]


class HookCalls:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    @hookimpl
    def kysera_before_migration(self, migration: Migration, direction: str) -> None:
        self.calls.append((migration.name, direction))


async def test_dry_run_reports_the_plan_and_changes_nothing(
    engine: AsyncEngine, snapshot: Snapshot
) -> None:
    hooks = HookCalls()
    dry = MigrationRunner(engine, MIGRATIONS, table=TABLE, dry_run=True, plugins=[hooks])
    real = MigrationRunner(engine, MIGRATIONS, table=TABLE)

    # Nothing applied yet: not even the bookkeeping table may appear.
    before = await snapshot()
    planned = await dry.up()
    assert planned.dry_run
    assert planned.applied == ("001_create_users", "002_add_email", "003_seed_users")
    assert (await dry.up_to("002_add_email")).applied == ("001_create_users", "002_add_email")
    assert (await dry.down()).applied == ()
    assert await snapshot() == before == {}

    # Partly applied.
    await real.up_to("001_create_users")
    before = await snapshot()
    planned = await dry.up()
    assert planned.applied == ("002_add_email", "003_seed_users")
    assert planned.skipped == ("001_create_users",)
    assert await snapshot() == before

    # Fully applied: rolling back is planned, not done.
    await real.up()
    before = await snapshot()
    assert (await dry.down(steps=2)).applied == ("003_seed_users", "002_add_email")
    assert (await dry.reset()).applied == ("003_seed_users", "002_add_email", "001_create_users")
    assert (await dry.up()).applied == ()
    after = await snapshot()
    assert after == before
    assert after["mig_users"]["rows"] == [(1, "ada", None)]

    assert hooks.calls == []
