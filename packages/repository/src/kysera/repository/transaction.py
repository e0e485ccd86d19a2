"""Ambient transactions: ``async with orm.transaction():`` binds an ORM to one connection.

The binding lives in a context variable, so it follows the code that opened it (and tasks
that code starts, which copy the context) and never leaks into unrelated concurrent tasks:
each task that opens its own ``orm.transaction()`` gets its own connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.core import BadRequestError, classify_database_errors
from kysera.repository._outcome import commit

__all__ = ["Transaction"]

# Maps an ORM's binding key to the connection of its innermost open transaction.
_ACTIVE: ContextVar[Mapping[object, AsyncConnection]] = ContextVar(
    "kysera_active_transactions", default=MappingProxyType({})
)


class Transaction:
    """An open `orm.transaction()` block.

    Attributes:
        connection: The connection every repository of the ORM uses inside the block; use
            it for plain Core statements that must be part of the transaction.
        isolation_level: The isolation level requested for the block, if any.
        nested: Whether the block is a SAVEPOINT inside an enclosing transaction.
    """

    __slots__ = ("connection", "isolation_level", "nested")

    def __init__(
        self, connection: AsyncConnection, *, isolation_level: str | None, nested: bool
    ) -> None:
        self.connection = connection
        self.isolation_level = isolation_level
        self.nested = nested

    def __repr__(self) -> str:
        return f"Transaction(nested={self.nested}, isolation_level={self.isolation_level!r})"


async def ensure_sqlite_transaction(connection: AsyncConnection) -> None:
    """Make sure SQLite really is inside a transaction before a SAVEPOINT.

    Python's sqlite3 driver (in its default, legacy transaction mode) sends BEGIN only
    before INSERT/UPDATE/DELETE; a SAVEPOINT sent first would open the transaction itself,
    and releasing it would COMMIT. This begins SQLAlchemy's transaction (which, on engines
    using SQLAlchemy's documented SQLite recipe, emits BEGIN) and, if the database is still
    not inside a transaction, sends BEGIN through the driver (unseen by statement events,
    like every other dialect's BEGIN). Connections in AUTOCOMMIT mode are left alone.
    """
    if connection.dialect.name == "sqlite":
        await connection.run_sync(_begin_sqlite)


def _begin_sqlite(sync: Connection) -> None:
    if sync.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        return
    if not sync.in_transaction():
        sync.begin()
    pooled = sync.connection
    if not getattr(pooled.driver_connection, "in_transaction", True):
        cursor = pooled.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute("BEGIN")
        finally:
            cursor.close()


@asynccontextmanager
async def savepoint(connection: AsyncConnection) -> AsyncIterator[None]:
    """A SAVEPOINT on ``connection`` for the block (rolled back if the block raises)."""
    await ensure_sqlite_transaction(connection)
    async with connection.begin_nested():
        yield


def active_connection(key: object) -> AsyncConnection | None:
    """The connection of the innermost transaction opened for ``key`` in this context."""
    return _ACTIVE.get().get(key)


@asynccontextmanager
async def open_transaction(
    key: object,
    executor: AsyncEngine | AsyncConnection,
    *,
    isolation_level: str | None = None,
) -> AsyncIterator[Transaction]:
    """Open a transaction (or a SAVEPOINT inside an open one) bound to ``key``.

    Args:
        key: The binding key (one per ORM).
        executor: Where a new outermost transaction gets its connection. Given an engine, a
            connection is checked out and the transaction commits at the end of the block.
            Given a connection that is already in a transaction, the block is a SAVEPOINT
            and the caller's transaction is never committed here.
        isolation_level: Isolation level for a new outermost transaction (e.g.
            ``"SERIALIZABLE"``, ``"REPEATABLE READ"``).

    Raises:
        BadRequestError: ``isolation_level`` was given for a block that cannot set it (a
            SAVEPOINT, or a connection already inside a transaction).
    """
    current = active_connection(key)
    if current is not None:
        if isolation_level is not None:
            raise BadRequestError(
                "isolation_level cannot be set on a nested transaction (a SAVEPOINT); "
                "set it on the outermost orm.transaction()"
            )
        async with classify_database_errors(), savepoint(current):
            yield Transaction(current, isolation_level=None, nested=True)
        return

    if isinstance(executor, AsyncConnection):
        async with classify_database_errors():
            if executor.in_transaction():
                if isolation_level is not None:
                    raise BadRequestError(
                        "isolation_level cannot be set on a connection that is already "
                        "inside a transaction"
                    )
                async with savepoint(executor):
                    with _bound(key, executor):
                        yield Transaction(executor, isolation_level=None, nested=True)
                return
            previous = await executor.get_isolation_level() if isolation_level else None
            if isolation_level is not None:
                await executor.execution_options(isolation_level=isolation_level)
            try:
                async with executor.begin() as transaction:
                    await ensure_sqlite_transaction(executor)
                    with _bound(key, executor):
                        yield Transaction(executor, isolation_level=isolation_level, nested=False)
                    await commit(transaction)
            finally:
                if previous is not None:
                    # The caller's connection keeps its own level after the block.
                    await executor.execution_options(isolation_level=previous)
        return

    async with classify_database_errors(), executor.connect() as connection:
        if isolation_level is not None:
            await connection.execution_options(isolation_level=isolation_level)
        async with connection.begin() as transaction:
            await ensure_sqlite_transaction(connection)
            with _bound(key, connection):
                yield Transaction(connection, isolation_level=isolation_level, nested=False)
            # A connection lost during this COMMIT raises CommitOutcomeUnknownError.
            await commit(transaction)


class _bound:
    """Bind ``key`` to ``connection`` in the current context for the ``with`` block."""

    __slots__ = ("connection", "key", "token")

    def __init__(self, key: object, connection: AsyncConnection) -> None:
        self.key = key
        self.connection = connection

    def __enter__(self) -> None:
        active = dict(_ACTIVE.get())
        active[self.key] = self.connection
        self.token = _ACTIVE.set(MappingProxyType(active))

    def __exit__(self, *exc_info: Any) -> None:
        _ACTIVE.reset(self.token)
