"""rollback_transaction and friends: whatever the code under test does, nothing stays behind."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from kysera.core import BadRequestError
from kysera.core.capture import capture_queries
from kysera.core.pytest_plugin import create_test_engine
from kysera.core.testing import (
    ImplicitCommitError,
    clean_database,
    count_rows,
    rollback_transaction,
    test_in_transaction,
    test_with_isolation,
    test_with_savepoints,
)

metadata = sa.MetaData()
accounts = sa.Table(
    "tst_accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("email", sa.String(100), nullable=False, unique=True),
)


@pytest.fixture(scope="module")
async def schema(kysera_engine: AsyncEngine) -> AsyncIterator[None]:
    async with kysera_engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
    yield
    async with kysera_engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)


@pytest.fixture
async def engine(kysera_engine: AsyncEngine, schema: None) -> AsyncIterator[AsyncEngine]:
    yield kysera_engine
    # Only the MySQL implicit-commit tests leave rows (that is what they show).
    await clean_database(kysera_engine, tables=[accounts])


async def add(conn: AsyncConnection, account_id: int) -> None:
    await conn.execute(accounts.insert(), {"id": account_id, "email": f"a{account_id}@example.com"})


async def commits(conn: AsyncConnection) -> None:
    await add(conn, 1)
    await conn.commit()


async def commits_then_rolls_back(conn: AsyncConnection) -> None:
    await add(conn, 1)
    await conn.commit()
    await add(conn, 2)
    await conn.rollback()


async def opens_its_own_transaction(conn: AsyncConnection) -> None:
    async with conn.begin():
        await add(conn, 1)


async def commits_its_own_transaction(conn: AsyncConnection) -> None:
    transaction = await conn.begin()
    await add(conn, 1)
    await transaction.commit()


async def uses_nested_transactions(conn: AsyncConnection) -> None:
    async with conn.begin_nested():
        await add(conn, 1)
    nested = await conn.begin_nested()
    await add(conn, 2)
    await nested.rollback()
    await conn.commit()


async def commits_inside_a_nested_transaction(conn: AsyncConnection) -> None:
    await conn.begin_nested()
    await add(conn, 1)
    await conn.commit()


async def recovers_from_an_error(conn: AsyncConnection) -> None:
    await add(conn, 1)
    await conn.commit()
    with pytest.raises(sa.exc.IntegrityError):
        await add(conn, 1)
    await conn.rollback()  # on PostgreSQL the transaction is unusable until this
    await add(conn, 2)
    await conn.rollback()


# code under test, and how many rows it sees at the end
CODE_UNDER_TEST: dict[str, tuple[Callable[[AsyncConnection], Awaitable[None]], int]] = {
    "commit": (commits, 1),
    "commit-rollback": (commits_then_rolls_back, 1),
    "begin-block": (opens_its_own_transaction, 1),
    "begin-commit": (commits_its_own_transaction, 1),
    "begin_nested": (uses_nested_transactions, 1),
    "commit-in-nested": (commits_inside_a_nested_transaction, 1),
    "error-rollback": (recovers_from_an_error, 1),
}


@pytest.mark.parametrize("case", CODE_UNDER_TEST)
async def test_nothing_stays_behind_whatever_the_code_does(engine: AsyncEngine, case: str) -> None:
    code, visible = CODE_UNDER_TEST[case]

    async with rollback_transaction(engine) as conn:
        await code(conn)
        assert await count_rows(conn, accounts) == visible
        assert conn.in_transaction()

    assert await count_rows(engine, accounts) == 0


async def test_savepoint_mode_adds_no_statements_to_what_is_captured(engine: AsyncEngine) -> None:
    async with rollback_transaction(engine) as conn:
        with capture_queries(conn) as captured:
            async with conn.begin():
                await add(conn, 1)
            await add(conn, 2)
            await conn.commit()
            await add(conn, 3)
            await conn.rollback()

    # Exactly what the code sends without savepoint mode: its three INSERTs.
    assert [query.sql.split()[0] for query in captured.queries] == ["INSERT"] * 3
    assert await count_rows(engine, accounts) == 0


async def test_the_connection_is_usable_after_many_commits(engine: AsyncEngine) -> None:
    async with rollback_transaction(engine) as conn:
        for account_id in range(1, 6):
            await add(conn, account_id)
            await conn.commit()
        await conn.rollback()
        assert await count_rows(conn, accounts) == 5
    assert await count_rows(engine, accounts) == 0


async def test_errors_from_the_test_body_propagate_and_are_rolled_back(engine: AsyncEngine) -> None:
    async def fails_after_committing(conn: AsyncConnection) -> None:
        await commits(conn)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await test_in_transaction(engine, fails_after_committing)
    assert await count_rows(engine, accounts) == 0


@pytest.mark.kysera_databases("sqlite", "postgresql")
async def test_ddl_is_rolled_back_where_it_is_transactional(engine: AsyncEngine) -> None:
    async with rollback_transaction(engine) as conn:
        await conn.exec_driver_sql("CREATE TABLE tst_scratch (id INTEGER PRIMARY KEY)")
        await conn.commit()
        await conn.exec_driver_sql("INSERT INTO tst_scratch (id) VALUES (1)")

    async with engine.connect() as conn:
        assert not await conn.run_sync(lambda sync: sa.inspect(sync).has_table("tst_scratch"))


async def creates_a_table_between_writes(conn: AsyncConnection) -> None:
    await add(conn, 1)
    await conn.exec_driver_sql("CREATE TABLE tst_scratch (id INTEGER PRIMARY KEY)")
    await add(conn, 2)


async def creates_a_table_and_commits(conn: AsyncConnection) -> None:
    await conn.exec_driver_sql("CREATE TABLE tst_scratch (id INTEGER PRIMARY KEY)")
    await conn.commit()


@pytest.mark.kysera_databases("mysql")
@pytest.mark.parametrize("code", [creates_a_table_between_writes, creates_a_table_and_commits])
async def test_ddl_on_mysql_is_reported_because_it_commits(
    engine: AsyncEngine, code: Callable[[AsyncConnection], Awaitable[None]]
) -> None:
    try:
        with pytest.raises(ImplicitCommitError, match="commits implicitly") as raised:
            await test_in_transaction(engine, code)
        assert raised.value.code == "TESTING_IMPLICIT_COMMIT"
        # What the user gets: the row written before the DDL was committed by MariaDB.
        expected = 1 if code is creates_a_table_between_writes else 0
        assert await count_rows(engine, accounts) == expected
    finally:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("DROP TABLE IF EXISTS tst_scratch")


@pytest.mark.kysera_databases("sqlite")
async def test_a_plain_sqlite_engine_gets_real_savepoints_and_keeps_its_settings(
    tmp_path: Path,
) -> None:
    # No recipe on this engine: the sqlite3 driver would let RELEASE commit for real.
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{tmp_path / 'plain.db'}",
        poolclass=AsyncAdaptedQueuePool,  # the default from SQLAlchemy 2.0.38 on
        pool_size=1,
    )
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        async with rollback_transaction(engine) as conn:
            await commits_then_rolls_back(conn)
        async with rollback_transaction(engine) as conn:
            await uses_nested_transactions(conn)
        assert await count_rows(engine, accounts) == 0

        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            assert raw.driver_connection is not None
            assert raw.driver_connection.isolation_level == ""  # the driver's default, untouched
    finally:
        await engine.dispose()


async def test_in_transaction_returns_the_result_and_rolls_back(engine: AsyncEngine) -> None:
    async def create_two(conn: AsyncConnection) -> int:
        await add(conn, 1)
        await conn.commit()
        await add(conn, 2)
        return await count_rows(conn, accounts)

    assert await test_in_transaction(engine, create_two) == 2
    assert await count_rows(engine, accounts) == 0


async def test_with_savepoints_accepts_balanced_savepoints(engine: AsyncEngine) -> None:
    assert await test_with_savepoints(engine, uses_nested_transactions) is None
    assert await count_rows(engine, accounts) == 0


async def test_with_savepoints_reports_a_savepoint_left_open(engine: AsyncEngine) -> None:
    async def leaks_a_savepoint(conn: AsyncConnection) -> None:
        await conn.begin_nested()
        await add(conn, 1)

    with pytest.raises(AssertionError, match="left 1 savepoint"):
        await test_with_savepoints(engine, leaks_a_savepoint)
    assert await count_rows(engine, accounts) == 0


async def test_it_needs_an_engine_of_its_own(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        with pytest.raises(BadRequestError, match="expected an AsyncEngine"):
            await test_in_transaction(conn, commits)  # type: ignore[arg-type]


def test_helpers_named_test_are_not_collected_as_tests() -> None:
    for helper in (test_in_transaction, test_with_savepoints, test_with_isolation):
        assert helper.__test__ is False  # type: ignore[attr-defined]


async def observed_isolation(conn: AsyncConnection) -> str:
    """The isolation level the running transaction uses, as the database reports it."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        level = (await conn.exec_driver_sql("SHOW transaction_isolation")).scalar_one()
    elif dialect == "mysql":
        variable = "@@transaction_isolation"
        if conn.dialect.is_mariadb and conn.dialect.server_version_info < (11, 1):  # type: ignore[attr-defined]
            variable = "@@tx_isolation"
        level = (await conn.exec_driver_sql(f"SELECT {variable}")).scalar_one()
    else:
        uncommitted = (await conn.exec_driver_sql("PRAGMA read_uncommitted")).scalar_one()
        level = "READ UNCOMMITTED" if uncommitted else "SERIALIZABLE"
    return str(level).upper().replace("-", " ")


