"""Tests that leave nothing behind: a connection in a transaction that is always rolled back.

`rollback_transaction` hands out a connection in *savepoint mode*: the helper owns the real
(outer) transaction, and every transaction call the code under test makes on the connection
lands on a savepoint inside it:

=====================================  ==================================================
code under test calls                  what happens
=====================================  ==================================================
``await conn.commit()``                ``RELEASE`` the helper's savepoint and open it again
``await conn.rollback()``              ``ROLLBACK TO`` the helper's savepoint
``async with conn.begin():``           nothing is sent; ``commit()``/``rollback()`` at exit
``async with conn.begin_nested():``    a savepoint of its own, as usual
=====================================  ==================================================

On exit the outer transaction is rolled back, so the next test sees the database as before.
The helper's ``BEGIN``, ``SAVEPOINT``/``RELEASE`` and ``ROLLBACK`` go straight to the driver,
so statement events (logging, `capture_queries`) see exactly the statements the code under
test would run without savepoint mode.

Per database:

* **SQLite**: the sqlite3 driver does not start a transaction before a ``SAVEPOINT``, which
  would make the first ``RELEASE`` commit for real. The helper emits ``BEGIN`` itself when the
  driver has not started a transaction, on this connection only (no driver setting changes,
  so nothing stays behind on a pooled connection). DDL is rolled back too.
* **PostgreSQL**: DDL is transactional and rolled back with everything else.
* **MySQL/MariaDB**: DDL (``CREATE``/``ALTER``/``DROP``/``TRUNCATE``/``RENAME``) and a few other
  statements commit the transaction implicitly, which also discards every savepoint. Rows
  written before such a statement are then committed and cannot be rolled back. The helper
  notices (the savepoint it opened is gone) and raises `ImplicitCommitError`, at the next
  ``commit()``/``rollback()`` of the code under test or at exit. A deadlock, which makes
  InnoDB roll back the whole transaction, is reported the same way.

Transaction control must go through the connection's methods: ``COMMIT`` sent as SQL text, or a
``commit()`` on the sync connection inside ``run_sync``, bypasses savepoint mode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, NestedTransaction, RootTransaction
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from kysera.core.errors import BadRequestError, parse_database_error
from kysera.core.testing import _sqlite
from kysera.core.testing.errors import ImplicitCommitError

__all__ = [
    "rollback_transaction",
    "test_in_transaction",
    "test_with_isolation",
    "test_with_savepoints",
]

T = TypeVar("T")

ISOLATION_LEVELS = ("READ UNCOMMITTED", "READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE")
# SQLite transactions are serializable; PRAGMA read_uncommitted only matters in shared-cache mode.
SQLITE_ISOLATION_LEVELS = ("READ UNCOMMITTED", "SERIALIZABLE")
MYSQL_SAVEPOINT_DOES_NOT_EXIST = "1305"
# One name, reused: a constant statement stays in the driver's prepared-statement cache.
GUARD = "kysera_test_savepoint"


class _SavepointModeConnection(AsyncConnection):
    """An `AsyncConnection` whose transaction calls act on a savepoint of an outer transaction.

    The helper's savepoint is sent straight to the driver, as a database's own ``BEGIN`` and
    ``COMMIT`` are: statement events (logging, `capture_queries`) see the same statements as
    they would without savepoint mode, so counting queries in a test stays honest.
    """

    _kysera_root: RootTransaction | None = None

    def begin(self) -> AsyncTransaction:
        """Start the code under test's unit of work: its end is `commit` or `rollback`.

        The helper's savepoint is already open, so nothing is sent; the returned handle (usable
        with ``async with`` or ``await``) commits or rolls back through this connection.
        """
        return _UnitOfWork(self)  # type: ignore[return-value]

    async def commit(self) -> None:
        """Release the helper's savepoint (the work stays visible) and open a new one."""
        await self.run_sync(self._kysera_end, True)

    async def rollback(self) -> None:
        """Roll back to the helper's savepoint and open a new one."""
        await self.run_sync(self._kysera_end, False)

    def _kysera_end(self, sync: Connection, commit: bool) -> None:
        # Savepoints the code under test left open end with the unit of work they sit in.
        with _translated(sync):
            while (nested := sync.get_nested_transaction()) is not None:
                _end(nested, commit=commit)
        if commit:
            _raw(sync, f"RELEASE SAVEPOINT {GUARD}")
            _raw(sync, f"SAVEPOINT {GUARD}")
        else:  # the savepoint stays in place after ROLLBACK TO, on every database
            _raw(sync, f"ROLLBACK TO SAVEPOINT {GUARD}")

    async def _kysera_begin(self) -> None:
        def begin(sync: Connection) -> None:
            with _translated(sync):
                self._kysera_root = sync.begin()
                if sync.dialect.name == "sqlite":
                    _sqlite.ensure_begun(sync)
            _raw(sync, f"SAVEPOINT {GUARD}")

        await self.run_sync(begin)

    async def _kysera_finish(self) -> None:
        def finish(sync: Connection) -> None:
            ended: BaseException | None = None
            if _is_mysql(sync):
                # Rolling back to our savepoint proves the transaction is still ours.
                try:
                    _raw(sync, f"ROLLBACK TO SAVEPOINT {GUARD}")
                except ImplicitCommitError as error:
                    ended = error
            root = self._kysera_root
            with _translated(sync):
                if root is not None and root.is_active:
                    root.rollback()
            if ended is not None:
                raise ended

        if not self.closed:
            await self.run_sync(finish)


