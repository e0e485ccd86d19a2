"""The run lock: a runner waits for another run, up to ``lock_timeout``."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.core import LockTimeoutError
from kysera.migrations import MigrationRunner, advisory_lock_key, migration
from kysera.migrations.locking import locked_connection
from kysera.migrations.transactions import migration_transaction

TABLE = "mig_bookkeeping"


async def create_users(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("CREATE TABLE mig_users (id INTEGER PRIMARY KEY)"))


MIGRATIONS = [migration("001_create_users", create_users)]


async def test_a_runner_gives_up_when_another_run_holds_the_lock_too_long(
    engine: AsyncEngine,
) -> None:
    # Hold what a run holds: the lock, and (SQLite) an open write transaction.
    async with (
        locked_connection(engine, TABLE, timeout=None) as holder,
        migration_transaction(holder),
    ):
        with pytest.raises(LockTimeoutError):
            await MigrationRunner(engine, MIGRATIONS, table=TABLE, lock_timeout=0.2).up()

    # Once released, the lock is free again (and the pooled connection does not keep it).
    result = await MigrationRunner(engine, MIGRATIONS, table=TABLE, lock_timeout=5).up()
    assert result.applied == ("001_create_users",)


@pytest.mark.kysera_databases("postgresql")
async def test_postgresql_releases_the_advisory_lock_after_a_failed_run(
    engine: AsyncEngine,
) -> None:
    async def broken(conn: AsyncConnection) -> None:
        await conn.execute(sa.text("SELECT * FROM mig_no_such_table"))

    with pytest.raises(Exception, match="mig_no_such_table"):
        await MigrationRunner(engine, [migration("001_broken", broken)], table=TABLE).up()

    # Another session can take the lock at once: the failed run released it.
    async with engine.connect() as conn:
        key = {"key": advisory_lock_key(TABLE)}
        taken = await conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), key)
        assert taken.scalar() is True
        await conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), key)
