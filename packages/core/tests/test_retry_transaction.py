"""retry_transaction reruns whole transactions on real conflicts, lost connections and locks."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.core import (
    BadRequestError,
    CommitOutcomeUnknownError,
    DatabaseConnectionError,
    DatabaseError,
    DeadlockError,
    LockTimeoutError,
    SerializationError,
    UniqueConstraintError,
    classify_database_errors,
    retry_transaction,
)
from kysera.core.pytest_plugin import create_test_engine

metadata = sa.MetaData()
accounts = sa.Table(
    "rt_accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("balance", sa.Integer, nullable=False),
)
ledger = sa.Table(
    "rt_ledger",
    metadata,
    sa.Column("transfer_id", sa.String(36), primary_key=True),
    sa.Column("source", sa.Integer, nullable=False),
    sa.Column("target", sa.Integer, nullable=False),
    sa.Column("amount", sa.Integer, nullable=False),
)

ACCOUNTS = 10
INITIAL_BALANCE = 1000
TASKS = 50


@dataclass(frozen=True)
class Transfer:
    transfer_id: str
    source: int
    target: int
    amount: int


Transferrer = Callable[[AsyncConnection, Transfer], Awaitable[None]]


@pytest.fixture
async def engine(kysera_database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine with enough connections for the concurrent tests, and a fresh bank."""
    engine = create_test_engine(kysera_database_url, pool_size=10, max_overflow=0)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
        await conn.execute(
            accounts.insert(),
            [{"id": n, "balance": INITIAL_BALANCE} for n in range(1, ACCOUNTS + 1)],
        )
    yield engine
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
    await engine.dispose()


def plan_transfers(count: int, seed: int = 5) -> list[Transfer]:
    rng = random.Random(seed)
    plan = []
    for n in range(count):
        source, target = rng.sample(range(1, ACCOUNTS + 1), 2)
        plan.append(Transfer(f"transfer-{n:04d}", source, target, rng.randint(1, 50)))
    return plan


async def record(conn: AsyncConnection, transfer: Transfer) -> None:
    await conn.execute(
        ledger.insert().values(
            transfer_id=transfer.transfer_id,
            source=transfer.source,
            target=transfer.target,
            amount=transfer.amount,
        )
    )


async def set_balance(conn: AsyncConnection, account_id: int, balance: int) -> None:
    await conn.execute(accounts.update().where(accounts.c.id == account_id).values(balance=balance))


async def transfer_by_snapshot(conn: AsyncConnection, transfer: Transfer) -> None:
    """Read both balances, then write new ones: safe only at SERIALIZABLE (PostgreSQL)."""
    rows = await conn.execute(
        sa.select(accounts.c.id, accounts.c.balance).where(
            accounts.c.id.in_((transfer.source, transfer.target))
        )
    )
    balances = {row.id: row.balance for row in rows}
    await asyncio.sleep(0.001)  # let concurrent transfers read the same rows
    # Writing in id order means conflicts surface as serialization failures, not deadlocks.
    for account_id in sorted(balances):
        delta = -transfer.amount if account_id == transfer.source else transfer.amount
        await set_balance(conn, account_id, balances[account_id] + delta)
    await record(conn, transfer)


async def transfer_by_locking(conn: AsyncConnection, transfer: Transfer) -> None:
    """Lock source, then target (SELECT ... FOR UPDATE): opposite transfers deadlock."""
    balances: dict[int, int] = {}
    for account_id in (transfer.source, transfer.target):
        result = await conn.execute(
            sa.select(accounts.c.balance).where(accounts.c.id == account_id).with_for_update()
        )
        balances[account_id] = result.scalar_one()
        await asyncio.sleep(0.005)  # hold the first lock while others take theirs
    await set_balance(conn, transfer.source, balances[transfer.source] - transfer.amount)
    await set_balance(conn, transfer.target, balances[transfer.target] + transfer.amount)
    await record(conn, transfer)


BANKS: dict[str, tuple[Transferrer, str, type[DatabaseError]]] = {
    # dialect: (transfer, isolation level, the error concurrent transfers fail with)
    "postgresql": (transfer_by_snapshot, "SERIALIZABLE", SerializationError),
    "mysql": (transfer_by_locking, "REPEATABLE READ", DeadlockError),
}


async def assert_books_balance(engine: AsyncEngine, applied: list[Transfer]) -> None:
    """Every applied transfer is in the ledger once, and balances match the ledger exactly."""
    async with engine.connect() as conn:
        balances = dict((await conn.execute(sa.select(accounts.c.id, accounts.c.balance))).all())
        recorded = (await conn.execute(sa.select(ledger))).all()
    assert sorted(row.transfer_id for row in recorded) == sorted(t.transfer_id for t in applied)
    expected = dict.fromkeys(range(1, ACCOUNTS + 1), INITIAL_BALANCE)
    for transfer in applied:
        expected[transfer.source] -= transfer.amount
        expected[transfer.target] += transfer.amount
    assert balances == expected
    assert sum(balances.values()) == ACCOUNTS * INITIAL_BALANCE