class _UnitOfWork:
    """What `_SavepointModeConnection.begin` returns: ends through the connection."""

    def __init__(self, connection: _SavepointModeConnection) -> None:
        self.connection = connection
        self.is_active = True

    @property
    def is_valid(self) -> bool:
        return self.is_active

    async def commit(self) -> None:
        if self.is_active:
            self.is_active = False
            await self.connection.commit()

    async def rollback(self) -> None:
        if self.is_active:
            self.is_active = False
            await self.connection.rollback()

    async def close(self) -> None:
        await self.rollback()

    async def start(self, is_ctxmanager: bool = False) -> _UnitOfWork:
        return self

    def __await__(self) -> Generator[Any, None, _UnitOfWork]:
        return self.start().__await__()

    async def __aenter__(self) -> _UnitOfWork:
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, traceback: Any) -> None:
        if exc is None:
            await self.commit()
        else:
            await self.rollback()


@asynccontextmanager
async def rollback_transaction(
    engine: AsyncEngine, *, isolation_level: str | None = None
) -> AsyncIterator[AsyncConnection]:
    """Yield a connection whose work is rolled back at exit, whatever the code under test does.

    The code under test may call ``commit()``, ``rollback()``, ``begin()`` and
    ``begin_nested()`` on the connection: they act on savepoints inside the outer
    transaction (see the module documentation for the per-database details).

    Example::

        async with rollback_transaction(engine) as conn:
            await register_user(conn, "ada@example.com")  # may commit: stays contained
            assert await count_rows(conn, users) == 1
        # nothing was written

    Args:
        engine: The engine to take a connection from. It goes back to the pool at exit.
        isolation_level: Run the transaction at this level (see `test_with_isolation`).

    Raises:
        ImplicitCommitError: On MySQL/MariaDB, when the database ended the transaction on its
            own (DDL commits implicitly), so some writes could not be rolled back.
        BadRequestError: For an isolation level the database does not have.
    """
    async with _savepoint_mode(engine, isolation_level=isolation_level) as conn:
        yield conn


async def test_in_transaction(
    engine: AsyncEngine, fn: Callable[[AsyncConnection], Awaitable[T]]
) -> T:
    """Run ``await fn(conn)`` on a `rollback_transaction` connection and return its result.

    Example::

        user_id = await test_in_transaction(engine, lambda conn: create_user(conn, "ada"))
    """
    async with rollback_transaction(engine) as conn:
        return await fn(conn)


test_in_transaction.__test__ = False  # type: ignore[attr-defined]


async def test_with_savepoints(
    engine: AsyncEngine, fn: Callable[[AsyncConnection], Awaitable[T]]
) -> T:
    """Run ``await fn(conn)`` for code that manages savepoints itself, and check it closes them.

    Like `test_in_transaction`, and afterwards every savepoint ``fn`` opened (``begin()`` or
    ``begin_nested()``) must have been released or rolled back: a savepoint left open is a
    bug that, inside a caller's transaction, would swallow the caller's later work.

    Raises:
        AssertionError: When ``fn`` returns with a savepoint of its own still open.
    """
    async with rollback_transaction(engine) as conn:
        assert isinstance(conn, _SavepointModeConnection)
        result = await fn(conn)
        left_open = await conn.run_sync(_open_savepoints)
        if left_open:
            raise AssertionError(
                f"the code under test left {left_open} savepoint(s) open; close each "
                f"begin()/begin_nested() with commit() or rollback(), or use `async with`"
            )
        return result


test_with_savepoints.__test__ = False  # type: ignore[attr-defined]


