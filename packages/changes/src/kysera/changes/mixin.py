"""The repository methods the change feed plugin overrides.

Every write path runs inside one transaction (a transaction of its own on an engine, a
SAVEPOINT inside the caller's) and, in it: reads the keys a bulk change will touch in one
``SELECT ... FOR UPDATE`` where the write itself does not return them, makes the change
through the next class in line (``super()``), takes ids (`take_ids`: one statement, two on
MySQL/MariaDB) and inserts every change row in one statement. The number of statements never
grows with the number of rows.

On PostgreSQL the ids, the change rows and the notification are one statement
(`kysera.changes._postgres.record_statement`), and a ``create`` on a table with an integer or
UUID key is one statement with its change row, run without a transaction of its own
(`SingleStatementCreate`).

A context variable marks code running inside a recorded operation, so that a write method
calling another one (soft delete's ``delete`` calling ``soft_delete``) is recorded once, by
the outermost call. A second one collects the columns the write sets (from the
`prepare_insert` / `prepare_update` hooks, after every plugin inside this one).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import uuid
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
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Insert, and_, insert, select, tuple_
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.changes import _postgres
from kysera.changes._ids import take_ids
from kysera.core import (
    DeadlockError,
    LockTimeoutError,
    SerializationError,
    classify_database_errors,
)
from kysera.repository import Repository, compile_where

if TYPE_CHECKING:
    from kysera.changes.plugin import ChangeFeedPlugin

__all__ = ["ChangeFeedMixin", "SoftDeleteChangeFeedMixin"]

_RECORDING: ContextVar[bool] = ContextVar("kysera_changes_recording", default=False)
_SET_COLUMNS: ContextVar[set[str] | None] = ContextVar("kysera_changes_columns", default=None)

# The per-call option through which `create` asks for the one-statement insert on
# PostgreSQL: a list, [SingleStatementCreate], to which `prepare_insert` (which sees it in
# `call_options`) appends the row's column names, and which `intercept` then turns into the
# statement.
_CHANGE_INSERT = "kysera_change_insert"

# Per composed repository class: whether this plugin's `prepare_insert` and `intercept` run
# outermost (so the row and the statement it sees are the ones sent).
_OUTERMOST: dict[type, bool] = {}


class _NotWrappable(Exception):
    """Raised (before anything is sent) when a plugin inside this one turned the create's
    INSERT into something the one-statement form cannot wrap."""


_Method = TypeVar("_Method", bound=Callable[..., Awaitable[Any]])
_Key = tuple[Any, ...]

# As often as the repository runs its own writes when the database aborts them as a
# deadlock victim or for a serialization failure (nothing was committed).
_WRITE_ATTEMPTS = 3


def _retried(method: _Method) -> _Method:
    """Run a recorded write on an engine again when the database aborted it as a deadlock
    victim or for a serialization failure; in the caller's transaction the error is the
    caller's. One-shot iterators among the arguments are read into lists first."""

    @functools.wraps(method)
    async def call(self: ChangeFeedBase, *args: Any, **kwargs: Any) -> Any:
        if _RECORDING.get() or not isinstance(self.executor, AsyncEngine):
            return await method(self, *args, **kwargs)
        args = tuple(list(a) if isinstance(a, Iterator) else a for a in args)
        kwargs = {k: list(v) if isinstance(v, Iterator) else v for k, v in kwargs.items()}
        attempt = 1
        while True:
            try:
                return await method(self, *args, **kwargs)
            except (DeadlockError, SerializationError):
                if attempt >= _WRITE_ATTEMPTS:
                    raise
                attempt += 1

    return cast(_Method, call)


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, Decimal)):
        return str(value)
    raise TypeError(f"cannot encode a key value of type {type(value).__name__}")


def encode_key(key: Sequence[Any]) -> str:
    """The stored form of a primary key: a compact JSON list."""
    if len(key) == 1 and type(key[0]) is int:  # the common key, without the encoder
        return f"[{key[0]}]"
    return json.dumps(list(key), default=_json_default, separators=(",", ":"))


def _begin_immediate(sync: Connection) -> None:
    """``BEGIN IMMEDIATE`` on a SQLite connection: a read-then-write transaction opened
    with a deferred BEGIN fails with "database is locked" when two run at once."""
    pooled = sync.connection
    if not getattr(pooled.driver_connection, "in_transaction", False):
        cursor = pooled.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute("BEGIN IMMEDIATE")
        finally:
            cursor.close()


