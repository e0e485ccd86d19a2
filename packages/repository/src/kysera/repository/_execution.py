"""Where a repository's work runs: the caller's connection, or a transaction of its own.

A repository hands each read or write here as ``work``, an async function of a connection.
On a caller's connection (a bound repository, or ``orm.transaction()``) the work runs in the
caller's transaction and nothing is committed here; multi-statement writes get a SAVEPOINT so
that a failure half-way leaves that transaction as it was. On an engine, writes run in a
transaction of their own that commits, and is run again when the database aborts it as a
deadlock victim or for a serialization failure. A connection lost after a write may have
taken effect (during COMMIT, or during a statement that commits by itself) raises
`CommitOutcomeUnknownError` rather than a transient error (see `_outcome`). Reads never open a
transaction of their own.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.core import (
    DeadlockError,
    SerializationError,
    StaleStatementError,
    classify_database_errors,
)
from kysera.repository._outcome import autocommit_write, commit
from kysera.repository.transaction import ensure_sqlite_transaction, savepoint

__all__ = [
    "Work",
    "autocommit_engine",
    "require_transactions",
    "run_read",
    "run_unit",
    "run_write",
]

_T = TypeVar("_T")


Work = Callable[[AsyncConnection], Awaitable[_T]]
"""A repository's statements for one call, given the connection to run them on."""

# How often a write in a transaction of its own runs when the database aborts it as a
# deadlock victim or for a serialization failure (it committed nothing, so rerunning is safe).
_WRITE_ATTEMPTS = 3

# Read engines that skip BEGIN/ROLLBACK around single statements, per user engine.
_AUTOCOMMIT_ENGINES: weakref.WeakKeyDictionary[AsyncEngine, AsyncEngine] = (
    weakref.WeakKeyDictionary()
)


# Engines whose every statement must run inside a transaction (see require_transactions).
_TRANSACTIONAL_ENGINES: weakref.WeakSet[AsyncEngine] = weakref.WeakSet()


def require_transactions(engine: AsyncEngine) -> None:
    """Run every statement repositories send through ``engine`` inside a transaction.

    By default a single statement on PostgreSQL runs without BEGIN/COMMIT (autocommit,
    `autocommit_engine`). A plugin that must send something first in each transaction
    (transaction-local settings, for instance) needs the transaction: repositories created
    after this call never use the autocommit variant of ``engine``.
    """
    _TRANSACTIONAL_ENGINES.add(engine)
    _AUTOCOMMIT_ENGINES.pop(engine, None)


def autocommit_engine(engine: AsyncEngine) -> AsyncEngine:
    """The engine a single statement runs on when no transaction is asked for.

    On PostgreSQL (asyncpg) a checked-out connection otherwise sends BEGIN before and
    ROLLBACK/COMMIT after the statement: two extra round trips for work a single statement
    does atomically anyway. Other drivers either pay a round trip to switch autocommit on
    (aiomysql) or never send BEGIN for reads (pysqlite), so they keep the engine as is.
    """
    if engine.dialect.name != "postgresql" or engine in _TRANSACTIONAL_ENGINES:
        return engine
    found = _AUTOCOMMIT_ENGINES.get(engine)
    if found is None:
        found = engine.execution_options(isolation_level="AUTOCOMMIT")
        _AUTOCOMMIT_ENGINES[engine] = found
    return found


async def run_read(
    work: Work[_T], connection: AsyncConnection | None, single: AsyncEngine | None
) -> _T:
    """Run ``work`` on ``connection``, or on a connection of ``single`` (the engine's
    autocommit variant) without a transaction of its own.

    On a connection of its own, a statement that went stale under a schema change (the
    driver then drops what it had prepared) is run again, once.
    """
    with classify_database_errors():
        if connection is not None:
            return await work(connection)
        assert single is not None
        try:
            with classify_database_errors():
                async with single.connect() as connection:
                    return await work(connection)
        except StaleStatementError:
            pass
        async with single.connect() as connection:
            return await work(connection)