async def test_with_isolation(
    engine: AsyncEngine, level: str, fn: Callable[[AsyncConnection], Awaitable[T]]
) -> T:
    """Run ``await fn(conn)`` in a rolled-back transaction at isolation ``level``.

    The level is set on the connection before the transaction begins, so statements inside
    see it (PostgreSQL ``SHOW transaction_isolation``, MySQL ``@@transaction_isolation``,
    MariaDB ``@@tx_isolation``, SQLite ``PRAGMA read_uncommitted``). SQLAlchemy restores the
    connection's default level when it returns to the pool.

    Args:
        engine: The engine to take a connection from.
        level: ``"READ UNCOMMITTED"``, ``"READ COMMITTED"``, ``"REPEATABLE READ"`` or
            ``"SERIALIZABLE"`` (case and ``_`` for space do not matter). SQLite transactions are
            always serializable and it has only ``"SERIALIZABLE"`` and ``"READ UNCOMMITTED"``
            (which lets a connection read uncommitted rows only in shared-cache mode); the other
            two raise `BadRequestError` there rather than pretend.
        fn: The test body.

    Raises:
        BadRequestError: For an unknown level, ``AUTOCOMMIT`` (nothing could be rolled back) or
            a level the database does not have.
    """
    async with rollback_transaction(engine, isolation_level=level) as conn:
        return await fn(conn)


test_with_isolation.__test__ = False  # type: ignore[attr-defined]


@asynccontextmanager
async def _savepoint_mode(
    engine: AsyncEngine, *, isolation_level: str | None
) -> AsyncIterator[_SavepointModeConnection]:
    if not isinstance(engine, AsyncEngine):
        raise BadRequestError(
            f"expected an AsyncEngine, got {type(engine).__name__}: the helper needs a "
            f"connection of its own to roll back"
        )
    level = None if isolation_level is None else _check_level(engine, isolation_level)
    conn = _SavepointModeConnection(engine)
    await conn.start()
    try:
        with _translated(None, engine.dialect.name):
            if level is not None:
                await conn.execution_options(isolation_level=level)
            await conn._kysera_begin()
        try:
            yield conn
        finally:
            with _translated(None, engine.dialect.name):
                await conn._kysera_finish()
    finally:
        await conn.close()


def _check_level(engine: AsyncEngine, level: str) -> str:
    normalized = str(level).upper().replace("_", " ").strip()
    if normalized not in ISOLATION_LEVELS:
        raise BadRequestError(
            f"unknown isolation level {level!r} for a rolled-back test transaction; "
            f"use one of {', '.join(ISOLATION_LEVELS)}"
        )
    if engine.dialect.name == "sqlite" and normalized not in SQLITE_ISOLATION_LEVELS:
        raise BadRequestError(
            f"SQLite has no {normalized} isolation level: its transactions are serializable; "
            f"use SERIALIZABLE (or READ UNCOMMITTED for shared-cache connections)"
        )
    return normalized


def _open_savepoints(sync: Connection) -> int:
    count = 0
    nested = sync.get_nested_transaction()
    while nested is not None:
        count += 1
        nested = nested._previous_nested
    return count


def _end(transaction: NestedTransaction, *, commit: bool) -> None:
    if commit:
        transaction.commit()
    else:
        transaction.rollback()


def _raw(sync: Connection, statement: str) -> None:
    """Send a transaction-control statement straight to the driver (no statement events)."""
    cursor = sync.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(statement)
    except Exception as exc:
        dialect = "mysql" if _is_mysql(sync) else sync.dialect.name
        error = parse_database_error(exc, dialect)
        if dialect == "mysql" and error.sqlstate == MYSQL_SAVEPOINT_DOES_NOT_EXIST:
            raise _implicit_commit_error() from exc
        raise error from exc
    finally:
        cursor.close()


def _is_mysql(sync: Connection) -> bool:
    return sync.dialect.name in ("mysql", "mariadb")


def _savepoint_is_gone(exc: sa_exc.DBAPIError, sync: Connection | None) -> bool:
    if sync is not None and not _is_mysql(sync):
        return False
    return parse_database_error(exc).sqlstate == MYSQL_SAVEPOINT_DOES_NOT_EXIST


def _implicit_commit_error() -> ImplicitCommitError:
    return ImplicitCommitError(
        "the database ended the test transaction on its own, so it could not be rolled back: "
        "on MySQL/MariaDB, DDL (CREATE/ALTER/DROP/TRUNCATE/RENAME) commits implicitly and a "
        "deadlock rolls the whole transaction back; rows written before it may have been "
        "committed. Create tables outside the rolled-back transaction."
    )


class _translated:
    """Turn driver errors into Kysera errors: a vanished MySQL savepoint into
    `ImplicitCommitError`, anything else into a classified `DatabaseError`."""

    def __init__(self, sync: Connection | None, dialect: str | None = None) -> None:
        self.sync = sync
        self.dialect = dialect if sync is None else sync.dialect.name

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, traceback: Any) -> None:
        if isinstance(exc, sa_exc.DBAPIError):
            if self.dialect in ("mysql", "mariadb") and _savepoint_is_gone(exc, self.sync):
                raise _implicit_commit_error() from exc
            raise parse_database_error(exc, self.dialect) from (exc.orig or exc)