async def run_tasks(
    plan: list[Transfer], run: Callable[[Transfer], Awaitable[None]]
) -> list[Exception | None]:
    """Run the plan as 50 concurrent tasks; return each transfer's exception, or None."""
    outcomes: dict[str, Exception | None] = {}

    async def worker(share: list[Transfer]) -> None:
        for transfer in share:
            try:
                await run(transfer)
            except Exception as exc:
                outcomes[transfer.transfer_id] = exc
            else:
                outcomes[transfer.transfer_id] = None

    await asyncio.gather(*(worker(plan[start::TASKS]) for start in range(TASKS)))
    return [outcomes[transfer.transfer_id] for transfer in plan]


@pytest.mark.kysera_databases("postgresql", "mysql")
async def test_concurrent_transfers_apply_exactly_once_with_retries(engine: AsyncEngine) -> None:
    transfer, isolation_level, conflict = BANKS[engine.dialect.name]
    plan = plan_transfers(150)
    retried: list[BaseException] = []

    async def run(t: Transfer) -> None:
        await retry_transaction(
            engine,
            lambda conn: transfer(conn, t),
            isolation_level=isolation_level,
            max_attempts=40,
            base_delay=0.002,
            max_delay=0.05,
            on_retry=lambda _attempt, error, _delay: retried.append(error),
        )

    outcomes = await run_tasks(plan, run)

    assert outcomes == [None] * len(plan)
    await assert_books_balance(engine, plan)
    # The workload really conflicted, and only with the expected, transient error.
    assert retried
    assert {type(error) for error in retried} == {conflict}


@pytest.mark.kysera_databases("postgresql", "mysql")
async def test_without_retries_conflicts_surface_as_classified_errors(
    engine: AsyncEngine,
) -> None:
    transfer, isolation_level, conflict = BANKS[engine.dialect.name]
    plan = plan_transfers(150)

    async def run(t: Transfer) -> None:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level=isolation_level)
            async with classify_database_errors(), conn.begin():
                await transfer(conn, t)

    outcomes = await run_tasks(plan, run)

    failures = [outcome for outcome in outcomes if outcome is not None]
    assert failures
    assert all(type(failure) is conflict for failure in failures)
    # Each failed transfer was rolled back completely: the books still balance.
    applied = [t for t, outcome in zip(plan, outcomes, strict=True) if outcome is None]
    await assert_books_balance(engine, applied)


async def backend_id(conn: AsyncConnection) -> int:
    query = (
        "SELECT pg_backend_pid()" if conn.dialect.name == "postgresql" else "SELECT CONNECTION_ID()"
    )
    return int(await conn.scalar(sa.text(query)))


async def kill_backend(engine: AsyncEngine, victim: int) -> None:
    """End another session from a separate connection, and wait until it is gone."""
    async with engine.connect() as killer:
        if engine.dialect.name == "postgresql":
            # With a timeout, pg_terminate_backend waits for the backend to exit.
            assert await killer.scalar(sa.text(f"SELECT pg_terminate_backend({victim}, 5000)"))
            return
        await killer.execute(sa.text(f"KILL CONNECTION {victim}"))
        for _ in range(500):
            alive = await killer.scalar(
                sa.text(f"SELECT COUNT(*) FROM information_schema.processlist WHERE id = {victim}")
            )
            if not alive:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"session {victim} survived KILL")


@pytest.mark.kysera_databases("postgresql", "mysql")
async def test_a_connection_killed_mid_transaction_is_retried_on_a_fresh_one(
    engine: AsyncEngine,
) -> None:
    move = Transfer("killed-once", source=1, target=2, amount=100)
    sessions: list[int] = []
    errors: list[BaseException] = []

    async def transfer_killed_after_the_debit(conn: AsyncConnection) -> str:
        sessions.append(await backend_id(conn))
        await conn.execute(
            accounts.update().where(accounts.c.id == 1).values(balance=accounts.c.balance - 100)
        )
        if len(sessions) == 1:
            await kill_backend(engine, sessions[0])
        await conn.execute(
            accounts.update().where(accounts.c.id == 2).values(balance=accounts.c.balance + 100)
        )
        await record(conn, move)
        return "moved"

    result = await retry_transaction(
        engine,
        transfer_killed_after_the_debit,
        base_delay=0,
        on_retry=lambda _attempt, error, _delay: errors.append(error),
    )

    assert result == "moved"
    assert len(sessions) == 2
    assert sessions[0] != sessions[1]
    assert [type(error) for error in errors] == [DatabaseConnectionError]
    # The first attempt's debit died with its connection: the money moved once.
    await assert_books_balance(engine, [move])

    # The dead connection left the pool: every pooled connection still works.
    async def ping() -> None:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    await asyncio.gather(*(ping() for _ in range(10)))