LEVELS_BY_DATABASE = {
    "postgresql": ["READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"],
    "mysql": ["READ UNCOMMITTED", "READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"],
    "sqlite": ["READ UNCOMMITTED", "SERIALIZABLE"],
}


async def test_with_isolation_applies_the_level(kysera_database_url: str) -> None:
    engine = create_test_engine(kysera_database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            default = await observed_isolation(conn)
        for level in LEVELS_BY_DATABASE[engine.dialect.name]:
            assert await test_with_isolation(engine, level, observed_isolation) == level
            # The pooled connection is back at its default level afterwards.
            async with engine.connect() as conn:
                assert await observed_isolation(conn) == default
        lower_case = await test_with_isolation(engine, "serializable", observed_isolation)
        assert lower_case == "SERIALIZABLE"
    finally:
        await engine.dispose()


@pytest.mark.parametrize("level", ["AUTOCOMMIT", "SNAPSHOT", "serializable; DROP TABLE x"])
async def test_with_isolation_rejects_what_cannot_be_rolled_back(
    engine: AsyncEngine, level: str
) -> None:
    with pytest.raises(BadRequestError, match="isolation level"):
        await test_with_isolation(engine, level, commits)
    assert await count_rows(engine, accounts) == 0


@pytest.mark.kysera_databases("sqlite")
@pytest.mark.parametrize("level", ["READ COMMITTED", "REPEATABLE READ"])
async def test_sqlite_says_it_has_no_weaker_levels(engine: AsyncEngine, level: str) -> None:
    with pytest.raises(BadRequestError, match="SQLite has no"):
        await test_with_isolation(engine, level, commits)


async def test_database_errors_in_the_body_are_the_callers_to_see(engine: AsyncEngine) -> None:
    # The helper does not swallow or rewrap what the test body raises.
    async def duplicate(conn: AsyncConnection) -> None:
        await add(conn, 1)
        await add(conn, 1)

    with pytest.raises(sa.exc.IntegrityError):
        await test_in_transaction(engine, duplicate)
    assert await count_rows(engine, accounts) == 0
