"""The per-engine safeguards Kysera relies on, applied once to each engine it is given.

`guard_engine` applies three:

- every connection attempt is bounded in time (`limit_connect_time`);
- on asyncpg, with a SQLAlchemy release that does not do it itself, a connection the server
  ended while it sat idle is invalidated at its first failed statement, even before asyncpg
  sees its socket close (see `kysera.core._unusable_connections`), so the pool never hands
  it out again;
- on SQLite, a transaction that a failed ``COMMIT`` left open is rolled back before its
  connection goes back to the pool.

The last closes a hole between SQLite and SQLAlchemy's pool. SQLite answers a ``COMMIT``
it cannot complete yet (another connection still reads, so the write lock is not free
within the busy timeout) with ``SQLITE_BUSY`` and keeps the transaction open, writes and
all, so that the ``COMMIT`` can be tried again. SQLAlchemy treats a failed commit as the end
of the transaction, as it is on every server database, and returns the connection to the
pool without a rollback. The next task that checks that connection out then runs inside the
stale transaction and, when it commits, commits the earlier writes too: a write reported
as failed (and retried, by `retry_transaction` or `with_retry`) is applied after all, twice
when it was retried. Kysera rolls such a transaction back when the connection is returned.
"""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core._unusable_connections import report_unusable_as_lost
from kysera.core.connect_timeout import limit_connect_time

__all__ = ["guard_engine"]

# Engines (by their sync core, which execution_options() copies share) already guarded.
_GUARDED: weakref.WeakSet[Any] = weakref.WeakSet()


def guard_engine(engine: AsyncEngine, connect_timeout: float | None = None) -> AsyncEngine:
    """Apply Kysera's safeguards to ``engine`` (see the module docs); return ``engine``.

    Idempotent and cheap to call again. Repositories, ORMs, `paginate`, `paginate_cursor`,
    `retry_transaction`, `check_health` and the pytest plugin apply it to the engines they
    are given; call it yourself for engines you also use through SQLAlchemy alone.

    Args:
        engine: The engine.
        connect_timeout: Passed to `limit_connect_time` (seconds per connection attempt when
            the engine's own settings give none).

    Raises:
        BadRequestError: ``connect_timeout`` is not a positive number.
    """
    limit_connect_time(engine, connect_timeout)
    sync_engine = engine.sync_engine
    if sync_engine in _GUARDED:
        return engine
    _GUARDED.add(sync_engine)
    if sync_engine.dialect.driver == "asyncpg" and not hasattr(
        sync_engine.dialect.loaded_dbapi, "InternalClientError"
    ):
        # SQLAlchemy releases that translate asyncpg's InternalClientError invalidate such a
        # connection themselves; a listener would only slow the direct path down.
        event.listen(sync_engine, "handle_error", report_unusable_as_lost)
    if sync_engine.dialect.name == "sqlite":
        event.listen(sync_engine, "reset", _roll_back_what_a_failed_commit_left_open)
    return engine


def _roll_back_what_a_failed_commit_left_open(
    dbapi_connection: Any, _record: Any, state: Any
) -> None:
    # SQLAlchemy skips its own rollback when it believes the transaction already ended
    # (transaction_was_reset); a connection it cannot reach safely (not asyncio_safe) is
    # closed rather than reused, which rolls back as well.
    if not state.transaction_was_reset or not state.asyncio_safe:
        return
    driver = getattr(dbapi_connection, "driver_connection", dbapi_connection)
    if getattr(driver, "in_transaction", False):
        dbapi_connection.rollback()