@pytest.mark.kysera_databases("mysql")
async def test_a_mariadb_snapshot_conflict_is_a_retried_serialization_failure(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        supported = await conn.scalar(
            sa.text("SELECT COUNT(*) FROM information_schema.global_variables "
                    "WHERE variable_name = 'INNODB_SNAPSHOT_ISOLATION'")
        )  # fmt: skip
    if not supported:
        pytest.skip("innodb_snapshot_isolation needs MariaDB >= 10.6.18 / 10.11.8")
    errors: list[BaseException] = []

    async def add_interest(conn: AsyncConnection) -> None:
        # The default from MariaDB 11.6: a row changed after this transaction's snapshot
        # cannot be written by it (error 1020) instead of being silently overwritten.
        await conn.exec_driver_sql("SET SESSION innodb_snapshot_isolation = ON")
        balance = (
            await conn.execute(sa.select(accounts.c.balance).where(accounts.c.id == 1))
        ).scalar_one()
        if not errors:
            async with engine.begin() as other:
                await set_balance(other, 1, 1500)
        await set_balance(conn, 1, balance + 10)

    await retry_transaction(
        engine,
        add_interest,
        base_delay=0,
        on_retry=lambda _attempt, error, _delay: errors.append(error),
    )

    assert [(type(error), error.sqlstate) for error in errors] == [(SerializationError, "1020")]
    async with engine.connect() as conn:
        assert await conn.scalar(sa.select(accounts.c.balance).where(accounts.c.id == 1)) == 1510


async def test_commits_and_returns_the_result(engine: AsyncEngine) -> None:
    move = Transfer("simple", source=3, target=4, amount=7)

    async def simple_transfer(conn: AsyncConnection) -> int:
        await conn.execute(
            accounts.update().where(accounts.c.id == 3).values(balance=accounts.c.balance - 7)
        )
        await conn.execute(
            accounts.update().where(accounts.c.id == 4).values(balance=accounts.c.balance + 7)
        )
        await record(conn, move)
        return 7

    assert await retry_transaction(engine, simple_transfer) == 7
    await assert_books_balance(engine, [move])


async def test_a_held_lock_is_retried_and_the_whole_transaction_reruns(
    engine: AsyncEngine,
) -> None:
    move = Transfer("after-the-lock", source=1, target=2, amount=10)
    errors: list[BaseException] = []
    attempts = 0
    holder = await engine.connect()
    await holder.begin()
    # Locks account 1 (a row lock; on SQLite the database write lock).
    await holder.execute(accounts.update().where(accounts.c.id == 1).values(balance=1000))

    async def transfer_without_waiting(conn: AsyncConnection) -> None:
        nonlocal attempts
        attempts += 1
        if conn.dialect.name == "sqlite":
            await conn.exec_driver_sql("PRAGMA busy_timeout = 0")
        await conn.execute(
            accounts.update().where(accounts.c.id == 2).values(balance=accounts.c.balance + 10)
        )
        await record(conn, move)
        # Written before the conflict: the rerun must not find these rows already there.
        await conn.execute(
            sa.select(accounts.c.id).where(accounts.c.id == 1).with_for_update(nowait=True)
        )
        await conn.execute(
            accounts.update().where(accounts.c.id == 1).values(balance=accounts.c.balance - 10)
        )

    async def release_the_lock(_attempt: int, error: BaseException, _delay: float) -> None:
        errors.append(error)
        await holder.commit()

    try:
        await retry_transaction(
            engine, transfer_without_waiting, base_delay=0, on_retry=release_the_lock
        )
    finally:
        await holder.close()

    assert attempts == 2
    assert [type(error) for error in errors] == [LockTimeoutError]
    await assert_books_balance(engine, [move])


async def test_a_unique_violation_is_raised_at_once_and_nothing_is_written(
    engine: AsyncEngine,
) -> None:
    first = Transfer("duplicate", source=1, target=2, amount=5)
    async with engine.begin() as conn:
        await record(conn, first)
    attempts = 0

    async def transfer_with_a_reused_id(conn: AsyncConnection) -> None:
        nonlocal attempts
        attempts += 1
        await conn.execute(
            accounts.update().where(accounts.c.id == 1).values(balance=accounts.c.balance - 5)
        )
        await record(conn, first)

    with pytest.raises(UniqueConstraintError) as caught:
        await retry_transaction(engine, transfer_with_a_reused_id, base_delay=0)

    assert attempts == 1
    assert caught.value.dialect == engine.dialect.name
    async with engine.connect() as conn:
        assert await conn.scalar(sa.select(accounts.c.balance).where(accounts.c.id == 1)) == 1000


ISOLATION_LEVELS = {
    "postgresql": "REPEATABLE READ",
    "mysql": "SERIALIZABLE",
    "sqlite": "READ UNCOMMITTED",
}


async def test_the_isolation_level_is_applied_then_restored(engine: AsyncEngine) -> None:
    level = ISOLATION_LEVELS[engine.dialect.name]

    async def current_level(conn: AsyncConnection) -> str:
        return await conn.get_isolation_level()

    assert await retry_transaction(engine, current_level, isolation_level=level) == level
    async with engine.connect() as conn:
        assert await conn.get_isolation_level() != level


async def test_bad_arguments_are_rejected_before_anything_runs(engine: AsyncEngine) -> None:
    calls = 0

    async def never_called(conn: AsyncConnection) -> None:
        nonlocal calls
        calls += 1

    with pytest.raises(BadRequestError, match="isolation"):
        await retry_transaction(engine, never_called, isolation_level="EVENTUALLY")
    async with engine.connect() as conn:
        with pytest.raises(BadRequestError, match="AsyncEngine"):
            await retry_transaction(conn, never_called)  # type: ignore[arg-type]
    with pytest.raises(BadRequestError, match="max_attempts"):
        await retry_transaction(engine, never_called, max_attempts=0)
    assert calls == 0


async def test_a_function_that_commits_itself_is_refused(engine: AsyncEngine) -> None:
    async def commits_itself(conn: AsyncConnection) -> None:
        await conn.commit()

    with pytest.raises(BadRequestError, match="must not end the transaction"):
        await retry_transaction(engine, commits_itself)


# --- failures during COMMIT (PostgreSQL: a deferred trigger runs inside COMMIT) -----------


@pytest.fixture
async def commit_trigger(engine: AsyncEngine) -> AsyncIterator[Callable[[str], Awaitable[None]]]:
    """Installs a deferred trigger on rt_ledger whose body runs once, at the first COMMIT."""

    async def install(action: str) -> None:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("CREATE SEQUENCE rt_commits")
            await conn.exec_driver_sql(
                "CREATE FUNCTION rt_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN IF nextval('rt_commits') = 1 THEN {action}; END IF; RETURN NULL; END $$"
            )
            await conn.exec_driver_sql(
                "CREATE CONSTRAINT TRIGGER rt_at_commit AFTER INSERT ON rt_ledger "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION rt_at_commit()"
            )

    yield install
    async with engine.begin() as conn:
        await conn.exec_driver_sql("DROP TRIGGER IF EXISTS rt_at_commit ON rt_ledger")
        await conn.exec_driver_sql("DROP FUNCTION IF EXISTS rt_at_commit()")
        await conn.exec_driver_sql("DROP SEQUENCE IF EXISTS rt_commits")


@pytest.mark.kysera_databases("postgresql")
async def test_a_serialization_failure_reported_by_commit_is_retried(
    engine: AsyncEngine, commit_trigger: Callable[[str], Awaitable[None]]
) -> None:
    await commit_trigger(
        "RAISE EXCEPTION 'conflict found at commit' USING ERRCODE = 'serialization_failure'"
    )
    move = Transfer("commit-conflict", source=1, target=2, amount=3)
    errors: list[BaseException] = []

    await retry_transaction(
        engine,
        lambda conn: transfer_by_snapshot(conn, move),
        base_delay=0,
        on_retry=lambda _attempt, error, _delay: errors.append(error),
    )

    assert [type(error) for error in errors] == [SerializationError]
    await assert_books_balance(engine, [move])


@pytest.mark.kysera_databases("postgresql")
async def test_a_connection_lost_during_commit_is_not_retried(
    engine: AsyncEngine, commit_trigger: Callable[[str], Awaitable[None]]
) -> None:
    await commit_trigger("PERFORM pg_terminate_backend(pg_backend_pid())")
    move = Transfer("commit-lost", source=1, target=2, amount=3)
    attempts = 0

    async def transfer_once(conn: AsyncConnection) -> None:
        nonlocal attempts
        attempts += 1
        await transfer_by_snapshot(conn, move)

    with pytest.raises(CommitOutcomeUnknownError) as caught:
        await retry_transaction(engine, transfer_once, base_delay=0)

    assert attempts == 1
    assert isinstance(caught.value, DatabaseConnectionError)
    assert not caught.value.transient
    assert isinstance(caught.value.__cause__, DatabaseConnectionError)
    # Here the server died before writing the commit record; a client cannot know that.
    await assert_books_balance(engine, [])
