"""Kysera's error hierarchy: every error a Kysera package raises is a `KyseraError`.

```
KyseraError                            .code, .to_dict()
├── DatabaseError                      .dialect, .sqlstate, .constraint, .table, .columns,
│   │                                  .detail, .transient
│   ├── UniqueConstraintError          VALIDATION_UNIQUE_VIOLATION
│   ├── ForeignKeyError                VALIDATION_FOREIGN_KEY_VIOLATION
│   ├── NotNullError                   VALIDATION_NOT_NULL_VIOLATION
│   ├── CheckConstraintError           VALIDATION_CHECK_VIOLATION
│   ├── SerializationError             DATABASE_SERIALIZATION_FAILURE (transient)
│   ├── DeadlockError                  DATABASE_DEADLOCK (transient)
│   ├── LockTimeoutError               DATABASE_LOCK_TIMEOUT (transient)
│   ├── DatabaseConnectionError        DATABASE_CONNECTION_ERROR (transient)
│   │   └── CommitOutcomeUnknownError  DATABASE_COMMIT_OUTCOME_UNKNOWN (not transient)
│   ├── QueryTimeoutError              DATABASE_QUERY_TIMEOUT (transient)
│   └── StaleStatementError            DATABASE_STALE_STATEMENT (transient)
├── NotFoundError (also LookupError)   NOT_FOUND          .entity, .filters
├── BadRequestError (also ValueError)  BAD_REQUEST
│   ├── ValidationError                VALIDATION_ERROR   .errors
│   ├── InvalidCursorError             INVALID_CURSOR
│   └── InvalidQueryError              INVALID_QUERY
└── CircuitOpenError                   CIRCUIT_OPEN
```

Driver exceptions become `DatabaseError` subclasses through `parse_database_error`, which
classifies by the native code each driver gives (PostgreSQL SQLSTATE, MySQL errno, SQLite
extended result code) and reads message text only for details no code carries, such as
column names. The driver's own exception stays reachable as ``__cause__``. aiomysql's
failure to send a parameter (a ``TypeError``: aiomysql 0.3 cannot send ``bytes`` with
PyMySQL 1.1 or later) becomes a `DatabaseError` that names the parameter's type and asyncmy,
the driver that can.

Connection failures are `DatabaseConnectionError` whatever raised them: SQLAlchemy's pool
timeout, an ``OSError`` raised in a driver's or SQLAlchemy's connection code (DNS failures,
connect timeouts), and logins the server refuses for its settings (a missing database, a
refused role or password), which are not transient.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import re
import socket
import uuid
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar

from sqlalchemy import exc as sa_exc

from kysera.core._unusable_connections import left_unusable

__all__ = [
    "BadRequestError",
    "CheckConstraintError",
    "CircuitOpenError",
    "CommitOutcomeUnknownError",
    "DatabaseConnectionError",
    "DatabaseError",
    "DeadlockError",
    "ForeignKeyError",
    "InvalidCursorError",
    "InvalidQueryError",
    "KyseraError",
    "LockTimeoutError",
    "NotFoundError",
    "NotNullError",
    "QueryTimeoutError",
    "SerializationError",
    "StaleStatementError",
    "UniqueConstraintError",
    "ValidationError",
    "classify_database_errors",
    "is_transient_error",
    "parse_database_error",
]


class KyseraError(Exception):
    """Base class of every error raised by a Kysera package.

    Attributes:
        code: A stable, machine-readable identifier of the error kind.
        message: The human-readable message.
    """

    code: ClassVar[str] = "KYSERA_ERROR"

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe description: ``code``, ``message`` and the error's details."""
        return {"code": self.code, "message": self.message, **_json_safe(self._details())}

    def _details(self) -> dict[str, Any]:
        return {}


