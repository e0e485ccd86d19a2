"""A failing migration: what it leaves behind on each dialect, and that the next run retries it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.core import UniqueConstraintError
from kysera.migrations import MigrationError, MigrationRunner, migration

TABLE = "mig_bookkeeping"
Tables = Callable[[], Awaitable[set[str]]]


async def create_users(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("CREATE TABLE mig_users (id INTEGER PRIMARY KEY)"))


async def drop_users(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("DROP TABLE mig_users"))


class Orders:
    """Migrations on ``mig_orders`` that fail with a duplicate key while ``broken`` is set."""

    def __init__(self) -> None:
        self.broken = True

    async def create(self, conn: AsyncConnection) -> None:
        await conn.execute(
            sa.text("CREATE TABLE IF NOT EXISTS mig_orders (id INTEGER PRIMARY KEY)")
        )
        await conn.execute(sa.text("INSERT INTO mig_orders (id) VALUES (1)"))
        if self.broken:
            await conn.execute(sa.text("INSERT INTO mig_orders (id) VALUES (1)"))

    async def drop(self, conn: AsyncConnection) -> None:
        await conn.execute(sa.text("DROP TABLE mig_orders"))
        if self.broken:
            raise RuntimeError("cannot drop orders today")

    async def seed(self, conn: AsyncConnection) -> None:
        await conn.execute(sa.text("INSERT INTO mig_orders (id) VALUES (2), (3)"))
        if self.broken:
            await conn.execute(sa.text("INSERT INTO mig_orders (id) VALUES (2)"))


async def count_orders(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(sa.text("SELECT COUNT(*) FROM mig_orders"))).scalar_one())


@pytest.mark.kysera_databases("sqlite", "postgresql")
async def test_a_failing_migration_leaves_neither_its_schema_change_nor_its_row(
    engine: AsyncEngine, tables: Tables
) -> None:
    orders = Orders()
    migrations = [
        migration("001_create_users", create_users, drop_users),
        migration("002_create_orders", orders.create, orders.drop),
    ]

    with pytest.raises(MigrationError) as caught:
        await MigrationRunner(engine, migrations, table=TABLE).up()

    error = caught.value
    assert (error.name, error.direction) == ("002_create_orders", "up")
    assert isinstance(error.cause, UniqueConstraintError)
    assert error.__cause__ is error.cause
    assert "002_create_orders" in str(error)
    assert error.result is not None
    assert error.result.applied == ("001_create_users",)
    assert error.result.failed == "002_create_orders"
    assert await tables() == {TABLE, "mig_users"}
    status = await MigrationRunner(engine, migrations, table=TABLE).status()
    assert status.applied == ("001_create_users",)
    assert status.pending == ("002_create_orders",)

    orders.broken = False
    retried = await MigrationRunner(engine, migrations, table=TABLE).up()

    assert retried.applied == ("002_create_orders",)
    assert await count_orders(engine) == 1


@pytest.mark.kysera_databases("sqlite", "postgresql")
async def test_a_failing_down_keeps_the_migration_applied(
    engine: AsyncEngine, tables: Tables
) -> None:
    orders = Orders()
    orders.broken = False
    migrations = [migration("001_create_orders", orders.create, orders.drop)]
    await MigrationRunner(engine, migrations, table=TABLE).up()
    orders.broken = True

    with pytest.raises(MigrationError, match="cannot drop orders today") as caught:
        await MigrationRunner(engine, migrations, table=TABLE).down()

    assert (caught.value.name, caught.value.direction) == ("001_create_orders", "down")
    assert isinstance(caught.value.cause, RuntimeError)
    assert "mig_orders" in await tables()
    status = await MigrationRunner(engine, migrations, table=TABLE).status()
    assert status.applied == ("001_create_orders",)


@pytest.mark.kysera_databases("mysql")
async def test_on_mariadb_ddl_before_a_failure_stays_but_the_migration_is_not_recorded(
    engine: AsyncEngine, tables: Tables
) -> None:
    # Documented: MariaDB commits each DDL statement implicitly. The CREATE TABLE survives
    # the failure; the INSERT after it and the bookkeeping row are rolled back.
    orders = Orders()
    migrations = [migration("001_create_orders", orders.create, orders.drop)]

    with pytest.raises(MigrationError) as caught:
        await MigrationRunner(engine, migrations, table=TABLE).up()

    assert isinstance(caught.value.cause, UniqueConstraintError)
    assert "mig_orders" in await tables()
    assert await count_orders(engine) == 0
    status = await MigrationRunner(engine, migrations, table=TABLE).status()
    assert status.pending == ("001_create_orders",)

    # The next run retries it; CREATE TABLE IF NOT EXISTS makes the retry safe.
    orders.broken = False
    assert (await MigrationRunner(engine, migrations, table=TABLE).up()).applied == (
        "001_create_orders",
    )
    assert await count_orders(engine) == 1


@pytest.mark.kysera_databases("mysql")
async def test_on_mariadb_a_data_only_migration_is_atomic_with_its_row(
    engine: AsyncEngine,
) -> None:
    orders = Orders()
    orders.broken = False
    migrations = [
        migration("001_create_orders", orders.create, orders.drop),
        migration("002_seed_orders", orders.seed),
    ]
    await MigrationRunner(engine, migrations, table=TABLE).up_to("001_create_orders")
    orders.broken = True

    with pytest.raises(MigrationError) as caught:
        await MigrationRunner(engine, migrations, table=TABLE).up()

    assert caught.value.name == "002_seed_orders"
    assert await count_orders(engine) == 1  # the rows 2 and 3 were rolled back
    status = await MigrationRunner(engine, migrations, table=TABLE).status()
    assert status.pending == ("002_seed_orders",)


async def test_an_exception_raised_by_migration_code_is_wrapped_and_named(
    engine: AsyncEngine, tables: Tables
) -> None:
    async def not_ready(conn: AsyncConnection) -> None:
        raise ValueError("not ready")

    migrations = [migration("001_not_ready", not_ready)]

    with pytest.raises(MigrationError, match=r"'001_not_ready' \(up\) ValueError: not ready"):
        await MigrationRunner(engine, migrations, table=TABLE).up()

    assert await tables() == {TABLE}
    assert (await MigrationRunner(engine, migrations, table=TABLE).status()).applied == ()


async def test_migrations_are_transactional_even_on_an_autocommit_engine(
    kysera_database_url: str, engine: AsyncEngine
) -> None:
    from kysera.core.pytest_plugin import create_test_engine

    autocommit = create_test_engine(kysera_database_url, isolation_level="AUTOCOMMIT")
    orders = Orders()
    orders.broken = False
    migrations = [
        migration("001_create_orders", orders.create, orders.drop),
        migration("002_seed_orders", orders.seed),
    ]
    try:
        await MigrationRunner(autocommit, migrations, table=TABLE).up_to("001_create_orders")
        orders.broken = True

        with pytest.raises(MigrationError, match="002_seed_orders"):
            await MigrationRunner(autocommit, migrations, table=TABLE).up()

        assert await count_orders(engine) == 1
        status = await MigrationRunner(autocommit, migrations, table=TABLE).status()
        assert status.pending == ("002_seed_orders",)
    finally:
        await autocommit.dispose()


async def commit_midway(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("CREATE TABLE mig_half (id INTEGER PRIMARY KEY)"))
    await conn.commit()
    await conn.execute(sa.text("INSERT INTO mig_half (id) VALUES (1)"))


async def roll_back_midway(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("CREATE TABLE mig_half (id INTEGER PRIMARY KEY)"))
    await conn.rollback()


@pytest.mark.kysera_databases("sqlite", "postgresql")  # MySQL's DDL commits on its own anyway
@pytest.mark.parametrize("up", [commit_midway, roll_back_midway], ids=["commit", "rollback"])
async def test_a_migration_that_ends_the_runners_transaction_is_refused(
    engine: AsyncEngine, tables: Tables, up: Callable[[AsyncConnection], Awaitable[None]]
) -> None:
    runner = MigrationRunner(engine, [migration("001_half", up=up)], table=TABLE)

    with pytest.raises(MigrationError, match=r"called commit\(\) or rollback\(\)") as raised:
        await runner.up()

    assert raised.value.name == "001_half"
    assert await tables() == {TABLE}  # nothing of the migration, and no row for it
    assert (await runner.status()).pending == ("001_half",)
