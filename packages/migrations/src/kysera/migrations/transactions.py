"""The transaction each migration runs in, together with its bookkeeping row.

PostgreSQL and SQLite have transactional DDL: the migration's schema changes and its
bookkeeping row commit together or not at all. On SQLite the transaction starts with
``BEGIN IMMEDIATE``, which takes the database's write lock up front (waiting up to the busy
timeout); that is what serialises concurrent runners there. MySQL/MariaDB commit each DDL
statement implicitly, so only the data changes after the last DDL statement and the
bookkeeping row are atomic (see docs/migrations.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection

__all__: list[str] = []  # used by the runner only


@asynccontextmanager
async def migration_transaction(conn: AsyncConnection) -> AsyncIterator[AsyncConnection]:
    """Run the block in a new transaction on ``conn``: commit on success, roll back on error.

    Database errors propagate unclassified; the runner classifies them and names the
    migration.
    """
    if conn.in_transaction():
        await conn.commit()
    if conn.dialect.name == "sqlite":
        # The driver is in autocommit mode on the run's connection (see locking.py), so this
        # BEGIN is the only one; sqlite3's commit()/rollback() end it.
        await conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            await conn.rollback()
            raise
        await conn.commit()
    else:
        async with conn.begin():
            yield conn
