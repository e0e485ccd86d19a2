"""Real transactions on SQLite through pysqlite/aiosqlite.

The sqlite3 module (in its default "legacy" transaction control) starts a transaction only
before INSERT/UPDATE/DELETE, so a SAVEPOINT issued first becomes the outermost transaction and
its RELEASE commits. SQLAlchemy's documented remedy ("Serializable isolation / Savepoints /
Transactional DDL" in the pysqlite and aiosqlite notes) is to switch the driver's own
transaction handling off (``isolation_level = None``) on connect and to emit ``BEGIN`` when
SQLAlchemy begins a transaction. `use_real_transactions` applies that to a whole engine;
`ensure_begun` does the per-connection part for an engine without it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core.engine_guards import guard_engine

__all__: list[str] = []


def ensure_begun(sync: Connection) -> None:
    """Emit ``BEGIN`` on a SQLite connection whose database transaction has not started yet.

    Changes no driver setting, so nothing is left behind on a pooled connection. The
    ``BEGIN`` goes straight to the driver, as every other dialect's does: statement events
    (logging, `capture_queries`) do not see it, so statement counts agree across databases.
    """
    pooled = sync.connection
    if not getattr(pooled.driver_connection, "in_transaction", False):
        cursor = pooled.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute("BEGIN")
        finally:
            cursor.close()


def use_real_transactions(engine: AsyncEngine) -> None:
    """Apply SQLAlchemy's pysqlite/aiosqlite SAVEPOINT recipe to every connection of ``engine``.

    Connections using ``isolation_level="AUTOCOMMIT"`` stay in autocommit mode. The engine
    is guarded (`guard_engine`) too: with the driver's own transaction handling off, a
    transaction a failed ``COMMIT`` left open would otherwise be joined by the next
    ``BEGIN`` on that connection.
    """
    guard_engine(engine)

    @event.listens_for(engine.sync_engine, "connect")
    def _driver_autocommit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _emit_begin(sync: Connection) -> None:
        if sync.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            ensure_begun(sync)
