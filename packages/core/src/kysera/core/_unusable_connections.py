"""Driver errors that leave a connection unusable before the driver knows it is closed.

PostgreSQL ends a session on its own (``pg_terminate_backend``, a server shutdown,
``idle_in_transaction_session_timeout``, ``idle_session_timeout``) by sending an error
message and then closing the socket. When asyncpg reads that message while no statement
runs, its protocol is left waiting for the end of an answer that never comes. The next
statement, sent before the socket's close arrives (or at all, when something between client
and server keeps the socket open), fails with an ``InternalClientError`` ("cannot switch to
state 12; another operation (2) is in progress") before anything is written to the server,
and asyncpg aborts the connection.

SQLAlchemy releases without the fix for sqlalchemy/sqlalchemy#13241 (2.0.30, Kysera's floor,
is one; 2.1.9 has it) leave that exception untranslated, so they neither see a lost
connection nor invalidate it: the pool hands the dead connection to whoever comes next, and
the error reads as a plain `DatabaseError`. `left_unusable` recognises it for the error
classifier and the asyncpg direct path; `report_unusable_as_lost` makes SQLAlchemy's own
path invalidate the connection (`guard_engine` installs it where SQLAlchemy has no class
for the exception; where it has, it sees the connection asyncpg aborted as closed).

Nothing was sent, so the statement, or the COMMIT of a transaction the server rolled back
with the session, is safe to run again: `may_have_been_sent` tells the write paths (an
autocommitted repository write, ``orm.transaction()``, `retry_transaction`) which lost
connections those are, so they raise a transient `DatabaseConnectionError` rather than
`CommitOutcomeUnknownError`.

asyncpg raises that message only from its protocol's state machine, after its own checks
for a closed connection and for a statement already running on it (those raise
``InterfaceError``), so it always means a protocol out of step with the server.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy.engine import ExceptionContext

__all__ = ["left_unusable", "may_have_been_sent", "report_unusable_as_lost"]

_OUT_OF_STEP: Final = "cannot switch to state"


def left_unusable(error: BaseException) -> bool:
    """Tell whether ``error`` (a driver exception, or one wrapping it through ``orig`` or
    ``__cause__``) says its connection can run no statement any more, although the driver
    has not seen it close."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        cls = type(current)
        if (
            cls.__name__ == "InternalClientError"
            and cls.__module__.startswith("asyncpg")
            and str(current).startswith(_OUT_OF_STEP)
        ):
            return True
        current = getattr(current, "orig", None) or current.__cause__
    return False


def report_unusable_as_lost(context: ExceptionContext) -> None:
    """A ``handle_error`` listener: SQLAlchemy invalidates a connection `left_unusable`
    says is unusable, as it does one it sees closed, so the pool never hands it out again."""
    if not context.is_disconnect and left_unusable(context.original_exception):
        context.is_disconnect = True


def may_have_been_sent(error: BaseException) -> bool:
    """Tell whether the statement (or ``COMMIT``) that failed with ``error`` (a classified
    connection error, whose ``__cause__`` is the driver's exception) may have reached the
    server. False only when the driver shows that nothing was sent: asyncpg refused to send
    on a connection it knew was closed, its protocol was out of step (`left_unusable`), or
    the connection was lost while asyncpg was still preparing the statement (parsing it,
    looking up its types), before it asked the server to execute it."""
    cause = error.__cause__
    if cause is None or not type(cause).__module__.startswith("asyncpg"):
        return True
    if type(cause).__name__ == "InterfaceError" and "connection is closed" in str(cause):
        return False
    if left_unusable(cause):
        return False
    return not _raised_in(cause, "asyncpg.connection", "_get_statement")


def _raised_in(exc: BaseException, module: str, function: str) -> bool:
    traceback = exc.__traceback__
    while traceback is not None:
        frame = traceback.tb_frame
        if frame.f_code.co_name == function and frame.f_globals.get("__name__") == module:
            return True
        traceback = traceback.tb_next
    return False
