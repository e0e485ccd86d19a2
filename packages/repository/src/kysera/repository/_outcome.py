"""Writes whose outcome is unknown: the connection was lost after the server may have run them.

A lost connection is only safe to retry when the write cannot have taken effect: the
connection failed before anything was sent (connecting, checking out of the pool, a
connection the server had already ended: `may_have_been_sent`), or the write ran inside a
transaction that had not reached COMMIT (the server rolls back a
transaction whose connection goes away). A connection lost while COMMIT was in flight, or
while a statement that commits by itself (autocommit) was in flight, may have lost only the
server's answer: the write may be applied. Those raise `CommitOutcomeUnknownError`, which is
not transient, so `with_retry` and `retry_transaction` never run the write a second time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.ext.asyncio import AsyncTransaction

from kysera.core import CommitOutcomeUnknownError, DatabaseConnectionError, classify_database_errors
from kysera.core._unusable_connections import may_have_been_sent

__all__ = ["autocommit_write", "commit"]


async def commit(transaction: AsyncTransaction) -> None:
    """Commit ``transaction``; a connection lost once COMMIT may have been sent raises
    `CommitOutcomeUnknownError` (one lost before: the server rolled the transaction back)."""
    try:
        with classify_database_errors():
            await transaction.commit()
    except CommitOutcomeUnknownError:
        raise
    except DatabaseConnectionError as error:
        if not may_have_been_sent(error):
            raise
        raise _unknown(error, "during COMMIT, so the transaction") from error


@contextmanager
def autocommit_write() -> Iterator[None]:
    """Around statements that commit on their own: a connection lost once they may have
    been sent raises `CommitOutcomeUnknownError`."""
    try:
        with classify_database_errors():
            yield
    except CommitOutcomeUnknownError:
        raise
    except DatabaseConnectionError as error:
        if not may_have_been_sent(error):
            raise
        raise _unknown(error, "while an autocommitted write was in flight, so it") from error


def _unknown(error: DatabaseConnectionError, when: str) -> CommitOutcomeUnknownError:
    return CommitOutcomeUnknownError(
        f"the connection was lost {when} may or may not have been applied; it was not "
        f"retried. Check the data (or make the write idempotent) before trying again "
        f"({error.message})",
        dialect=error.dialect,
        sqlstate=error.sqlstate,
    )
