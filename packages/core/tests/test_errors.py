"""Database errors are classified by native code on every dialect, from real failures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from kysera.core import (
    BadRequestError,
    CheckConstraintError,
    DatabaseConnectionError,
    DatabaseError,
    DeadlockError,
    ForeignKeyError,
    KyseraError,
    LockTimeoutError,
    NotFoundError,
    NotNullError,
    SerializationError,
    UniqueConstraintError,
    ValidationError,
    classify_database_errors,
    is_transient_error,
    parse_database_error,
)

metadata = sa.MetaData()
accounts = sa.Table(
    "err_accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("email", sa.String(100), nullable=False),
    sa.Column("tenant", sa.String(20), nullable=False),
    sa.Column("slug", sa.String(20), nullable=False),
    sa.Column("balance", sa.Integer, nullable=False),
    sa.UniqueConstraint("email", name="uq_err_accounts_email"),
    sa.UniqueConstraint("tenant", "slug", name="uq_err_accounts_tenant_slug"),
    sa.CheckConstraint("balance >= 0", name="ck_err_accounts_balance"),
)
orders = sa.Table(
    "err_orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column(
        "account_id",
        sa.Integer,
        sa.ForeignKey("err_accounts.id", name="fk_err_orders_account"),
        nullable=False,
    ),
)

ALICE = {"id": 1, "email": "alice@example.com", "tenant": "t1", "slug": "alice", "balance": 10}
DRIVER_MODULES = {"postgresql": "asyncpg", "sqlite": "sqlite3", "mysql": "pymysql"}
# The module of the driver's exceptions, by SQLAlchemy driver name where it differs from the
# dialect's default (aiomysql raises PyMySQL's exceptions; asyncmy its own).
DRIVER_EXCEPTION_MODULES = {"asyncmy": "asyncmy"}


@pytest.fixture
async def engine(kysera_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    async with kysera_engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
        await conn.execute(accounts.insert(), ALICE)
    yield kysera_engine
    async with kysera_engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)


def row(**changes: Any) -> dict[str, Any]:
    return {**ALICE, "id": 2, "email": "bob@example.com", "slug": "bob", **changes}


# (statement, params, error class, expected attributes per dialect)
VIOLATIONS: dict[
    str, tuple[Any, dict[str, Any], type[DatabaseError], dict[str, dict[str, Any]]]
] = {
    "unique": (
        accounts.insert(),
        row(email=ALICE["email"]),
        UniqueConstraintError,
        {
            "postgresql": {
                "sqlstate": "23505",
                "constraint": "uq_err_accounts_email",
                "table": "err_accounts",
                "columns": ("email",),
            },
            "sqlite": {
                "sqlstate": "SQLITE_CONSTRAINT_UNIQUE",
                "table": "err_accounts",
                "columns": ("email",),
            },
            "mysql": {"sqlstate": "1062", "constraint": "uq_err_accounts_email"},
        },
    ),
    "composite_unique": (
        accounts.insert(),
        row(slug=ALICE["slug"]),
        UniqueConstraintError,
        {
            "postgresql": {
                "sqlstate": "23505",
                "constraint": "uq_err_accounts_tenant_slug",
                "table": "err_accounts",
                "columns": ("tenant", "slug"),
            },
            "sqlite": {
                "sqlstate": "SQLITE_CONSTRAINT_UNIQUE",
                "table": "err_accounts",
                "columns": ("tenant", "slug"),
            },
            "mysql": {"sqlstate": "1062", "constraint": "uq_err_accounts_tenant_slug"},
        },
    ),
    "primary_key": (
        accounts.insert(),
        row(id=ALICE["id"]),
        UniqueConstraintError,
        {
            "postgresql": {"sqlstate": "23505", "table": "err_accounts", "columns": ("id",)},
            "sqlite": {
                "sqlstate": "SQLITE_CONSTRAINT_PRIMARYKEY",
                "table": "err_accounts",
                "columns": ("id",),
            },
            "mysql": {"sqlstate": "1062", "constraint": "PRIMARY"},
        },
    ),
    "foreign_key": (
        orders.insert(),
        {"id": 1, "account_id": 99},
        ForeignKeyError,
        {
            "postgresql": {
                "sqlstate": "23503",
                "constraint": "fk_err_orders_account",
                "table": "err_orders",
                "columns": ("account_id",),
            },
            "sqlite": {"sqlstate": "SQLITE_CONSTRAINT_FOREIGNKEY"},
            "mysql": {
                "sqlstate": "1452",
                "constraint": "fk_err_orders_account",
                "table": "err_orders",
                "columns": ("account_id",),
            },
        },
    ),
    "not_null": (
        accounts.insert(),
        row(email=None),
        NotNullError,
        {
            "postgresql": {"sqlstate": "23502", "table": "err_accounts", "columns": ("email",)},
            "sqlite": {
                "sqlstate": "SQLITE_CONSTRAINT_NOTNULL",
                "table": "err_accounts",
                "columns": ("email",),
            },
            "mysql": {"sqlstate": "1048", "columns": ("email",)},
        },
    ),
    "check": (
        accounts.insert(),
        row(balance=-5),
        CheckConstraintError,
        {
            "postgresql": {
                "sqlstate": "23514",
                "constraint": "ck_err_accounts_balance",
                "table": "err_accounts",
            },
            "sqlite": {
                "sqlstate": "SQLITE_CONSTRAINT_CHECK",
                "constraint": "ck_err_accounts_balance",
            },
            "mysql": {
                "sqlstate": "4025",
                "constraint": "ck_err_accounts_balance",
                "table": "err_accounts",
            },
        },
    ),
}


def assert_classified(
    error: DatabaseError,
    cls: type[DatabaseError],
    dialect: str,
    expected: dict[str, Any],
    driver: str = "",
) -> None:
    assert type(error) is cls
    assert error.dialect == dialect
    assert error.transient is False
    for attribute, value in expected.items():
        assert getattr(error, attribute) == value, attribute
    # The driver's own exception, not SQLAlchemy's wrapper or adapter, is the cause.
    module = type(error.__cause__).__module__.partition(".")[0]
    assert module == DRIVER_EXCEPTION_MODULES.get(driver, DRIVER_MODULES[dialect])
    json.dumps(error.to_dict())


@pytest.mark.parametrize("violation", list(VIOLATIONS))
async def test_sqlalchemy_errors_are_classified(engine: AsyncEngine, violation: str) -> None:
    statement, params, cls, expected = VIOLATIONS[violation]
    dialect = engine.dialect.name
    with pytest.raises(sa.exc.DBAPIError) as caught:
        async with engine.begin() as conn:
            await conn.execute(statement, params)

    assert_classified(
        parse_database_error(caught.value), cls, dialect, expected[dialect], engine.dialect.driver
    )


@pytest.mark.parametrize("violation", list(VIOLATIONS))
async def test_raw_driver_errors_are_classified(engine: AsyncEngine, violation: str) -> None:
    statement, params, cls, expected = VIOLATIONS[violation]
    dialect = engine.dialect.name
    sql = str(
        statement.values(params).compile(
            dialect=engine.dialect, compile_kwargs={"literal_binds": True}
        )
    )
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        with pytest.raises(Exception) as caught:  # noqa: PT011 - the driver's own class varies
            await run_raw_sql(raw.driver_connection, dialect, sql)
        await conn.invalidate()

    assert not isinstance(caught.value, sa.exc.SQLAlchemyError)
    assert_classified(
        parse_database_error(caught.value), cls, dialect, expected[dialect], engine.dialect.driver
    )


async def run_raw_sql(driver_connection: Any, dialect: str, sql: str) -> None:
    if dialect == "postgresql":
        await driver_connection.execute(sql)
    elif dialect == "sqlite":
        await driver_connection.execute("PRAGMA foreign_keys=ON")
        await driver_connection.execute(sql)
    else:
        async with driver_connection.cursor() as cursor:
            await cursor.execute(sql)


async def test_classify_database_errors_raises_the_classified_error(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        with pytest.raises(UniqueConstraintError) as caught, classify_database_errors():
            await conn.execute(accounts.insert(), row(email=ALICE["email"]))

    assert caught.value.__cause__ is not None
    assert not isinstance(caught.value.__cause__, sa.exc.SQLAlchemyError)


def test_classify_database_errors_leaves_other_errors_alone() -> None:
    with pytest.raises(KeyError), classify_database_errors():
        raise KeyError("not a database error")
    with pytest.raises(FileNotFoundError), classify_database_errors():
        raise FileNotFoundError("not a database error either")
    # A TypeError is aiomysql's only when raised in aiomysql's escaping (test_pagination_keyset).
    with pytest.raises(TypeError), classify_database_errors("mysql"):
        raise TypeError("'str' object is not callable")


async def deadlock_in(engine: AsyncEngine, statement: Callable[[int], Any]) -> BaseException:
    """Make two transactions wait on each other's row; return the error the loser got."""

    async def second_step(conn: AsyncConnection, row_id: int) -> BaseException | None:
        try:
            await conn.execute(statement(row_id))
        except sa.exc.DBAPIError as exc:
            await conn.rollback()  # release our locks so the other transaction finishes
            return exc
        return None

    async with engine.connect() as first, engine.connect() as second:
        await first.begin()
        await second.begin()
        await first.execute(statement(1))
        await second.execute(statement(2))
        outcomes = await asyncio.gather(second_step(first, 2), second_step(second, 1))
        await first.rollback()
        await second.rollback()
    errors = [outcome for outcome in outcomes if outcome is not None]
    assert len(errors) == 1, outcomes
    return errors[0]


