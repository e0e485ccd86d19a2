"""Checksums: changed and missing migrations are reported, and ``up`` refuses changed code."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.migrations import MigrationChangedError, MigrationRunner, migration

TABLE = "mig_bookkeeping"


async def create_users(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("CREATE TABLE mig_users (id INTEGER PRIMARY KEY)"))


async def create_users_with_name(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("CREATE TABLE mig_users (id INTEGER PRIMARY KEY, name TEXT)"))


async def create_posts(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("CREATE TABLE mig_posts (id INTEGER PRIMARY KEY)"))


async def create_tags(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("CREATE TABLE mig_tags (id INTEGER PRIMARY KEY)"))


ORIGINAL = [
    migration("001_create_users", create_users),
    migration("002_create_posts", create_posts),
]
# 001 edited after it was applied, 002 deleted from the code, 003 new.
EDITED = [
    migration("001_create_users", create_users_with_name),
    migration("003_create_tags", create_tags),
]


def test_the_checksum_covers_the_code() -> None:
    assert ORIGINAL[0].checksum != EDITED[0].checksum
    assert ORIGINAL[0].checksum == migration("001_create_users", create_users).checksum


async def test_status_reports_changed_and_missing_migrations(engine: AsyncEngine) -> None:
    await MigrationRunner(engine, ORIGINAL, table=TABLE).up()

    status = await MigrationRunner(engine, EDITED, table=TABLE).status()

    assert status.applied == ("001_create_users", "002_create_posts")
    assert status.changed == ("001_create_users",)
    assert status.missing == ("002_create_posts",)
    assert status.pending == ("003_create_tags",)
    assert not status.up_to_date


async def test_up_refuses_to_run_over_changed_code_until_allowed(engine: AsyncEngine) -> None:
    await MigrationRunner(engine, ORIGINAL, table=TABLE).up()

    for dry_run in (True, False):
        with pytest.raises(MigrationChangedError, match="allow_changed") as caught:
            await MigrationRunner(engine, EDITED, table=TABLE, dry_run=dry_run).up()
        assert caught.value.changed == ("001_create_users",)
        assert caught.value.name == "001_create_users"
    assert (await MigrationRunner(engine, EDITED, table=TABLE).status()).pending == (
        "003_create_tags",
    )

    result = await MigrationRunner(engine, EDITED, table=TABLE, allow_changed=True).up()

    assert result.applied == ("003_create_tags",)
    # The recorded checksum is what ran; the change stays reported.
    assert (await MigrationRunner(engine, EDITED, table=TABLE).status()).changed == (
        "001_create_users",
    )


async def test_missing_migrations_do_not_block_up(engine: AsyncEngine) -> None:
    # An older release may start against a database a newer one already migrated.
    await MigrationRunner(engine, ORIGINAL, table=TABLE).up()

    result = await MigrationRunner(engine, ORIGINAL[:1], table=TABLE).up()

    assert result.applied == ()
    assert result.skipped == ("001_create_users",)


async def test_accept_changes_records_the_edited_code_without_running_it(
    engine: AsyncEngine,
) -> None:
    await MigrationRunner(engine, ORIGINAL, table=TABLE).up()
    edited = [EDITED[0], ORIGINAL[1]]

    assert await MigrationRunner(engine, edited, table=TABLE, dry_run=True).accept_changes() == (
        "001_create_users",
    )
    assert (await MigrationRunner(engine, edited, table=TABLE).status()).changed == (
        "001_create_users",
    )

    accepted = await MigrationRunner(engine, edited, table=TABLE).accept_changes()

    assert accepted == ("001_create_users",)
    status = await MigrationRunner(engine, edited, table=TABLE).status()
    assert status.changed == ()
    assert status.up_to_date
    assert (await MigrationRunner(engine, edited, table=TABLE).up()).applied == ()
    # Nothing re-ran: the table still has the original shape (no "name" column).
    async with engine.connect() as conn:
        columns = await conn.run_sync(
            lambda sync: [c["name"] for c in sa.inspect(sync).get_columns("mig_users")]
        )
    assert columns == ["id"]
