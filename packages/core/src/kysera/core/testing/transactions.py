"""Tests that leave nothing behind: a connection in a transaction that is always rolled back.

`rollback_transaction` hands out a connection in *savepoint mode*: the helper owns the real
(outer) transaction, and every transaction call the code under test makes on the connection
lands on a savepoint inside it:

=====================================  ==================================================
code under test calls                  what happens
=====================================  ==================================================
``await conn.commit()``                ``RELEASE`` the current savepoint, open a new one
``await conn.rollback()``              ``ROLLBACK TO`` the current savepoint, open a new one
``async with conn.begin():``           a savepoint, released or rolled back at block exit
``async with conn.begin_nested():``    a savepoint, as usual
=====================================  ==================================================

On exit the outer transaction is rolled back, so the next test sees the database as before.

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

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, ClassVar, TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, NestedTransaction, RootTransaction
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from kysera.core.errors import BadRequestError, KyseraError, parse_database_error
from kysera.core.testing import _sqlite

__all__ = [
    "ImplicitCommitError",
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


class ImplicitCommitError(KyseraError):
    """The database ended the test's transaction on its own, so it could not be rolled back.

    On MySQL/MariaDB, DDL and a few other statements commit implicitly, and a deadlock rolls
    the whole transaction back. Writes made before that point may have been committed.
    """

    code: ClassVar[str] = "TESTING_IMPLICIT_COMMIT"


class _SavepointModeConnection(AsyncConnection):
    """An `AsyncConnection` whose transaction calls act on savepoints of an outer transaction."""

    _kysera_root: RootTransaction | None = None
    _kysera_savepoint: NestedTransaction | None = None

    def begin(self) -> AsyncTransaction:
        """Open a savepoint: the outer transaction belongs to the test helper."""
        return self.begin_nested()

    async def commit(self) -> None:
        """Release the current savepoint (the work stays visible) and open a new one."""
        await self._end_savepoint(commit=True)

    async def rollback(self) -> None:
        """Roll back to the current savepoint and open a new one."""
        await self._end_savepoint(commit=False)

    async def _end_savepoint(self, *, commit: bool) -> None:
        def end(sync: Connection) -> None:
            savepoint = self._kysera_savepoint
            with _translated(sync):
                # Savepoints the code under test left open end with the one they sit in.
                while (nested := sync.get_nested_transaction()) not in (None, savepoint):
                    assert nested is not None
                    _end(nested, commit=commit)
                if savepoint is not None and savepoint.is_active:
                    _end(savepoint, commit=commit)
                self._kysera_savepoint = sync.begin_nested()

        await self.run_sync(end)

    async def _kysera_begin(self) -> None:
        def begin(sync: Connection) -> None:
            self._kysera_root = sync.begin()
            if sync.dialect.name == "sqlite":
                _sqlite.ensure_begun(sync)
            self._kysera_savepoint = sync.begin_nested()

        await self.run_sync(begin)

    async def _kysera_finish(self) -> None:
        def finish(sync: Connection) -> None:
            ended: BaseException | None = None
            if _is_mysql(sync) and self._kysera_savepoint is not None:
                # Rolling back to our savepoint proves the transaction is still ours.
                try:
                    while (nested := sync.get_nested_transaction()) is not None:
                        nested.rollback()
                except sa_exc.DBAPIError as exc:
                    if not _savepoint_is_gone(exc, sync):
                        raise
                    ended = exc
            root = self._kysera_root
            if root is not None and root.is_active:
                root.rollback()
            if ended is not None:
                raise _implicit_commit_error() from ended

        if not self.closed:
            await self.run_sync(finish)


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
        left_open = await conn.run_sync(_open_savepoints_above, conn._kysera_savepoint)
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


def _open_savepoints_above(sync: Connection, savepoint: NestedTransaction | None) -> int:
    count = 0
    nested = sync.get_nested_transaction()
    while nested is not None and nested is not savepoint:
        count += 1
        nested = nested._previous_nested
    return count


def _end(transaction: NestedTransaction, *, commit: bool) -> None:
    if commit:
        transaction.commit()
    else:
        transaction.rollback()


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
