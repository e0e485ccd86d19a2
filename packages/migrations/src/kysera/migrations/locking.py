"""The database-level lock that keeps concurrent runners from applying a migration twice.

* PostgreSQL: a session-level advisory lock (``pg_advisory_lock``) on the run's connection,
  keyed by the bookkeeping table's name, held for the whole run and released at its end. A
  transaction-level lock (``pg_advisory_xact_lock``) would end with the first migration's
  transaction, so it cannot cover a run of several. Because the lock belongs to the
  connection, a connection whose unlock fails is invalidated rather than returned to the
  pool still holding it. (Behind PgBouncer in transaction mode a session lock is not
  reliable: point the runner at the database directly.)
* MySQL/MariaDB: ``GET_LOCK`` on the run's connection, named after the database and the
  bookkeeping table (named locks are server-wide), released with ``RELEASE_LOCK``.
* On both, the run's connection uses READ COMMITTED, whatever the engine's default (even
  AUTOCOMMIT): each migration gets a real transaction, and each statement sees what earlier
  runs committed.
* SQLite has no lock outside a transaction, so each migration's transaction is itself the
  lock: it starts with ``BEGIN IMMEDIATE`` (see `kysera.migrations.transactions`), which
  waits up to the busy timeout for other writers, and re-checks the bookkeeping table before
  running. Here the run's connection switches the driver to autocommit (so the runner, not
  the driver, decides where transactions begin) and sets ``PRAGMA busy_timeout``.

``timeout`` (seconds, ``None``: wait as long as it takes) bounds the wait; running out of it
raises `kysera.core.LockTimeoutError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.core import DatabaseConnectionError, LockTimeoutError, classify_database_errors

__all__ = ["advisory_lock_key"]

# "Forever" for GET_LOCK, which needs a number: a year.
_MYSQL_FOREVER_SECONDS = 365 * 24 * 3600
# SQLite's busy timeout is a C int of milliseconds.
_SQLITE_FOREVER_MS = 2**31 - 1


def dialect_family(engine: AsyncEngine) -> str:
    """``"postgresql"``, ``"mysql"`` (MariaDB included) or ``"sqlite"``."""
    name = engine.dialect.name
    return "mysql" if name == "mariadb" else name


def advisory_lock_key(table: str) -> int:
    """The signed 64-bit PostgreSQL advisory lock key of a bookkeeping table."""
    digest = hashlib.sha256(f"kysera.migrations:{table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@asynccontextmanager
async def locked_connection(
    engine: AsyncEngine, table: str, timeout: float | None
) -> AsyncIterator[AsyncConnection]:
    """Yield a connection for a whole run, holding the run lock where the dialect has one.

    Args:
        engine: The engine to take a connection from.
        table: The bookkeeping table's name (the lock is per table).
        timeout: Seconds to wait for the lock; ``None`` waits indefinitely.

    Raises:
        LockTimeoutError: The lock was not free within ``timeout``.
        DatabaseError: Any other database failure, classified.
    """
    dialect = dialect_family(engine)
    conn = await connect(engine)
    try:
        if dialect != "sqlite":
            # Transactions even on an engine configured for AUTOCOMMIT, and a fresh snapshot
            # per statement, so a run sees what the run before it committed. The pool resets
            # the level when the connection goes back.
            async with classify_database_errors(dialect):
                await conn.execution_options(isolation_level="READ COMMITTED")
        if dialect == "postgresql":
            async with _postgres_lock(conn, table, timeout):
                yield conn
        elif dialect == "mysql":
            async with _mysql_lock(conn, table, timeout):
                yield conn
        else:  # the runner accepts only these three dialects
            async with _sqlite_session(conn, timeout):
                yield conn
    finally:
        async with classify_database_errors(dialect):
            await conn.close()


async def connect(engine: AsyncEngine) -> AsyncConnection:
    """Open a connection; every failure to connect is a classified `DatabaseError`.

    Drivers raise some connection failures (an unknown host name, say) as plain ``OSError``,
    which SQLAlchemy does not wrap: those become `DatabaseConnectionError` too.
    """
    dialect = dialect_family(engine)
    try:
        async with classify_database_errors(dialect):
            return await engine.connect()
    except OSError as exc:
        raise DatabaseConnectionError(
            f"cannot connect to the database: {exc}", dialect=dialect
        ) from exc


@asynccontextmanager
async def _postgres_lock(
    conn: AsyncConnection, table: str, timeout: float | None
) -> AsyncIterator[None]:
    key = advisory_lock_key(table)
    wait = "0" if timeout is None else f"{max(1, round(timeout * 1000))}ms"
    async with classify_database_errors("postgresql"), conn.begin():
        # SET LOCAL semantics: the timeout applies to this wait only; the session lock
        # outlives the transaction.
        await conn.execute(
            sa.text("SELECT set_config('lock_timeout', :wait, true)"), {"wait": wait}
        )
        await conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": key})
    try:
        yield
    finally:
        await _release(conn, sa.text("SELECT pg_advisory_unlock(:key)"), key=key)


@asynccontextmanager
async def _mysql_lock(
    conn: AsyncConnection, table: str, timeout: float | None
) -> AsyncIterator[None]:
    seconds = _MYSQL_FOREVER_SECONDS if timeout is None else max(0, round(timeout))
    async with classify_database_errors("mysql"), conn.begin():
        database = (await conn.execute(sa.text("SELECT DATABASE()"))).scalar()
        # Lock names are server-wide and at most 64 characters: hash database and table.
        digest = hashlib.sha256(f"{database}.{table}".encode()).hexdigest()[:40]
        name = f"kysera_migrations_{digest}"
        got = (
            await conn.execute(
                sa.text("SELECT GET_LOCK(:name, :seconds)"), {"name": name, "seconds": seconds}
            )
        ).scalar()
    if got != 1:
        raise LockTimeoutError(
            f"another migration run holds the lock on {table!r} (GET_LOCK timed out after "
            f"{seconds} s)",
            dialect="mysql",
        )
    try:
        yield
    finally:
        await _release(conn, sa.text("SELECT RELEASE_LOCK(:name)"), name=name)


@asynccontextmanager
async def _sqlite_session(conn: AsyncConnection, timeout: float | None) -> AsyncIterator[None]:
    wait_ms = _SQLITE_FOREVER_MS if timeout is None else max(0, round(timeout * 1000))
    async with classify_database_errors("sqlite"):
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        previous = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
        await conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(wait_ms)}")
        await conn.commit()
    try:
        yield
    finally:
        try:
            if conn.in_transaction():
                await conn.rollback()
            await conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(previous or 0)}")
            await conn.commit()
        except BaseException as exc:
            # A connection in an unknown state must not go back to the pool.
            await conn.invalidate()
            if not isinstance(exc, Exception):
                raise


async def _release(conn: AsyncConnection, statement: sa.TextClause, **params: object) -> None:
    try:
        if conn.in_transaction():
            await conn.rollback()
        await conn.execute(statement, params)
        await conn.commit()
    except BaseException as exc:
        # The lock belongs to this connection: closing it for good is what releases it now
        # (also when the task was cancelled mid-release).
        await conn.invalidate()
        if not isinstance(exc, Exception):
            raise