@pytest.mark.kysera_databases("postgresql", "mysql")
async def test_a_real_deadlock_is_transient(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(accounts.insert(), row())

    failure = await deadlock_in(
        engine,
        lambda row_id: (
            accounts.update().where(accounts.c.id == row_id).values(balance=accounts.c.balance + 1)
        ),
    )

    error = parse_database_error(failure)
    assert type(error) is DeadlockError
    assert error.sqlstate == {"postgresql": "40P01", "mysql": "1213"}[engine.dialect.name]
    assert error.transient
    assert is_transient_error(failure)


@pytest.mark.kysera_databases("postgresql")
async def test_a_real_serialization_failure_is_transient(engine: AsyncEngine) -> None:
    total = sa.select(sa.func.sum(accounts.c.balance))

    async def write_skew(conn: AsyncConnection, new_id: int) -> None:
        balance = await conn.scalar(total)
        await conn.execute(
            accounts.insert(),
            row(id=new_id, email=f"{new_id}@x", slug=str(new_id), balance=balance),
        )

    async with engine.connect() as first, engine.connect() as second:
        await first.execution_options(isolation_level="SERIALIZABLE")
        await second.execution_options(isolation_level="SERIALIZABLE")
        await first.begin()
        await second.begin()
        await first.scalar(total)
        await second.scalar(total)
        await write_skew(first, 10)
        await write_skew(second, 11)
        await first.commit()
        with pytest.raises(sa.exc.DBAPIError) as caught:
            await second.commit()

    error = parse_database_error(caught.value)
    assert type(error) is SerializationError
    assert error.sqlstate == "40001"
    assert is_transient_error(caught.value)


@pytest.mark.kysera_databases("sqlite")
async def test_a_locked_sqlite_database_is_transient(kysera_database_url: str) -> None:
    # timeout=0: fail at once instead of waiting five seconds for the lock.
    engine = create_async_engine(kysera_database_url, connect_args={"timeout": 0})
    try:
        async with engine.connect() as holder, engine.connect() as waiter:
            await holder.exec_driver_sql("CREATE TABLE IF NOT EXISTS err_lock (id INTEGER)")
            await holder.commit()
            holder_raw = (await holder.get_raw_connection()).driver_connection
            await holder_raw.execute("BEGIN IMMEDIATE")
            with pytest.raises(sa.exc.OperationalError) as caught:
                await waiter.exec_driver_sql("INSERT INTO err_lock VALUES (1)")
            await holder_raw.execute("ROLLBACK")
            await holder.exec_driver_sql("DROP TABLE err_lock")
            await holder.commit()
    finally:
        await engine.dispose()

    error = parse_database_error(caught.value)
    assert type(error) is LockTimeoutError
    assert error.sqlstate == "SQLITE_BUSY"
    assert error.transient


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:1/test",
        "mysql+aiomysql://root@127.0.0.1:1/test",
    ],
    ids=["postgresql", "mysql"],
)
async def test_a_refused_connection_is_transient(url: str) -> None:
    engine = create_async_engine(url)
    try:
        with pytest.raises((sa.exc.DBAPIError, OSError)) as caught:
            async with engine.connect():
                pass
    finally:
        await engine.dispose()

    error = parse_database_error(caught.value)
    assert type(error) is DatabaseConnectionError
    assert error.transient
    assert is_transient_error(caught.value)
    with pytest.raises(DatabaseConnectionError), classify_database_errors():
        raise caught.value