class DatabaseError(KyseraError):
    """A failure reported by the database or its driver.

    Attributes:
        dialect: ``"postgresql"``, ``"mysql"``, ``"sqlite"`` or ``None`` when unknown.
        sqlstate: The driver's native code: SQLSTATE on PostgreSQL, the errno on
            MySQL/MariaDB, the SQLite result code name (e.g. ``"SQLITE_CONSTRAINT_UNIQUE"``).
        constraint: The violated constraint's name, where the database reports it.
        table: The table involved, where the database reports it.
        columns: The columns involved, where the database reports them.
        detail: Extra detail from the database (PostgreSQL's DETAIL line).
        transient: Whether running the same work again may succeed.
    """

    code: ClassVar[str] = "DATABASE_ERROR"
    transient_by_default: ClassVar[bool] = False

    def __init__(
        self,
        message: str = "",
        *,
        dialect: str | None = None,
        sqlstate: str | None = None,
        constraint: str | None = None,
        table: str | None = None,
        columns: Sequence[str] = (),
        detail: str | None = None,
        transient: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.dialect = dialect
        self.sqlstate = sqlstate
        self.constraint = constraint
        self.table = table
        self.columns = tuple(columns)
        self.detail = detail
        self.transient = self.transient_by_default if transient is None else transient

    def _details(self) -> dict[str, Any]:
        return {
            "dialect": self.dialect,
            "sqlstate": self.sqlstate,
            "constraint": self.constraint,
            "table": self.table,
            "columns": list(self.columns),
            "detail": self.detail,
            "transient": self.transient,
        }


class UniqueConstraintError(DatabaseError):
    """A row would duplicate a value that a unique index or primary key forbids."""

    code: ClassVar[str] = "VALIDATION_UNIQUE_VIOLATION"


class ForeignKeyError(DatabaseError):
    """A row references a missing parent, or a referenced parent would be removed."""

    code: ClassVar[str] = "VALIDATION_FOREIGN_KEY_VIOLATION"


class NotNullError(DatabaseError):
    """A NOT NULL column was given no value."""

    code: ClassVar[str] = "VALIDATION_NOT_NULL_VIOLATION"


class CheckConstraintError(DatabaseError):
    """A row fails a CHECK constraint."""

    code: ClassVar[str] = "VALIDATION_CHECK_VIOLATION"


class SerializationError(DatabaseError):
    """A concurrent transaction conflicted (PostgreSQL 40001); retry the whole transaction."""

    code: ClassVar[str] = "DATABASE_SERIALIZATION_FAILURE"
    transient_by_default: ClassVar[bool] = True


class DeadlockError(DatabaseError):
    """The database broke a deadlock by aborting this transaction; retry it."""

    code: ClassVar[str] = "DATABASE_DEADLOCK"
    transient_by_default: ClassVar[bool] = True


class LockTimeoutError(DatabaseError):
    """A lock could not be acquired in time (or at once, with NOWAIT)."""

    code: ClassVar[str] = "DATABASE_LOCK_TIMEOUT"
    transient_by_default: ClassVar[bool] = True


class StaleStatementError(DatabaseError):
    """A statement prepared on a pooled connection before a schema change can no longer run
    (asyncpg's InvalidCachedStatementError, after ``ALTER TABLE ... TYPE`` say); the driver
    has dropped its prepared statements, so running the work again succeeds. Repositories
    do that by themselves outside a caller's transaction."""

    code: ClassVar[str] = "DATABASE_STALE_STATEMENT"
    transient_by_default: ClassVar[bool] = True


class DatabaseConnectionError(DatabaseError):
    """The connection could not be opened or was lost."""

    code: ClassVar[str] = "DATABASE_CONNECTION_ERROR"
    transient_by_default: ClassVar[bool] = True


class CommitOutcomeUnknownError(DatabaseConnectionError):
    """The connection was lost while COMMIT was in flight: the transaction may have committed.

    Also raised by repository writes when the connection is lost while a statement that
    commits on its own (autocommit) was in flight: only the server's answer may be lost.

    `retry_transaction` never reruns a transaction after this error, since running it
    again could apply it twice. It is not transient (``.transient`` is ``False``), so an outer
    `with_retry` does not rerun it either. Check the data (or make the work idempotent, for
    example with a unique request id) before trying again.
    """

    code: ClassVar[str] = "DATABASE_COMMIT_OUTCOME_UNKNOWN"
    transient_by_default: ClassVar[bool] = False


class QueryTimeoutError(DatabaseError):
    """A statement was cancelled by a statement timeout or a cancel request."""

    code: ClassVar[str] = "DATABASE_QUERY_TIMEOUT"
    transient_by_default: ClassVar[bool] = True


class NotFoundError(KyseraError, LookupError):
    """The requested row does not exist.

    Attributes:
        entity: What was looked for (usually a table name).
        filters: The key or conditions that matched nothing.
    """

    code: ClassVar[str] = "NOT_FOUND"

    def __init__(
        self, message: str = "", *, entity: str | None = None, filters: Any = None
    ) -> None:
        if not message and entity is not None:
            message = f"{entity} not found" + (f": {filters!r}" if filters is not None else "")
        super().__init__(message)
        self.entity = entity
        self.filters = filters

    def _details(self) -> dict[str, Any]:
        return {"entity": self.entity, "filters": self.filters}


class BadRequestError(KyseraError, ValueError):
    """The caller passed input that can never succeed."""

    code: ClassVar[str] = "BAD_REQUEST"


class ValidationError(BadRequestError):
    """Input failed validation; nothing was written.

    Attributes:
        errors: pydantic's error list (``exc.errors()``), or an equivalent list of dicts.
    """

    code: ClassVar[str] = "VALIDATION_ERROR"

    def __init__(self, message: str = "", *, errors: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message)
        self.errors = [dict(error) for error in errors]

    def _details(self) -> dict[str, Any]:
        return {"errors": self.errors}


class InvalidCursorError(BadRequestError):
    """A pagination cursor is malformed, tampered with, or belongs to another ordering."""

    code: ClassVar[str] = "INVALID_CURSOR"


class InvalidQueryError(BadRequestError):
    """A query argument is invalid: unknown column or operator, bad limit or page."""

    code: ClassVar[str] = "INVALID_QUERY"


class CircuitOpenError(KyseraError):
    """The circuit breaker is open: calls fail fast until it lets a probe through."""

    code: ClassVar[str] = "CIRCUIT_OPEN"


# --- classification -------------------------------------------------------------------------

_DRIVER_DIALECTS = {
    "asyncpg": "postgresql",
    "psycopg": "postgresql",
    "psycopg2": "postgresql",
    "sqlite3": "sqlite",
    "aiosqlite": "sqlite",
    "pymysql": "mysql",
    "aiomysql": "mysql",
    "asyncmy": "mysql",
    "MySQLdb": "mysql",
}

_POSTGRES_CLASSES: dict[str, type[DatabaseError]] = {
    "23505": UniqueConstraintError,
    "23503": ForeignKeyError,
    "23502": NotNullError,
    "23514": CheckConstraintError,
    "40001": SerializationError,
    "40P01": DeadlockError,
    "55P03": LockTimeoutError,
    "57014": QueryTimeoutError,
    "57P01": DatabaseConnectionError,  # admin_shutdown (e.g. pg_terminate_backend)
    "57P02": DatabaseConnectionError,  # crash_shutdown
    "57P03": DatabaseConnectionError,  # cannot_connect_now
    "53300": DatabaseConnectionError,  # too_many_connections
}

# The server refused the connection for its settings: retrying cannot help, so these are
# connection errors that are not transient.
_POSTGRES_REFUSED = {
    "3D000": "the database does not exist",  # invalid_catalog_name
    "28000": "the role may not connect",  # invalid_authorization_specification
    "28P01": "password authentication failed",  # invalid_password
}
_MYSQL_REFUSED = {
    1044: "the user may not use this database",  # ER_DBACCESS_DENIED_ERROR
    1045: "access denied (user or password)",  # ER_ACCESS_DENIED_ERROR
    1049: "the database does not exist",  # ER_BAD_DB_ERROR
    1698: "access denied (user or password)",  # ER_ACCESS_DENIED_NO_PASSWORD_ERROR
}

_MYSQL_CLASSES: dict[int, type[DatabaseError]] = {
    1062: UniqueConstraintError,  # ER_DUP_ENTRY
    1169: UniqueConstraintError,  # ER_DUP_UNIQUE
    1586: UniqueConstraintError,  # ER_DUP_ENTRY_WITH_KEY_NAME
    1216: ForeignKeyError,  # ER_NO_REFERENCED_ROW
    1217: ForeignKeyError,  # ER_ROW_IS_REFERENCED
    1451: ForeignKeyError,  # ER_ROW_IS_REFERENCED_2
    1452: ForeignKeyError,  # ER_NO_REFERENCED_ROW_2
    1048: NotNullError,  # ER_BAD_NULL_ERROR
    1364: NotNullError,  # ER_NO_DEFAULT_FOR_FIELD (strict mode, NOT NULL without default)
    3819: CheckConstraintError,  # MySQL ER_CHECK_CONSTRAINT_VIOLATED
    4025: CheckConstraintError,  # MariaDB ER_CONSTRAINT_FAILED
    1020: SerializationError,  # MariaDB ER_CHECKREAD (innodb_snapshot_isolation=ON)
    1213: DeadlockError,  # ER_LOCK_DEADLOCK
    1205: LockTimeoutError,  # ER_LOCK_WAIT_TIMEOUT
    3572: LockTimeoutError,  # ER_LOCK_NOWAIT
    1317: QueryTimeoutError,  # ER_QUERY_INTERRUPTED
    1969: QueryTimeoutError,  # MariaDB ER_STATEMENT_TIMEOUT
    3024: QueryTimeoutError,  # MySQL ER_QUERY_TIMEOUT
    1040: DatabaseConnectionError,  # ER_CON_COUNT_ERROR
    1053: DatabaseConnectionError,  # ER_SERVER_SHUTDOWN
    1927: DatabaseConnectionError,  # MariaDB ER_CONNECTION_KILLED
    2002: DatabaseConnectionError,  # CR_CONNECTION_ERROR
    2003: DatabaseConnectionError,  # CR_CONN_HOST_ERROR
    2006: DatabaseConnectionError,  # CR_SERVER_GONE_ERROR
    2013: DatabaseConnectionError,  # CR_SERVER_LOST
    2055: DatabaseConnectionError,  # CR_SERVER_LOST_EXTENDED
}

# SQLite extended result codes (https://sqlite.org/rescode.html).
_SQLITE_EXTENDED_CLASSES: dict[int, type[DatabaseError]] = {
    2067: UniqueConstraintError,  # SQLITE_CONSTRAINT_UNIQUE
    1555: UniqueConstraintError,  # SQLITE_CONSTRAINT_PRIMARYKEY
    787: ForeignKeyError,  # SQLITE_CONSTRAINT_FOREIGNKEY
    1299: NotNullError,  # SQLITE_CONSTRAINT_NOTNULL
    275: CheckConstraintError,  # SQLITE_CONSTRAINT_CHECK
}
_SQLITE_PRIMARY_CLASSES: dict[int, type[DatabaseError]] = {
    5: LockTimeoutError,  # SQLITE_BUSY
    6: LockTimeoutError,  # SQLITE_LOCKED
    9: QueryTimeoutError,  # SQLITE_INTERRUPT
    14: DatabaseConnectionError,  # SQLITE_CANTOPEN
}
# Python < 3.11 has no sqlite_errorcode: fall back to SQLite's fixed message prefixes, and
# the result code name each stands for (a primary key's violation reads as a unique one).
_SQLITE_MESSAGE_CLASSES: tuple[tuple[str, type[DatabaseError], str], ...] = (
    ("UNIQUE constraint failed", UniqueConstraintError, "SQLITE_CONSTRAINT_UNIQUE"),
    ("FOREIGN KEY constraint failed", ForeignKeyError, "SQLITE_CONSTRAINT_FOREIGNKEY"),
    ("NOT NULL constraint failed", NotNullError, "SQLITE_CONSTRAINT_NOTNULL"),
    ("CHECK constraint failed", CheckConstraintError, "SQLITE_CONSTRAINT_CHECK"),
    ("database is locked", LockTimeoutError, "SQLITE_BUSY"),
    ("database table is locked", LockTimeoutError, "SQLITE_LOCKED"),
    ("unable to open database file", DatabaseConnectionError, "SQLITE_CANTOPEN"),
)

_PG_KEY_COLUMNS = re.compile(r"Key \((?P<columns>[^)]*)\)=")
_SQLITE_COLUMNS = re.compile(r"constraint failed: (?P<columns>.+)$")
_MYSQL_DUP_KEY = re.compile(r"for key '(?P<key>[^']+)'")
_MYSQL_FK = re.compile(
    r"\(`(?P<schema>[^`]+)`\.`(?P<table>[^`]+)`, CONSTRAINT `(?P<constraint>[^`]+)` "
    r"FOREIGN KEY \((?P<columns>[^)]+)\)"
)
_MYSQL_NULL_COLUMN = re.compile(r"(?:Column|Field) '(?P<column>[^']+)'")
_MYSQL_CHECK = re.compile(r"(?:CONSTRAINT `|[Cc]heck constraint ')(?P<constraint>[^`']+)")
_MYSQL_CHECK_TABLE = re.compile(r"failed for `[^`]+`\.`(?P<table>[^`]+)`")


def parse_database_error(exc: BaseException, dialect: str | None = None) -> DatabaseError:
    """Classify a database exception into the matching `DatabaseError` subclass.

    Args:
        exc: A SQLAlchemy ``DBAPIError``, a raw driver exception (asyncpg, sqlite3/aiosqlite,
            aiomysql/pymysql, asyncmy), an ``OSError`` raised while connecting (a DNS
            failure, a connect timeout), or SQLAlchemy's pool ``TimeoutError`` (a transient
            `DatabaseConnectionError`, "connection pool exhausted"). A `DatabaseError` is
            returned unchanged.
        dialect: The dialect name, when the caller knows it better than the exception.

    Returns:
        The classified error. Its ``__cause__`` is the driver's own exception; raise it with
        ``raise parse_database_error(exc) from exc`` only when you want the SQLAlchemy
        wrapper in the chain instead.
    """
    if isinstance(exc, DatabaseError):
        return exc
    if isinstance(exc, sa_exc.TimeoutError):
        pool_error = DatabaseConnectionError(
            f"connection pool exhausted: no connection was free within the pool's timeout "
            f"({exc}); raise pool_size / max_overflow or hold connections for less time",
            dialect=dialect,
        )
        pool_error.__cause__ = exc
        return pool_error
    driver_exc = _driver_exception(exc)
    unsendable = _unsendable_parameter(driver_exc)
    if unsendable is not None:
        error = DatabaseError(unsendable, dialect="mysql", transient=False)
        error.__cause__ = driver_exc
        return error
    dialect = dialect or _dialect_of(driver_exc) or _database_code_in(driver_exc) or None
    invalidated = isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated

    if isinstance(driver_exc, OSError):
        error = DatabaseConnectionError(_os_error_message(driver_exc))
    elif dialect == "postgresql":
        error = _parse_postgres(driver_exc)
    elif dialect == "sqlite":
        error = _parse_sqlite(driver_exc)
    elif dialect == "mysql":
        error = _parse_mysql(driver_exc)
    else:
        error = DatabaseError(_message_of(driver_exc))
    if invalidated and type(error) is DatabaseError:
        error = DatabaseConnectionError(error.message, sqlstate=error.sqlstate)
    error.dialect = dialect
    error.__cause__ = driver_exc
    return error


def is_transient_error(exc: BaseException) -> bool:
    """Tell whether running the failed work again may succeed.

    Walks the ``__cause__`` and ``.orig`` chain, so it answers for Kysera errors, SQLAlchemy
    errors and raw driver exceptions alike. Serialization failures, deadlocks, lock
    timeouts, lost connections and statement timeouts are transient; constraint violations
    and programming errors are not.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DatabaseError):
            return current.transient
        if _is_database_exception(current):
            return parse_database_error(current).transient
        current = getattr(current, "orig", None) or current.__cause__
    return False


class classify_database_errors:
    """Re-raise database exceptions raised inside the block as classified `DatabaseError`.

    Kysera errors and non-database exceptions pass through unchanged. Usable with ``with``
    and ``async with``, so it can share a line with ``engine.begin()``::

        async with engine.begin() as conn, classify_database_errors():
            await conn.execute(statement)

    Args:
        dialect: The dialect name, when the caller knows it better than the exception.
    """

    __slots__ = ("dialect",)

    def __init__(self, dialect: str | None = None) -> None:
        self.dialect = dialect

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if (
            isinstance(exc, Exception)
            and not isinstance(exc, KyseraError)
            and _is_database_exception(exc)
        ):
            raise parse_database_error(exc, self.dialect) from _driver_exception(exc)
        unbindable = _unbindable_parameter(exc)
        if unbindable is not None:
            raise InvalidQueryError(unbindable) from exc

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, traceback)


def _driver_exception(exc: BaseException) -> BaseException:
    """Return the driver's own exception behind SQLAlchemy's wrapper and DBAPI adapters."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None:
        exc = exc.orig
    # SQLAlchemy's async adapters (e.g. for asyncpg) wrap the native exception as __cause__.
    while type(exc).__module__.startswith("sqlalchemy") and exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _dialect_of(exc: BaseException) -> str | None:
    return _DRIVER_DIALECTS.get(type(exc).__module__.partition(".")[0])


def _is_database_exception(exc: BaseException) -> bool:
    if isinstance(exc, (sa_exc.DBAPIError, sa_exc.TimeoutError)):
        # sqlalchemy.exc.TimeoutError: the pool had no connection to hand out in time.
        return True
    if isinstance(exc, OSError):
        # A lost connection, or any OSError (a DNS failure, a connect timeout) raised in a
        # driver's or SQLAlchemy's code; a file error elsewhere is not a database outage.
        return isinstance(exc, ConnectionError) or _database_code_in(exc) is not None
    if _unsendable_parameter(exc) is not None:
        return True
    return _dialect_of(exc) is not None and isinstance(exc, Exception)


def _unsendable_parameter(exc: BaseException) -> str | None:
    """The message for aiomysql failing to escape a parameter, when ``exc`` is that failure.

    aiomysql escapes parameters into the SQL text itself (``Connection.escape``) and raises
    a bare ``TypeError`` for one it cannot escape, which names neither the driver nor the
    value: for every ``bytes`` value under PyMySQL 1.1 or later, whose helper it calls
    PyMySQL replaced with a string ("'str' object is not callable"), and for the types
    PyMySQL refuses (tuples, dicts...). Only a ``TypeError`` raised inside that function is
    recognised: the traceback holds its frame.
    """
    if not isinstance(exc, TypeError):
        return None
    traceback = exc.__traceback__
    while traceback is not None:
        frame = traceback.tb_frame
        if frame.f_code.co_name == "escape" and frame.f_globals.get("__name__") == (
            "aiomysql.connection"
        ):
            kind = type(frame.f_locals.get("obj")).__name__
            if kind in ("bytes", "bytearray", "memoryview"):
                return (
                    f"aiomysql cannot send a {kind} parameter (aiomysql 0.3 with PyMySQL 1.1 "
                    "or later cannot escape binary values); use the asyncmy driver "
                    "(mysql+asyncmy://, installed by kysera-core[mysql]), or send the value "
                    "as hexadecimal text and decode it in the statement with UNHEX()"
                )
            return f"aiomysql cannot send a parameter of type {kind}: {_message_of(exc)}"
        traceback = traceback.tb_next
    return None


# Modules whose OSErrors are about the database connection: SQLAlchemy's pool (connecting,
# checking out), its dialects and async adapters. Not its statement execution: an OSError
# from a type's bind or result processor is the application's, not an outage.
_SQLALCHEMY_CONNECTION_MODULES = (
    "sqlalchemy.pool",
    "sqlalchemy.dialects",
    "sqlalchemy.connectors",
)


def _database_code_in(exc: BaseException) -> str | None:
    """The dialect (or ``""`` when only SQLAlchemy's code is seen) of the driver or SQLAlchemy
    connection code an exception was raised in, from its traceback; ``None`` for neither."""
    found: str | None = None
    traceback = exc.__traceback__
    while traceback is not None:
        module = traceback.tb_frame.f_globals.get("__name__", "")
        dialect = _DRIVER_DIALECTS.get(module.partition(".")[0])
        if dialect is not None:
            return dialect
        if module.startswith(_SQLALCHEMY_CONNECTION_MODULES):
            found = ""
        traceback = traceback.tb_next
    return found


def _os_error_message(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the database server's host name (DNS): {_message_of(exc)}"
    if isinstance(exc, TimeoutError):
        detail = f": {exc}" if str(exc) else ""
        return f"timed out waiting for the database server{detail}"
    return _message_of(exc)


def _message_of(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _parse_postgres(exc: BaseException) -> DatabaseError:
    if left_unusable(exc):
        return DatabaseConnectionError(
            f"the connection is unusable: the server ended the session before asyncpg saw "
            f"it close (an administrator, a server shutdown or an idle timeout); the "
            f"statement was not sent ({_message_of(exc)})"
        )
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate in _POSTGRES_REFUSED:
        return DatabaseConnectionError(
            f"PostgreSQL refused the connection: {_POSTGRES_REFUSED[sqlstate]} "
            f"({_message_of(exc)}); check the database URL",
            sqlstate=sqlstate,
            transient=False,
        )
    cls = _POSTGRES_CLASSES.get(sqlstate or "", DatabaseError)
    if type(exc).__name__ == "InvalidCachedStatementError":  # asyncpg; SQLSTATE 0A000
        cls = StaleStatementError
    if cls is DatabaseError and sqlstate and sqlstate.startswith("08"):
        cls = DatabaseConnectionError
    if cls is DatabaseError and (
        type(exc).__name__ == "ConnectionDoesNotExistError"
        # asyncpg reports a connection closed under it as InterfaceError, without a SQLSTATE.
        or (type(exc).__name__ == "InterfaceError" and "closed" in str(exc))
    ):
        cls = DatabaseConnectionError
    detail = getattr(exc, "detail", None)
    columns: tuple[str, ...] = ()
    column_name = getattr(exc, "column_name", None)
    if column_name:
        columns = (column_name,)
    elif detail and (match := _PG_KEY_COLUMNS.search(detail)):
        columns = tuple(part.strip().strip('"') for part in match["columns"].split(","))
    return cls(
        _message_of(exc),
        sqlstate=sqlstate,
        constraint=getattr(exc, "constraint_name", None),
        table=getattr(exc, "table_name", None),
        columns=columns,
        detail=detail,
    )


def _parse_sqlite(exc: BaseException) -> DatabaseError:
    message = _message_of(exc)
    code = getattr(exc, "sqlite_errorcode", None)
    name = getattr(exc, "sqlite_errorname", None)
    cls: type[DatabaseError] = DatabaseError
    if isinstance(code, int):
        cls = _SQLITE_EXTENDED_CLASSES.get(code) or _SQLITE_PRIMARY_CLASSES.get(
            code & 0xFF, DatabaseError
        )
    else:
        for prefix, candidate, code_name in _SQLITE_MESSAGE_CLASSES:
            if message.startswith(prefix):
                cls, name = candidate, code_name
                break
    table: str | None = None
    constraint: str | None = None
    columns: tuple[str, ...] = ()
    match = _SQLITE_COLUMNS.search(message)
    if match and cls is CheckConstraintError:
        constraint = match["columns"]
    elif match and cls in (UniqueConstraintError, NotNullError):
        qualified = [part.strip() for part in match["columns"].split(",")]
        table = qualified[0].rpartition(".")[0] or None
        columns = tuple(part.rpartition(".")[2] for part in qualified)
    return cls(message, sqlstate=name, constraint=constraint, table=table, columns=columns)


def _parse_mysql(exc: BaseException) -> DatabaseError:
    args: tuple[Any, ...] = exc.args
    errno = args[0] if args and isinstance(args[0], int) else None
    message = str(args[1]) if len(args) > 1 else _message_of(exc)
    if errno in _MYSQL_REFUSED:
        return DatabaseConnectionError(
            f"MySQL refused the connection: {_MYSQL_REFUSED[errno]} ({message}); "
            "check the database URL",
            sqlstate=str(errno),
            transient=False,
        )
    if errno == 2003 and isinstance(exc.__cause__, socket.gaierror):
        message = f"{message}: cannot resolve the host name (DNS): {exc.__cause__}"
    cls = _MYSQL_CLASSES.get(errno, DatabaseError) if errno is not None else DatabaseError
    table: str | None = None
    constraint: str | None = None
    columns: tuple[str, ...] = ()
    if cls is UniqueConstraintError and (match := _MYSQL_DUP_KEY.search(message)):
        # MySQL 8 reports 'table.key', MariaDB only 'key'.
        prefix, _, key = match["key"].rpartition(".")
        constraint, table = key, prefix or None
    elif cls is ForeignKeyError and (match := _MYSQL_FK.search(message)):
        table, constraint = match["table"], match["constraint"]
        columns = tuple(part.strip(" `") for part in match["columns"].split(","))
    elif cls is NotNullError and (match := _MYSQL_NULL_COLUMN.search(message)):
        columns = (match["column"],)
    elif cls is CheckConstraintError:
        if match := _MYSQL_CHECK.search(message):
            constraint = match["constraint"]
        if match := _MYSQL_CHECK_TABLE.search(message):
            table = match["table"]
    return cls(
        message,
        sqlstate=str(errno) if errno is not None else None,
        constraint=constraint,
        table=table,
        columns=columns,
    )


def _json_safe(value: Any) -> Any:
    """Convert a value to something ``json.dumps`` accepts without losing what it says."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_safe(item) for item in value]
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, enum.Enum):
        return _json_safe(value.value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return repr(value)


def _unbindable_parameter(exc: BaseException | None) -> str | None:
    """The message for a parameter that failed before it could be sent, if ``exc`` is that.

    Two shapes: SQLAlchemy's ``StatementError`` from a type's bind processing (a set bound to
    a JSON column, a timedelta too large for a non-native interval), and the ``OverflowError``
    Python's sqlite3 module raises for an integer beyond 64 bits. Either way no SQL ran: the
    caller's value is at fault, not the database.
    """
    if isinstance(exc, sa_exc.StatementError) and not isinstance(exc, sa_exc.DBAPIError):
        cause = exc.orig if exc.orig is not None else exc
        return f"a parameter could not be bound: {type(cause).__name__}: {_message_of(cause)}"
    if isinstance(exc, OverflowError):
        traceback = exc.__traceback__
        innermost = None
        while traceback is not None:
            innermost = traceback.tb_frame
            traceback = traceback.tb_next
        module = "" if innermost is None else str(innermost.f_globals.get("__name__", ""))
        if module.partition(".")[0] in ("aiosqlite", "sqlite3", "sqlalchemy"):
            return f"a parameter is out of the database's range: {_message_of(exc)}"
    return None