async def run_write(
    work: Work[_T],
    connection: AsyncConnection | None,
    engine: AsyncEngine | None,
    single_engine: AsyncEngine | None,
    *,
    single: bool = False,
    in_savepoint: bool = False,
) -> _T:
    """Run ``work`` in the caller's transaction (``connection``), or in one of its own.

    ``single`` marks work that is one statement: on an engine it runs without an explicit
    transaction where that saves round trips (the statement commits atomically), and on a
    caller's connection it needs no SAVEPOINT, unless ``in_savepoint`` asks for one (so
    that its failure does not abort the caller's transaction on PostgreSQL). A transaction
    of its own that the database aborts with a deadlock or serialization failure, or whose
    statement went stale under a schema change, is run again (up to three attempts):
    nothing of it was committed.
    """
    with classify_database_errors():
        if connection is not None:
            if single and not in_savepoint:
                return await work(connection)
            async with savepoint(connection):
                return await work(connection)
        attempt = 1
        while True:
            try:
                if engine is not None and engine.dialect.name == "sqlite":
                    return await _run_to_the_end(work, engine)
                return await _run_own_transaction(work, engine, single_engine, single=single)
            except (DeadlockError, SerializationError, StaleStatementError):
                if attempt >= _WRITE_ATTEMPTS:
                    raise
                attempt += 1


async def _run_own_transaction(
    work: Work[_T],
    engine: AsyncEngine | None,
    single_engine: AsyncEngine | None,
    *,
    single: bool,
) -> _T:
    assert engine is not None
    assert single_engine is not None
    with classify_database_errors():
        if single and single_engine is not engine:
            # Errors while connecting are safe to retry; once the statement may have been
            # sent, a lost connection leaves its outcome unknown (it commits by itself).
            async with single_engine.connect() as connection:
                with autocommit_write():
                    return await work(connection)
        async with engine.connect() as connection, connection.begin() as transaction:
            if not single:
                await ensure_sqlite_transaction(connection)
            # A connection lost before COMMIT rolled the work back (retrying is safe); one
            # lost during COMMIT raises CommitOutcomeUnknownError.
            result = await work(connection)
            await commit(transaction)
            return result


@asynccontextmanager
async def run_unit(
    connection: AsyncConnection | None, engine: AsyncEngine | None
) -> AsyncIterator[AsyncConnection]:
    """Yield a connection whose work is all or nothing: a SAVEPOINT inside the caller's
    transaction (``connection``), or else a new transaction of ``engine`` that commits at
    the end. An exception rolls the block back."""
    async with classify_database_errors():
        if connection is not None:
            async with savepoint(connection):
                yield connection
            return
        assert engine is not None
        async with engine.connect() as connection, connection.begin() as transaction:
            await ensure_sqlite_transaction(connection)
            yield connection
            await commit(transaction)


# Transactions that outlive their cancelled caller (see `_run_to_the_end`), kept
# referenced until they finish.
_FINISHING: set[asyncio.Future[object]] = set()


class _Abandoned(Exception):
    """Raised inside a transaction whose caller was cancelled: it rolls back instead of
    committing."""


def _forget(task: asyncio.Future[object]) -> None:
    _FINISHING.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: an abandoned transaction's error is nobody's to see


async def _run_to_the_end(work: Work[_T], engine: AsyncEngine) -> _T:
    """Run a SQLite write transaction in a task of its own, which cancelling the caller
    does not interrupt; a cancelled caller's transaction rolls back when its statements
    are done, instead of committing.

    Cancelling a statement in flight makes SQLAlchemy drop the connection (it invalidates
    it), and aiosqlite's connection then lingers with its transaction open until the
    garbage collector finds it, holding SQLite's write lock: every later writer failed with
    "database is locked", even after ``engine.dispose()`` (issue 15, item 7). Here no
    statement is ever cancelled half-way, and the connection always goes back to the pool.
    """
    abandoned = False

    async def transaction() -> _T:
        async with engine.begin() as connection:
            await ensure_sqlite_transaction(connection)
            result = await work(connection)
            if abandoned:
                raise _Abandoned
            return result

    task = asyncio.ensure_future(transaction())
    _FINISHING.add(task)  # type: ignore[arg-type]
    task.add_done_callback(_forget)  # type: ignore[arg-type]
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        abandoned = True
        raise