async def test_an_unopenable_sqlite_file_is_a_connection_error(tmp_path: Any) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'db.sqlite'}")
    try:
        with pytest.raises(sa.exc.OperationalError) as caught:
            async with engine.connect():
                pass
    finally:
        await engine.dispose()

    error = parse_database_error(caught.value)
    assert type(error) is DatabaseConnectionError
    assert error.sqlstate == "SQLITE_CANTOPEN"


def test_is_transient_error_follows_cause_chains() -> None:
    outer = RuntimeError("while transferring")
    outer.__cause__ = DeadlockError("deadlock")

    assert is_transient_error(outer)
    assert not is_transient_error(UniqueConstraintError("duplicate"))
    assert not is_transient_error(ValueError("no database here"))
    assert is_transient_error(ConnectionResetError("peer reset"))


def test_parse_database_error_returns_kysera_errors_unchanged() -> None:
    error = NotNullError("missing")
    assert parse_database_error(error) is error


def test_errors_are_also_the_builtin_kinds_users_catch() -> None:
    assert issubclass(NotFoundError, LookupError)
    assert issubclass(BadRequestError, ValueError)
    assert issubclass(ValidationError, BadRequestError)
    assert issubclass(UniqueConstraintError, DatabaseError)
    assert issubclass(DatabaseError, KyseraError)


def test_to_dict_is_json_safe() -> None:
    import datetime as dt
    import uuid
    from decimal import Decimal

    error = NotFoundError(
        entity="users",
        filters={"id": uuid.UUID(int=1), "at": dt.date(2026, 1, 2), "n": Decimal("1.5")},
    )
    assert json.loads(json.dumps(error.to_dict())) == {
        "code": "NOT_FOUND",
        "message": error.message,
        "entity": "users",
        "filters": {"id": str(uuid.UUID(int=1)), "at": "2026-01-02", "n": "1.5"},
    }
    validation = ValidationError(
        "bad input",
        errors=[{"loc": ("age",), "msg": "too young", "ctx": {"error": ValueError("x")}}],
    )
    assert json.loads(json.dumps(validation.to_dict()))["errors"][0]["loc"] == ["age"]