# How often ``BEGIN IMMEDIATE`` is tried when SQLite's busy timeout runs out: nothing has
# been written yet, and under many concurrent writers one waiter can be passed over by the
# busy handler's back-off for longer than the timeout.
_WRITE_LOCK_ATTEMPTS = 5


async def _take_write_lock(connection: AsyncConnection) -> None:
    attempt = 1
    while True:
        try:
            with classify_database_errors():
                await connection.run_sync(_begin_immediate)
            return
        except LockTimeoutError:
            if attempt >= _WRITE_LOCK_ATTEMPTS:
                raise
            attempt += 1


def _with_deleted(options: Mapping[str, Any]) -> dict[str, Any]:
    return {**options, "include_deleted": True}


class ChangeFeedBase(Repository[Any]):
    """The plumbing `ChangeFeedMixin` builds on (no public methods of its own)."""

    change_feed: ClassVar[ChangeFeedPlugin]

    @asynccontextmanager
    async def _recording(self) -> AsyncIterator[tuple[Any, AsyncConnection]]:
        """A transaction for the change and its change rows; nested recording off."""
        columns_token = _SET_COLUMNS.set(set())
        try:
            executor = self.executor
            if isinstance(executor, AsyncEngine) and executor.dialect.name == "sqlite":
                async with classify_database_errors(), executor.connect() as connection:
                    await _take_write_lock(connection)
                    async with connection.begin():
                        token = _RECORDING.set(True)
                        try:
                            yield self.with_executor(connection), connection
                        finally:
                            _RECORDING.reset(token)
                return
            # Every error leaves the block, so the writes inside need no SAVEPOINTs.
            async with self.atomic(savepoints=False) as bound:
                bound_connection = bound.executor
                assert isinstance(bound_connection, AsyncConnection)
                token = _RECORDING.set(True)
                try:
                    yield bound, bound_connection
                finally:
                    _RECORDING.reset(token)
        finally:
            _SET_COLUMNS.reset(columns_token)

    def prepare_insert(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`Repository.prepare_insert`; notes the columns the insert sets (for a
        one-statement create, in the request, with the change's time as a parameter)."""
        rows = super().prepare_insert(rows)
        request = self.call_options.get(_CHANGE_INSERT)
        if request is not None and len(request) == 1 and len(rows) == 1:
            request.append(tuple(rows[0]))
            return [{**rows[0], _postgres.CHANGED_AT: dt.datetime.now(dt.UTC)}]
        columns = _SET_COLUMNS.get()
        if columns is not None:
            for row in rows:
                columns.update(row)
        return rows

    def intercept(self, operation: Any, statement: Any, options: Mapping[str, Any]) -> Any:
        """`Repository.intercept`, then, for a one-statement create, turn the final
        ``INSERT ... RETURNING`` into the statement that also records the change."""
        statement = super().intercept(operation, statement, options)
        request = options.get(_CHANGE_INSERT) if options else None
        if request is not None and operation == "insert":
            if len(request) != 2 or not isinstance(statement, Insert):
                raise _NotWrappable
            single, columns = request
            wrapped = single.wrap(statement, columns)
            if wrapped is None:
                raise _NotWrappable
            return wrapped
        return statement

    def _records_in_one_statement(self) -> bool:
        """Whether a create can be one statement: PostgreSQL, and this class's
        `prepare_insert` and `intercept` run outermost, so no plugin changes the row or
        the statement after they have seen it."""
        if self.executor.dialect.name != "postgresql":
            return False
        cls = type(self)
        found = _OUTERMOST.get(cls)
        if found is None:
            found = _OUTERMOST[cls] = all(
                next(c for c in cls.__mro__ if name in c.__dict__) is ChangeFeedBase
                for name in ("prepare_insert", "intercept")
            )
        return found

    def prepare_update(self, values: dict[str, Any]) -> dict[str, Any]:
        """`Repository.prepare_update`; notes the columns the update sets."""
        values = super().prepare_update(values)
        columns = _SET_COLUMNS.get()
        if columns is not None:
            columns.update(values)
        return values

    def _change_key(self, entity: Any) -> _Key:
        names = self.primary_key
        if type(entity) is dict or isinstance(entity, Mapping):
            return tuple(entity[name] for name in names)
        try:
            return tuple(getattr(entity, name) for name in names)
        except AttributeError:
            if not isinstance(entity, BaseModel):
                raise
        dumped = entity.model_dump()  # a model whose fields are not named after the columns
        return tuple(dumped[name] for name in names)

    async def _locked_keys(
        self,
        connection: AsyncConnection,
        condition: ColumnElement[bool] | None,
        options: Mapping[str, Any],
    ) -> list[_Key]:
        """The keys of the rows matching ``condition`` (with the plugins' filters for
        ``options``), locked until the transaction ends; one statement."""
        columns = [self.table.c[name] for name in self.primary_key]
        statement = select(*columns)
        if condition is not None:
            statement = statement.where(condition)
        statement = self.intercept("select", statement.with_for_update(), options)
        return [tuple(row) for row in await connection.execute(statement)]

    async def _record(
        self, connection: AsyncConnection, changes: Sequence[tuple[str, _Key]]
    ) -> None:
        """Insert one change row per ``(operation, key)``, with ids in commit order."""
        if not changes:
            return
        plugin = self.change_feed
        columns = sorted(_SET_COLUMNS.get() or ())
        now = dt.datetime.now(dt.UTC)
        name = self.table.name
        if connection.dialect.name == "postgresql":
            # Ids, rows and the wake-up in one statement; NOTIFY is delivered at COMMIT only
            # (never for a rollback), its payload the last id (far below 8,000 bytes).
            await connection.execute(
                plugin.record_statement,
                {
                    _postgres.CHANGE_COUNT: len(changes),
                    _postgres.CHANGE_KEYS: [encode_key(key) for _, key in changes],
                    _postgres.CHANGE_OPERATIONS: [operation for operation, _ in changes],
                    _postgres.CHANGE_COLUMNS: columns,
                    _postgres.CHANGED_AT: now,
                    _postgres.TABLE_NAME: name,
                    _postgres.CHANNEL: plugin.table,
                },
            )
            return
        first = await take_ids(connection, plugin.counter_table, len(changes))
        await connection.execute(
            insert(plugin.changes_table),
            [
                {
                    "id": first + index,
                    "table_name": name,
                    "entity_key": encode_key(key),
                    "operation": operation,
                    "changed_columns": columns if operation != "DELETE" else [],
                    "changed_at": now,
                }
                for index, (operation, key) in enumerate(changes)
            ],
        )


class ChangeFeedMixin(ChangeFeedBase):
    """Records every write of the repository as change rows (see `ChangeFeedPlugin`)."""

    # --- inserts ----------------------------------------------------------------------------

    @_retried
    async def create(self, data: Any, **options: Any) -> Any:
        """Insert one row (see `Repository.create`) and record an ``INSERT``.

        On PostgreSQL, for a table with an integer or UUID key, the insert and its change
        row are one statement (see `intercept`).
        """
        if _RECORDING.get():
            return await super().create(data, **options)
        if self._records_in_one_statement():
            single = self.change_feed.single_statement_create(self.table)
            if single.possible:
                token = _RECORDING.set(True)
                try:
                    request: dict[str, Any] = {_CHANGE_INSERT: [single]}
                    return await super().create(data, **options, **request)
                except _NotWrappable:
                    pass  # nothing was sent: record it the general way
                finally:
                    _RECORDING.reset(token)
        async with self._recording() as (bound, connection):
            entity = await super(ChangeFeedMixin, bound).create(data, **options)
            await self._record(connection, [("INSERT", self._change_key(entity))])
        return entity

    @_retried
    async def create_many(
        self, rows: Iterable[Any], *, returning: bool = True, **options: Any
    ) -> Any:
        """Insert rows (see `Repository.create_many`) and record one ``INSERT`` per row.

        The inserted rows are always read back (their keys are recorded), so
        ``returning=False`` only changes what is returned: the number of rows.
        """
        if _RECORDING.get():
            return await super().create_many(rows, returning=returning, **options)  # type: ignore[call-overload]
        async with self._recording() as (bound, connection):
            entities = await super(ChangeFeedMixin, bound).create_many(rows, **options)
            await self._record(
                connection, [("INSERT", self._change_key(entity)) for entity in entities]
            )
        return entities if returning else len(entities)

    @_retried
    async def upsert_many(
        self,
        rows: Iterable[Any],
        conflict: Sequence[str] | None = None,
        update: Sequence[str] | None = None,
        **options: Any,
    ) -> list[Any]:
        """Upsert rows (see `Repository.upsert_many`): record ``INSERT`` for keys that had
        no row when the call read them, ``UPDATE`` for the others."""
        if _RECORDING.get():
            return await super().upsert_many(rows, conflict, update, **options)
        rows = list(rows)
        names = tuple([conflict] if isinstance(conflict, str) else conflict or self.primary_key)
        keys = []
        for row in rows:
            source = row if isinstance(row, Mapping) else getattr(row, "__dict__", {})
            if all(name in source for name in names):
                keys.append(tuple(source[name] for name in names))
        async with self._recording() as (bound, connection):
            existing: set[_Key] = set()
            if keys and all(name in self.table.c for name in names):
                columns = [self.table.c[name] for name in names]
                condition = (
                    tuple_(*columns).in_(keys)
                    if len(columns) > 1
                    else columns[0].in_([key[0] for key in keys])
                )
                statement = self.intercept(
                    "select", select(*columns).where(condition), _with_deleted(options)
                )
                existing = {tuple(row) for row in await connection.execute(statement)}
            entities = await super(ChangeFeedMixin, bound).upsert_many(
                rows, conflict, update, **options
            )
            changes = []
            for entity in entities:
                source = (
                    entity
                    if isinstance(entity, Mapping)
                    else (entity.model_dump() if isinstance(entity, BaseModel) else vars(entity))
                )
                conflict_key = tuple(source.get(name) for name in names)
                operation = "UPDATE" if conflict_key in existing else "INSERT"
                changes.append((operation, self._change_key(entity)))
            await self._record(connection, changes)
        return entities

    # --- updates ----------------------------------------------------------------------------

    @_retried
    async def update(self, id: Any, data: Any, **options: Any) -> Any:
        """Update one row (see `Repository.update`) and record an ``UPDATE``."""
        if _RECORDING.get():
            return await super().update(id, data, **options)
        async with self._recording() as (bound, connection):
            entity = await super(ChangeFeedMixin, bound).update(id, data, **options)
            await self._record(connection, [("UPDATE", self._change_key(entity))])
        return entity

    @_retried
    async def bulk_update(self, changes: Iterable[tuple[Any, Any]], **options: Any) -> list[Any]:
        """Apply per-row updates (see `Repository.bulk_update`); record one ``UPDATE`` per
        row (its columns: every column the call sets)."""
        if _RECORDING.get():
            return await super().bulk_update(changes, **options)
        async with self._recording() as (bound, connection):
            entities = await super(ChangeFeedMixin, bound).bulk_update(changes, **options)
            await self._record(
                connection, [("UPDATE", self._change_key(entity)) for entity in entities]
            )
        return entities

    @_retried
    async def update_many(self, where: Any, data: Any, **options: Any) -> int:
        """Update matching rows (see `Repository.update_many`); record one ``UPDATE`` per
        row, whose keys are read (and locked) with the call's own filters first."""
        if _RECORDING.get() or where is None:
            return await super().update_many(where, data, **options)
        condition = compile_where(self.table, where)
        async with self._recording() as (bound, connection):
            keys = await self._locked_keys(connection, condition, options)
            count = await super(ChangeFeedMixin, bound).update_many(where, data, **options)
            if count:
                await self._record(connection, [("UPDATE", key) for key in keys])
        return count

    @_retried
    async def increment(
        self, id: Any, deltas: Mapping[str, Any] | None = None, /, **keywords: Any
    ) -> Any:
        """Add to numeric columns of one row (see `Repository.increment`); record an
        ``UPDATE``."""
        if _RECORDING.get():
            return await super().increment(id, deltas, **keywords)
        async with self._recording() as (bound, connection):
            entity = await super(ChangeFeedMixin, bound).increment(id, deltas, **keywords)
            await self._record(connection, [("UPDATE", self._change_key(entity))])
        return entity

    @_retried
    async def increment_many(
        self, where: Any, deltas: Mapping[str, Any] | None = None, /, **keywords: Any
    ) -> int:
        """Add to numeric columns of matching rows (see `Repository.increment_many`);
        record one ``UPDATE`` per row (keys read and locked with the call's filters)."""
        if _RECORDING.get() or where is None:
            return await super().increment_many(where, deltas, **keywords)
        _, options = self.increment_arguments(deltas, keywords)  # bad deltas: before any SQL
        condition = compile_where(self.table, where)
        async with self._recording() as (bound, connection):
            keys = await self._locked_keys(connection, condition, options)
            count = await super(ChangeFeedMixin, bound).increment_many(where, deltas, **keywords)
            if count:
                await self._record(connection, [("UPDATE", key) for key in keys])
        return count

    # --- deletes ----------------------------------------------------------------------------

    @_retried
    async def delete(self, id: Any, **options: Any) -> bool:
        """Delete one row (see `Repository.delete`); record a ``DELETE`` if it existed."""
        if _RECORDING.get():
            return await super().delete(id, **options)
        async with self._recording() as (bound, connection):
            deleted = await super(ChangeFeedMixin, bound).delete(id, **options)
            if deleted:
                await self._record(connection, [(self._delete_operation, self.key_values(id))])
        return deleted

    @_retried
    async def delete_many(self, ids: Iterable[Any], **options: Any) -> int:
        """Delete rows (see `Repository.delete_many`); record a ``DELETE`` for each row
        that existed (keys read and locked first)."""
        if _RECORDING.get():
            return await super().delete_many(ids, **options)
        ids = list(ids)
        if not ids:
            return await super().delete_many(ids, **options)
        async with self._recording() as (bound, connection):
            keys = await self._locked_keys(
                connection, self.keys_condition(ids), self._delete_read_options(options)
            )
            count = await super(ChangeFeedMixin, bound).delete_many(ids, **options)
            if count:
                await self._record(connection, [(self._delete_operation, key) for key in keys])
        return count

    _delete_operation = "DELETE"

    def _delete_read_options(self, options: Mapping[str, Any]) -> Mapping[str, Any]:
        return _with_deleted(options)


class SoftDeleteChangeFeedMixin(ChangeFeedMixin):
    """`ChangeFeedMixin` for tables with the soft delete plugin: soft deletes and restores
    are recorded as ``SOFT_DELETE`` and ``RESTORE``, hard deletes as ``DELETE``."""

    soft_delete_column: ClassVar[str]
    soft_delete_replaces_delete: ClassVar[bool]

    @property
    def _delete_operation(self) -> str:  # type: ignore[override]
        return "SOFT_DELETE" if self.soft_delete_replaces_delete else "DELETE"

    def _delete_read_options(self, options: Mapping[str, Any]) -> Mapping[str, Any]:
        # A soft delete skips rows already deleted: read the live ones only.
        return options if self.soft_delete_replaces_delete else _with_deleted(options)

    async def _one(self, method: str, operation: str, id: Any, options: Mapping[str, Any]) -> Any:
        if _RECORDING.get():
            return await getattr(super(), method)(id, **options)
        async with self._recording() as (bound, connection):
            result = await getattr(super(SoftDeleteChangeFeedMixin, bound), method)(id, **options)
            if result is not False:
                await self._record(connection, [(operation, self.key_values(id))])
        return result

    async def _many(
        self,
        method: str,
        operation: str,
        ids: Iterable[Any],
        options: Mapping[str, Any],
        condition: Callable[[list[Any]], ColumnElement[bool]],
        read_options: Mapping[str, Any],
    ) -> int:
        ids = list(ids)
        if _RECORDING.get() or not ids:
            return int(await getattr(super(), method)(ids, **options))
        async with self._recording() as (bound, connection):
            keys = await self._locked_keys(connection, condition(ids), read_options)
            count = int(
                await getattr(super(SoftDeleteChangeFeedMixin, bound), method)(ids, **options)
            )
            if count:
                await self._record(connection, [(operation, key) for key in keys])
        return count

    @_retried
    async def soft_delete(self, id: Any, **options: Any) -> Any:
        """Soft-delete one row (see the soft delete plugin); record ``SOFT_DELETE``."""
        return await self._one("soft_delete", "SOFT_DELETE", id, options)

    @_retried
    async def restore(self, id: Any, **options: Any) -> Any:
        """Restore one row (see the soft delete plugin); record ``RESTORE``."""
        return await self._one("restore", "RESTORE", id, options)

    @_retried
    async def hard_delete(self, id: Any, **options: Any) -> Any:
        """Remove one row for good (see the soft delete plugin); record ``DELETE``."""
        return await self._one("hard_delete", "DELETE", id, options)

    @_retried
    async def soft_delete_many(self, ids: Iterable[Any], **options: Any) -> int:
        """Soft-delete rows; record ``SOFT_DELETE`` for each live row among them."""
        return await self._many(
            "soft_delete_many", "SOFT_DELETE", ids, options, self.keys_condition, options
        )

    @_retried
    async def restore_many(self, ids: Iterable[Any], **options: Any) -> int:
        """Restore rows; record ``RESTORE`` for each deleted row among them."""
        column = self.table.c[self.soft_delete_column]

        def deleted(keys: list[Any]) -> ColumnElement[bool]:
            return and_(self.keys_condition(keys), column.is_not(None))

        return await self._many(
            "restore_many", "RESTORE", ids, options, deleted, _with_deleted(options)
        )

    @_retried
    async def hard_delete_many(self, ids: Iterable[Any], **options: Any) -> int:
        """Remove rows for good; record ``DELETE`` for each row among them."""
        return await self._many(
            "hard_delete_many",
            "DELETE",
            ids,
            options,
            self.keys_condition,
            _with_deleted(options),
        )
