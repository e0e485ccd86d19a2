"""Plumbing shared by the audit mixins: the transaction, old-row reads, log-row writes."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from pydantic import BaseModel
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Select,
    Table,
    any_,
    bindparam,
    insert,
    select,
    text,
    tuple_,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.audit._encoding import RowCodec, entity_id_of
from kysera.audit._postgres import KEYS_PARAMETER, RECORDSET_PARAMETER
from kysera.audit.context import current_audit_actor
from kysera.audit.entry import AuditOperation
from kysera.core import (
    DeadlockError,
    InvalidQueryError,
    LockTimeoutError,
    SerializationError,
    classify_database_errors,
)
from kysera.repository import Repository, as_read_back

if TYPE_CHECKING:
    from kysera.audit.plugin import AuditPlugin

__all__ = ["AuditBase"]

# True while an audited operation runs: nested write calls are not logged a second time.
_AUDITING: ContextVar[bool] = ContextVar("kysera_audit_running", default=False)

_Row = dict[str, Any]

_Method = TypeVar("_Method", bound=Callable[..., Awaitable[Any]])

# How often an audited write in a transaction of its own runs when the database aborts it
# as a deadlock victim or for a serialization failure: as often as the repository's own
# writes (kysera.repository runs them up to three times; nothing was committed).
_WRITE_ATTEMPTS = 3

# Key locks of audited upserts on MySQL/MariaDB: at most this many GET_LOCK calls per
# statement (each name is one parameter).
_LOCKS_PER_STATEMENT = 1000


def retried_on_conflict(method: _Method) -> _Method:
    """Run an audited write again when the database aborted its own transaction as a
    deadlock victim or for a serialization failure, as the repository does for its writes.

    Only an outermost call on an engine is retried: inside the caller's transaction (or
    inside another audited call) the error is the caller's to handle, as the whole
    transaction was rolled back. One-shot iterators among the arguments are read into lists
    first, so that every attempt sees the same input.
    """

    @functools.wraps(method)
    async def call(self: AuditBase, *args: Any, **kwargs: Any) -> Any:
        if _AUDITING.get() or not isinstance(self.executor, AsyncEngine):
            return await method(self, *args, **kwargs)
        args = tuple(list(item) if isinstance(item, Iterator) else item for item in args)
        kwargs = {
            name: list(item) if isinstance(item, Iterator) else item
            for name, item in kwargs.items()
        }
        attempt = 1
        while True:
            try:
                return await method(self, *args, **kwargs)
            except (DeadlockError, SerializationError):
                if attempt >= _WRITE_ATTEMPTS:
                    raise
                attempt += 1

    return cast(_Method, call)


# Keys are locked by bucket: a call never takes more than this many locks, however many
# rows it upserts (PostgreSQL's shared lock table holds about 64 per connection; MariaDB
# slows down sharply with thousands of named locks in one session). Two different keys
# share a bucket once in 128 times, and then merely take turns.
_LOCK_BUCKETS = 128


def _lock_digest(table: str, names: Sequence[str], key: Sequence[Any]) -> bytes:
    key_hash = hashlib.sha1(repr(tuple(key)).encode(), usedforsecurity=False).digest()
    bucket = int.from_bytes(key_hash[:4], "big") % _LOCK_BUCKETS
    text = repr((table, tuple(names), bucket))
    return hashlib.sha1(text.encode(), usedforsecurity=False).digest()


def _begin_immediate(sync: Connection) -> None:
    """Send ``BEGIN IMMEDIATE`` to a SQLite connection (before SQLAlchemy begins: its
    pysqlite recipe, if the engine uses it, then sees the transaction open and sends no
    ``BEGIN`` of its own)."""
    pooled = sync.connection
    if not getattr(pooled.driver_connection, "in_transaction", False):
        cursor = pooled.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute("BEGIN IMMEDIATE")
        finally:
            cursor.close()


def _with_deleted(options: Mapping[str, Any]) -> dict[str, Any]:
    return {**options, "include_deleted": True}


def _check_window(name: str, value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise InvalidQueryError(f"{name} must be a non-negative integer, got {value!r}")


class AuditBase(Repository[Any]):
    """The helpers `AuditMixin` builds on (no public methods of its own)."""

    audit_plugin: ClassVar[AuditPlugin]
    audit_log: ClassVar[Table]

    # --- plumbing ---------------------------------------------------------------------------

    @property
    def _audit_codec(self) -> RowCodec:
        return self.audit_plugin.codec(self.table)

    @asynccontextmanager
    async def _audited(self) -> AsyncIterator[tuple[Any, AsyncConnection]]:
        """A transaction for the change and its log rows, with nested logging switched off."""
        executor = self.executor
        if isinstance(executor, AsyncEngine) and executor.dialect.name == "sqlite":
            # Read-then-write transactions opened with a plain (deferred) BEGIN deadlock on
            # SQLite when two run at once; BEGIN IMMEDIATE takes the write lock up front.
            async with classify_database_errors(), executor.connect() as connection:
                await connection.run_sync(_begin_immediate)
                async with connection.begin():
                    token = _AUDITING.set(True)
                    try:
                        yield self.with_executor(connection), connection
                    finally:
                        _AUDITING.reset(token)
            return
        async with self.atomic() as bound:
            bound_connection = bound.executor
            assert isinstance(bound_connection, AsyncConnection)
            token = _AUDITING.set(True)
            try:
                yield bound, bound_connection
            finally:
                _AUDITING.reset(token)

    @asynccontextmanager
    async def _audit_key_locks(
        self, connection: AsyncConnection, names: Sequence[str], keys: Sequence[Sequence[Any]]
    ) -> AsyncIterator[None]:
        """Hold a lock on each of ``keys`` (values of the columns ``names``) for the block,
        whether or not a row has the key yet.

        ``SELECT ... FOR UPDATE`` locks only rows that exist: two audited upserts of a new
        key would both read "no old row" and both log an INSERT (PostgreSQL), or deadlock on
        the gap locks of their reads (MySQL/MariaDB). A lock per key, taken before the old
        rows are read, makes them take turns: the second reads the row the first wrote and
        logs an UPDATE with its old values. PostgreSQL: transaction-scoped advisory locks;
        MySQL/MariaDB: named locks (``GET_LOCK``, waiting up to
        ``innodb_lock_wait_timeout``), released at the end of the block. SQLite needs none:
        audited writes there take the database's write lock first (``BEGIN IMMEDIATE``).
        Locks are taken in a fixed order, so two calls never wait for each other in a cycle.
        """
        dialect = connection.dialect.name
        digests = sorted({_lock_digest(self.table.name, names, key) for key in keys})
        if not digests or dialect not in ("postgresql", "mysql"):
            yield
            return
        if dialect == "postgresql":
            numbers = [int.from_bytes(digest[:8], "big", signed=True) for digest in digests]
            await connection.execute(
                text(
                    "SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS BIGINT[])) AS k "
                    "ORDER BY k"
                ),
                {"keys": numbers},
            )
            yield
            return
        lock_names = ["kysera_audit_" + digest.hex() for digest in digests]
        taken: list[str] = []

        async def release() -> None:
            for start in range(0, len(taken), _LOCKS_PER_STATEMENT):
                batch = taken[start : start + _LOCKS_PER_STATEMENT]
                calls = ", ".join(f"RELEASE_LOCK(:n{index})" for index in range(len(batch)))
                await connection.execute(
                    text(f"SELECT {calls}"), {f"n{i}": name for i, name in enumerate(batch)}
                )

        try:
            for start in range(0, len(lock_names), _LOCKS_PER_STATEMENT):
                batch = lock_names[start : start + _LOCKS_PER_STATEMENT]
                calls = ", ".join(
                    f"GET_LOCK(:n{index}, @@innodb_lock_wait_timeout)"
                    for index in range(len(batch))
                )
                result = await connection.execute(
                    text(f"SELECT {calls}"), {f"n{i}": name for i, name in enumerate(batch)}
                )
                granted = list(result.one())
                taken += [name for name, ok in zip(batch, granted, strict=True) if ok == 1]
                if any(ok != 1 for ok in granted):
                    raise LockTimeoutError(
                        f"timed out waiting for another audited upsert of the same key of "
                        f"{self.table.name!r}",
                        dialect="mysql",
                        transient=True,
                    )
            yield
        except BaseException:
            # The error in flight is the one to report; a session that cannot release its
            # locks has lost its connection, and the locks with it.
            with contextlib.suppress(Exception):
                await release()
            raise
        # Released before COMMIT: a later upsert of the key then waits on the row lock of the
        # row written here, and reads it once committed.
        await release()

    def _audit_key(self, id: Any) -> tuple[Any, ...]:
        return self.key_values(id)

    def _audit_key_of_row(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(row[name] for name in self.primary_key)

    def _audit_keys_condition(
        self, keys: Sequence[tuple[Any, ...]], names: Sequence[str] | None = None
    ) -> ColumnElement[bool]:
        if names is None:
            return self.keys_condition(keys)
        columns = [self.table.c[name] for name in names]
        if len(columns) == 1:
            values = [key[0] for key in keys]
            if self.executor.dialect.name == "postgresql":
                # One array parameter, whatever the number of keys (PostgreSQL takes at most
                # 32,767 parameters per statement).
                array = bindparam("kysera_audit_keys", values, type_=ARRAY(columns[0].type))
                return columns[0] == any_(array)
            return columns[0].in_(values)
        return tuple_(*columns).in_(keys)

    async def _audit_read(
        self,
        connection: AsyncConnection,
        condition: ColumnElement[bool] | Select[Any] | None,
        options: Mapping[str, Any],
        parameters: Mapping[str, Any] | None = None,
        *,
        read_back: bool = False,
    ) -> dict[tuple[Any, ...], _Row]:
        """The rows matching ``condition`` (or selected by a prepared statement), locked, by
        primary key (one statement).

        ``read_back`` marks a read of rows the change has just written (`as_read_back`), so
        that a plugin hiding rows (archiving, say) still shows them to the log.
        """
        if isinstance(condition, Select):
            statement = condition
        else:
            statement = select(self.table)
            if condition is not None:
                statement = statement.where(condition)
            statement = statement.with_for_update()
        if read_back:
            statement = as_read_back(statement)
        result = await connection.execute(self.intercept("select", statement, options), parameters)
        keys = tuple(result.keys())
        rows: dict[tuple[Any, ...], _Row] = {}
        for values in result:
            row = dict(zip(keys, values, strict=True))
            rows[self._audit_key_of_row(row)] = row
        return rows

    async def _audit_read_keys(
        self,
        connection: AsyncConnection,
        ids: Iterable[Any],
        options: Mapping[str, Any],
        *,
        read_back: bool = False,
    ) -> dict[tuple[Any, ...], _Row]:
        keys = [self._audit_key(id) for id in ids]
        if not keys:
            return {}
        if connection.dialect.name == "postgresql" and len(self.primary_key) == 1:
            # One array parameter: the statement is built and compiled once, whatever the
            # number of keys (an IN list is re-rendered for every execution).
            return await self._audit_read(
                connection,
                self.audit_plugin.rows_by_keys(self.table),
                _with_deleted(options),
                {KEYS_PARAMETER: [key[0] for key in keys]},
                read_back=read_back,
            )
        return await self._audit_read(
            connection,
            self._audit_keys_condition(keys),
            _with_deleted(options),
            read_back=read_back,
        )

    def _audit_row_of(self, entity: Any) -> _Row:
        """The column values of a returned entity (a dict or a pydantic model)."""
        codec = self._audit_codec
        if isinstance(entity, Mapping):
            return codec.columns_of(entity)
        if isinstance(entity, BaseModel):
            return codec.columns_of(entity.model_dump())
        return codec.columns_of(
            {
                column.key: getattr(entity, column.key)
                for column in self.table.columns
                if hasattr(entity, column.key)
            }
        )

    def _audit_stamp(self) -> tuple[str | None, dt.datetime, dict[str, Any] | None]:
        """``(changed_by, changed_at, metadata)`` of the log rows written now."""
        plugin = self.audit_plugin
        actor = current_audit_actor()
        user_id = actor.user_id
        if user_id is None and plugin.get_user_id is not None:
            user_id = plugin.get_user_id()
        metadata: dict[str, Any] = {}
        if plugin.get_metadata is not None:
            metadata.update(plugin.get_metadata() or {})
        metadata.update(actor.metadata)
        return (
            None if user_id is None else str(user_id),
            dt.datetime.now(dt.UTC),
            RowCodec.encode(metadata) if metadata else None,
        )

    def _audit_entries(
        self, changes: Iterable[tuple[AuditOperation, _Row | None, _Row | None]]
    ) -> list[dict[str, Any]]:
        """The per-row columns of the log rows for ``(operation, old, new)`` changes
        (``entity_id``, ``operation``, the values and ``changed_fields``); unchanged
        updates are dropped."""
        plugin = self.audit_plugin
        encode = self._audit_codec.encode_row
        key_names = self.primary_key
        keep_old, keep_new = plugin.capture_old_values, plugin.capture_new_values
        skip_unchanged = plugin.skip_unchanged
        entries = []
        for operation, old, new in changes:
            if old is not None and new is not None:
                changed = [name for name, value in new.items() if old.get(name) != value]
                if not changed and skip_unchanged and operation == "UPDATE":
                    continue
                row = new
            elif new is not None:
                changed, row = list(new), new
            else:
                assert old is not None
                changed, row = [], old
            entries.append(
                {
                    "entity_id": entity_id_of(tuple(row[name] for name in key_names)),
                    "operation": operation,
                    "old_values": encode(old) if old is not None and keep_old else None,
                    "new_values": encode(new) if new is not None and keep_new else None,
                    "changed_fields": changed,
                }
            )
        return entries

    async def _audit_write(
        self,
        connection: AsyncConnection,
        changes: Iterable[tuple[AuditOperation, _Row | None, _Row | None]],
    ) -> None:
        entries = self._audit_entries(changes)
        if not entries:
            return
        changed_by, changed_at, metadata = self._audit_stamp()
        shared = {
            "table_name": self.table.name,
            "changed_by": changed_by,
            "changed_at": changed_at,
            "metadata": metadata,
        }
        if len(entries) > 1 and connection.dialect.name == "postgresql":
            # One JSON parameter instead of an executemany with three JSON values per row.
            await connection.execute(
                self.audit_plugin.recordset_insert,
                {
                    RECORDSET_PARAMETER: entries,
                    **{f"kysera_audit_{k}": v for k, v in shared.items()},
                },
            )
        else:
            await connection.execute(
                insert(self.audit_log), [{**shared, **entry} for entry in entries]
            )

    def _audit_pairs(
        self,
        operation: AuditOperation,
        old_rows: Mapping[tuple[Any, ...], _Row],
        new_rows: Iterable[_Row],
        fallback_ids: Sequence[Any] | None = None,
    ) -> list[tuple[AuditOperation, _Row | None, _Row | None]]:
        """Match rows after a change to the rows before it (by key; by position in
        ``fallback_ids`` when the change moved a row to another key)."""
        pairs: list[tuple[AuditOperation, _Row | None, _Row | None]] = []
        names = self.primary_key
        for index, new in enumerate(new_rows):
            old = old_rows.get(tuple([new[name] for name in names]))
            if old is None and fallback_ids is not None:
                old = old_rows.get(self._audit_key(fallback_ids[index]))
            pairs.append((operation, old, new))
        return pairs
