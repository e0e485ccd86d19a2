"""The repository methods the audit plugin adds and overrides.

Every write path runs inside ``self.atomic()`` (a transaction of its own on an engine, a
SAVEPOINT inside the caller's transaction) and, in that transaction: reads the old rows in
one ``SELECT ... FOR UPDATE`` (without the soft-delete filter), makes the change through the
next class in line (``super()``), and inserts every log row in one statement. The number of
statements never grows with the number of rows.

A context variable marks the code running inside an audited operation, so that a write
method that calls another one (soft delete's ``delete`` calling ``soft_delete``, say) is
logged once, by the outermost call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel
from sqlalchemy import (
    ColumnElement,
    Insert,
    Select,
    Table,
    and_,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.audit._encoding import RowCodec, entity_id_of
from kysera.audit._postgres import (
    CHANGED_AT,
    CHANGED_BY,
    KEYS_PARAMETER,
    METADATA,
    RECORDSET_PARAMETER,
)
from kysera.audit.context import current_audit_actor
from kysera.audit.entry import AuditLogEntry, AuditOperation
from kysera.audit.errors import AuditRestoreError
from kysera.audit.table import AUDIT_OPERATIONS
from kysera.core import InvalidQueryError, NotFoundError, classify_database_errors
from kysera.repository import Repository, compile_where

if TYPE_CHECKING:
    from kysera.audit.plugin import AuditPlugin

__all__ = ["AuditMixin", "SoftDeleteAuditMixin"]

# The per-call option through which `create` asks `intercept` for the one-statement insert.
_LOG_INSERT = "kysera_audit_log_insert"

# The one-statement create in progress: [SingleStatementCreate, the row's column names].
_CREATE_REQUEST: ContextVar[list[Any] | None] = ContextVar("kysera_audit_create", default=None)

# Per composed repository class: whether AuditMixin.prepare_insert runs outermost.
_PREPARES_LAST: dict[type, bool] = {}

# True while an audited operation runs: nested write calls are not logged a second time.
_AUDITING: ContextVar[bool] = ContextVar("kysera_audit_running", default=False)

_Row = dict[str, Any]


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


class AuditMixin(Repository[Any]):
    """Logs every write of the repository and adds methods to read and restore the log.

    `AuditPlugin` composes a configured subclass of this class into each audited
    repository; use `AuditedRepository` to type such a repository.
    """

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

    def _audit_key(self, id: Any) -> tuple[Any, ...]:
        names = self.primary_key
        if isinstance(id, Mapping):
            try:
                return tuple(id[name] for name in names)
            except KeyError:
                raise InvalidQueryError(
                    f"key {id!r} of {self.table.name!r} must name every key column {list(names)}"
                ) from None
        if isinstance(id, (tuple, list)):
            return tuple(id)
        return (id,)

    def _audit_key_of_row(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(row[name] for name in self.primary_key)

    def _audit_keys_condition(
        self, keys: Sequence[tuple[Any, ...]], names: Sequence[str] | None = None
    ) -> ColumnElement[bool]:
        columns = [self.table.c[name] for name in (names or self.primary_key)]
        if len(columns) == 1:
            return columns[0].in_([key[0] for key in keys])
        return tuple_(*columns).in_(keys)

    async def _audit_read(
        self,
        connection: AsyncConnection,
        condition: ColumnElement[bool] | Select[Any] | None,
        options: Mapping[str, Any],
        parameters: Mapping[str, Any] | None = None,
    ) -> dict[tuple[Any, ...], _Row]:
        """The rows matching ``condition`` (or selected by a prepared statement), locked, by
        primary key (one statement)."""
        if isinstance(condition, Select):
            statement = condition
        else:
            statement = select(self.table)
            if condition is not None:
                statement = statement.where(condition)
            statement = statement.with_for_update()
        result = await connection.execute(self.intercept("select", statement, options), parameters)
        keys = tuple(result.keys())
        rows: dict[tuple[Any, ...], _Row] = {}
        for values in result:
            row = dict(zip(keys, values, strict=True))
            rows[self._audit_key_of_row(row)] = row
        return rows

    async def _audit_read_keys(
        self, connection: AsyncConnection, ids: Iterable[Any], options: Mapping[str, Any]
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
            )
        return await self._audit_read(
            connection, self._audit_keys_condition(keys), _with_deleted(options)
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
            dt.datetime.now(dt.timezone.utc),
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

    # --- inserts ----------------------------------------------------------------------------

    async def create(self, data: Any, **options: Any) -> Any:
        """Insert one row (see `Repository.create`) and log an ``INSERT``.

        On PostgreSQL the insert and its log row are one statement (see `intercept`).
        """
        if _AUDITING.get():
            return await super().create(data, **options)
        if self.executor.dialect.name == "postgresql" and self._audit_prepares_last():
            single = self.audit_plugin.single_statement_create(self.table)
            if single.possible:
                # `prepare_insert` adds the row's column names to the request, and the
                # actor to the row; `intercept` then builds the statement.
                request: list[Any] = [single]
                token = _AUDITING.set(True)
                request_token = _CREATE_REQUEST.set(request)
                try:
                    return await super().create(data, **options, **{_LOG_INSERT: request})
                finally:
                    _CREATE_REQUEST.reset(request_token)
                    _AUDITING.reset(token)
        async with self._audited() as (bound, connection):
            entity = await super(AuditMixin, bound).create(data, **options)
            await self._audit_write(connection, [("INSERT", None, self._audit_row_of(entity))])
        return entity

    def _audit_prepares_last(self) -> bool:
        """Whether this mixin's `prepare_insert` is the outermost one, so that the row it
        sees is the row that will be inserted (no plugin outside it changes it)."""
        cls = type(self)
        found = _PREPARES_LAST.get(cls)
        if found is None:
            first = next(c for c in cls.__mro__ if "prepare_insert" in c.__dict__)
            found = _PREPARES_LAST[cls] = first is AuditMixin
        return found

    def prepare_insert(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`Repository.prepare_insert`; for a one-statement create, notes the row's columns
        and adds the log row's actor, time and metadata as parameters."""
        rows = super().prepare_insert(rows)
        request = _CREATE_REQUEST.get()
        if request is not None and len(request) == 1 and len(rows) == 1:
            request.append(tuple(rows[0]))
            changed_by, changed_at, metadata = self._audit_stamp()
            rows = [
                {
                    **rows[0],
                    CHANGED_BY: changed_by,
                    CHANGED_AT: changed_at,
                    METADATA: metadata,
                }
            ]
        return rows

    def intercept(self, operation: Any, statement: Any, options: Mapping[str, Any]) -> Any:
        """`Repository.intercept`, then, for an audited ``create`` on PostgreSQL, turn the
        final ``INSERT ... RETURNING`` into one statement that also writes the log row."""
        statement = super().intercept(operation, statement, options)
        request = options.get(_LOG_INSERT) if options else None
        if (
            request is not None
            and len(request) == 2
            and operation == "insert"
            and isinstance(statement, Insert)
        ):
            single, columns = request
            return single.wrap(statement, columns, self.audit_plugin.capture_new_values)
        return statement

    async def create_many(
        self, rows: Iterable[Any], *, returning: bool = True, **options: Any
    ) -> Any:
        """Insert rows (see `Repository.create_many`) and log one ``INSERT`` per row.

        The inserted rows are always read back (they are logged), so ``returning=False``
        only changes what is returned: the number of rows.
        """
        if _AUDITING.get():
            return await super().create_many(rows, returning=returning, **options)  # type: ignore[call-overload]
        async with self._audited() as (bound, connection):
            entities = await super(AuditMixin, bound).create_many(rows, **options)
            await self._audit_write(
                connection, [("INSERT", None, self._audit_row_of(item)) for item in entities]
            )
        return entities if returning else len(entities)

    async def upsert_many(
        self,
        rows: Iterable[Any],
        conflict: Sequence[str] | None = None,
        update: Sequence[str] | None = None,
        **options: Any,
    ) -> list[Any]:
        """Upsert rows (see `Repository.upsert_many`): log ``INSERT`` for new rows and
        ``UPDATE`` for existing rows that changed."""
        if _AUDITING.get():
            return await super().upsert_many(rows, conflict, update, **options)
        rows = list(rows)
        names = tuple([conflict] if isinstance(conflict, str) else conflict or self.primary_key)
        keys = []
        for row in rows:
            source = row if isinstance(row, Mapping) else getattr(row, "__dict__", {})
            if all(name in source for name in names):
                keys.append(tuple(source[name] for name in names))
        async with self._audited() as (bound, connection):
            old_rows: dict[tuple[Any, ...], _Row] = {}
            if keys and all(name in self.table.c for name in names):
                found = await self._audit_read(
                    connection, self._audit_keys_condition(keys, names), _with_deleted(options)
                )
                old_rows = {tuple(row[name] for name in names): row for row in found.values()}
            entities = await super(AuditMixin, bound).upsert_many(rows, conflict, update, **options)
            changes: list[tuple[AuditOperation, _Row | None, _Row | None]] = []
            for entity in entities:
                new = self._audit_row_of(entity)
                old = old_rows.get(tuple(new.get(name) for name in names))
                changes.append(("INSERT", None, new) if old is None else ("UPDATE", old, new))
            await self._audit_write(connection, changes)
        return entities

    # --- updates ----------------------------------------------------------------------------

    async def update(self, id: Any, data: Any, **options: Any) -> Any:
        """Update one row (see `Repository.update`) and log an ``UPDATE`` if it changed."""
        if _AUDITING.get():
            return await super().update(id, data, **options)
        async with self._audited() as (bound, connection):
            old_rows = await self._audit_read_keys(connection, [id], options)
            entity = await super(AuditMixin, bound).update(id, data, **options)
            new = self._audit_row_of(entity)
            old = old_rows.get(self._audit_key_of_row(new))
            if old is None and len(old_rows) == 1:
                old = next(iter(old_rows.values()))
            await self._audit_write(connection, [("UPDATE", old, new)])
        return entity

    async def update_many(self, where: Any, data: Any, **options: Any) -> int:
        """Update matching rows (see `Repository.update_many`); log one ``UPDATE`` per row
        that changed.

        The old rows are read with the call's own filters, so that they are exactly the
        rows the ``UPDATE`` changes.
        """
        if _AUDITING.get() or where is None:
            return await super().update_many(where, data, **options)
        condition = compile_where(self.table, where)
        async with self._audited() as (bound, connection):
            old_rows = await self._audit_read(connection, condition, options)
            count = await super(AuditMixin, bound).update_many(where, data, **options)
            if old_rows and count:
                new_rows = await self._audit_read(
                    connection, self._audit_keys_condition(list(old_rows)), _with_deleted(options)
                )
                await self._audit_write(
                    connection, self._audit_pairs("UPDATE", old_rows, new_rows.values())
                )
        return count

    async def bulk_update(self, changes: Iterable[tuple[Any, Any]], **options: Any) -> list[Any]:
        """Apply per-row updates (see `Repository.bulk_update`); log one ``UPDATE`` per row
        that changed."""
        if _AUDITING.get():
            return await super().bulk_update(changes, **options)
        changes = list(changes)
        ids = [
            change[0]
            for change in changes
            if isinstance(change, (tuple, list)) and len(change) == 2
        ]
        async with self._audited() as (bound, connection):
            old_rows = await self._audit_read_keys(connection, ids, options)
            entities = await super(AuditMixin, bound).bulk_update(changes, **options)
            await self._audit_write(
                connection,
                self._audit_pairs(
                    "UPDATE",
                    old_rows,
                    [self._audit_row_of(entity) for entity in entities],
                    ids,
                ),
            )
        return entities

    # --- deletes ----------------------------------------------------------------------------

    async def delete(self, id: Any, **options: Any) -> bool:
        """Delete one row (see `Repository.delete`) and log a ``DELETE`` if it existed."""
        if _AUDITING.get():
            return await super().delete(id, **options)
        async with self._audited() as (bound, connection):
            old_rows = await self._audit_read_keys(connection, [id], options)
            deleted = await super(AuditMixin, bound).delete(id, **options)
            if deleted:
                await self._audit_write(
                    connection, [("DELETE", old, None) for old in old_rows.values()]
                )
        return deleted

    async def delete_many(self, ids: Iterable[Any], **options: Any) -> int:
        """Delete rows (see `Repository.delete_many`); log a ``DELETE`` for each row that
        existed."""
        if _AUDITING.get():
            return await super().delete_many(ids, **options)
        ids = list(ids)
        async with self._audited() as (bound, connection):
            old_rows = await self._audit_read_keys(connection, ids, options)
            count = await super(AuditMixin, bound).delete_many(ids, **options)
            if count:
                await self._audit_write(
                    connection, [("DELETE", old, None) for old in old_rows.values()]
                )
        return count

    # --- reading the log --------------------------------------------------------------------

    async def _audit_query(
        self,
        condition: ColumnElement[bool],
        limit: int | None = None,
        offset: int = 0,
    ) -> list[AuditLogEntry]:
        _check_window("limit", limit)
        _check_window("offset", offset)
        log = self.audit_log
        statement = (
            select(log)
            .where(log.c.table_name == self.table.name, condition)
            .order_by(log.c.changed_at.desc(), log.c.id.desc())
        )
        if limit is not None:
            statement = statement.limit(limit)
        if offset:
            statement = statement.offset(offset)
        executor = self.executor
        with classify_database_errors():
            if isinstance(executor, AsyncConnection):
                result = await executor.execute(statement)
            else:
                async with executor.connect() as connection:
                    result = await connection.execute(statement)
            rows = [row._asdict() for row in result]
        decode = self._audit_codec.decode
        return [
            AuditLogEntry(
                id=row["id"],
                table_name=row["table_name"],
                entity_id=row["entity_id"],
                operation=row["operation"],
                old_values=decode(row["old_values"]),
                new_values=decode(row["new_values"]),
                changed_fields=list(row["changed_fields"] or ()),
                changed_by=row["changed_by"],
                changed_at=row["changed_at"],
                metadata=row["metadata"],
            )
            for row in rows
        ]

    async def get_audit_history(
        self, id: Any, limit: int | None = None, offset: int = 0
    ) -> list[AuditLogEntry]:
        """The log entries of one row, newest first (ties by id, newest first).

        Args:
            id: The row's primary key (as for `get`).
            limit: At most this many entries.
            offset: Skip this many entries.
        """
        entity_id = entity_id_of(self._audit_key(id))
        return await self._audit_query(self.audit_log.c.entity_id == entity_id, limit, offset)

    async def get_audit_log(self, audit_id: int) -> AuditLogEntry | None:
        """The log entry with this id (for this repository's table), or ``None``."""
        found = await self._audit_query(self.audit_log.c.id == audit_id)
        return found[0] if found else None

    async def get_table_audit_logs(
        self,
        operation: AuditOperation | None = None,
        user_id: Any = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[AuditLogEntry]:
        """The log entries of this repository's table, newest first, optionally filtered.

        Args:
            operation: Only entries of this operation (``"INSERT"``, ``"UPDATE"``, ...).
            user_id: Only changes by this actor.
            since: Only changes made at or after this time (naive datetimes are UTC).
            until: Only changes made at or before this time (naive datetimes are UTC).
            limit: At most this many entries.
            offset: Skip this many entries.

        Raises:
            InvalidQueryError: Unknown operation, or a bad limit/offset.
        """
        log = self.audit_log
        conditions: list[ColumnElement[bool]] = []
        if operation is not None:
            if operation not in AUDIT_OPERATIONS:
                raise InvalidQueryError(
                    f"unknown audit operation {operation!r}; use one of {list(AUDIT_OPERATIONS)}"
                )
            conditions.append(log.c.operation == operation)
        if user_id is not None:
            conditions.append(log.c.changed_by == str(user_id))
        if since is not None:
            conditions.append(log.c.changed_at >= since)
        if until is not None:
            conditions.append(log.c.changed_at <= until)
        return await self._audit_query(and_(True, *conditions), limit, offset)

    async def get_user_changes(
        self, user_id: Any, limit: int | None = None, offset: int = 0
    ) -> list[AuditLogEntry]:
        """The changes ``user_id`` made to this repository's table, newest first."""
        return await self.get_table_audit_logs(user_id=user_id, limit=limit, offset=offset)

    # --- restoring --------------------------------------------------------------------------

    async def restore_from_audit(self, audit_id: int, **options: Any) -> Any:
        """Put a row back as it was before a logged change; return the row.

        An ``UPDATE`` or ``SOFT_DELETE`` entry writes its old values back (and logs an
        ``UPDATE`` or a ``RESTORE``); a ``DELETE`` entry inserts the deleted row again (and
        logs an ``INSERT``).

        Raises:
            NotFoundError: No entry with this id for this table.
            AuditRestoreError: An ``INSERT`` or ``RESTORE`` entry, or an entry without old
                values (``capture_old_values=False``).
        """
        entry = await self.get_audit_log(audit_id)
        if entry is None:
            raise NotFoundError(entity=self.audit_log.name, filters={"id": audit_id})
        if entry.operation not in ("UPDATE", "DELETE", "SOFT_DELETE"):
            raise AuditRestoreError(
                f"audit entry {audit_id} is an {entry.operation}: only UPDATE, DELETE and "
                "SOFT_DELETE entries can be restored (delete the row to undo an INSERT)",
                audit_id=audit_id,
            )
        old = entry.old_values
        if not old:
            raise AuditRestoreError(
                f"audit entry {audit_id} has no old values to restore "
                "(the plugin was configured with capture_old_values=False)",
                audit_id=audit_id,
            )
        old = self._audit_codec.columns_of(old)
        key = self._audit_key_of_row(old) if all(n in old for n in self.primary_key) else None
        if key is None:
            raise AuditRestoreError(
                f"audit entry {audit_id} lacks the primary key of the row", audit_id=audit_id
            )
        table = self.table
        async with self._audited() as (_bound, connection):
            if entry.operation == "DELETE":
                statement = self.intercept("insert", insert(table), options)
                await connection.execute(statement, [old])
                await self._audit_write(connection, [("INSERT", None, old)])
            else:
                current = await self._audit_read_keys(connection, [key], options)
                before = current.get(key)
                if before is None:
                    raise NotFoundError(entity=table.name, filters=key)
                values = {name: value for name, value in old.items() if name not in key}
                statement = self.intercept(
                    "update",
                    update(table).where(self._audit_keys_condition([key])).values(values),
                    _with_deleted(options),
                )
                await connection.execute(statement)
                after = await self._audit_read_keys(connection, [key], options)
                operation: AuditOperation = (
                    "RESTORE" if entry.operation == "SOFT_DELETE" else "UPDATE"
                )
                await self._audit_write(connection, [(operation, before, after[key])])
        return await self.get(key, **_with_deleted(options))


class SoftDeleteAuditMixin(AuditMixin):
    """`AuditMixin` for repositories that soft delete too: soft delete and restore are
    logged as ``SOFT_DELETE`` / ``RESTORE``, hard deletes as ``DELETE``."""

    def _soft_delete_method(self, name: str) -> Any:
        """The soft delete plugin's method ``name`` (next in line after this mixin)."""
        return getattr(super(), name)

    async def _audit_one(
        self, method: str, operation: AuditOperation, id: Any, options: dict[str, Any]
    ) -> Any:
        async with self._audited() as (bound, connection):
            old_rows = await self._audit_read_keys(connection, [id], options)
            result = await getattr(super(SoftDeleteAuditMixin, bound), method)(id, **options)
            new_rows = await self._audit_read_keys(connection, list(old_rows), options)
            changes = self._audit_pairs(operation, old_rows, new_rows.values())
            if operation == "DELETE":
                changes = [
                    ("DELETE", old, None) for key, old in old_rows.items() if key not in new_rows
                ]
            await self._audit_write(connection, changes)
        return result

    async def _audit_many(
        self, method: str, operation: AuditOperation, ids: Iterable[Any], options: dict[str, Any]
    ) -> Any:
        ids = list(ids)
        async with self._audited() as (bound, connection):
            old_rows = await self._audit_read_keys(connection, ids, options)
            result = await getattr(super(SoftDeleteAuditMixin, bound), method)(ids, **options)
            new_rows = (
                await self._audit_read_keys(connection, list(old_rows), options) if old_rows else {}
            )
            if operation == "DELETE":
                changes: list[tuple[AuditOperation, _Row | None, _Row | None]] = [
                    ("DELETE", old, None) for key, old in old_rows.items() if key not in new_rows
                ]
            else:
                changes = [
                    change
                    for change in self._audit_pairs(operation, old_rows, new_rows.values())
                    if change[1] != change[2]
                ]
            await self._audit_write(connection, changes)
        return result

    async def soft_delete(self, id: Any, **options: Any) -> Any:
        """Soft delete one row and log a ``SOFT_DELETE``."""
        if _AUDITING.get():
            return await self._soft_delete_method("soft_delete")(id, **options)
        return await self._audit_one("soft_delete", "SOFT_DELETE", id, options)

    async def soft_delete_many(self, ids: Iterable[Any], **options: Any) -> Any:
        """Soft delete rows and log a ``SOFT_DELETE`` for each row that changed."""
        if _AUDITING.get():
            return await self._soft_delete_method("soft_delete_many")(ids, **options)
        return await self._audit_many("soft_delete_many", "SOFT_DELETE", ids, options)

    async def restore(self, id: Any, **options: Any) -> Any:
        """Restore one soft-deleted row and log a ``RESTORE``."""
        if _AUDITING.get():
            return await self._soft_delete_method("restore")(id, **options)
        return await self._audit_one("restore", "RESTORE", id, options)

    async def restore_many(self, ids: Iterable[Any], **options: Any) -> Any:
        """Restore soft-deleted rows and log a ``RESTORE`` for each row that changed."""
        if _AUDITING.get():
            return await self._soft_delete_method("restore_many")(ids, **options)
        return await self._audit_many("restore_many", "RESTORE", ids, options)

    async def hard_delete(self, id: Any, **options: Any) -> Any:
        """Delete one row for good and log a ``DELETE``."""
        if _AUDITING.get():
            return await self._soft_delete_method("hard_delete")(id, **options)
        return await self._audit_one("hard_delete", "DELETE", id, options)

    async def hard_delete_many(self, ids: Iterable[Any], **options: Any) -> Any:
        """Delete rows for good and log a ``DELETE`` for each row that existed."""
        if _AUDITING.get():
            return await self._soft_delete_method("hard_delete_many")(ids, **options)
        return await self._audit_many("hard_delete_many", "DELETE", ids, options)

    async def delete(self, id: Any, **options: Any) -> bool:
        """`Repository.delete`; when soft delete replaces delete, logged as ``SOFT_DELETE``."""
        if not _AUDITING.get() and getattr(self, "soft_delete_replaces_delete", False):
            try:
                await self.soft_delete(id, **options)
            except NotFoundError:
                return False
            return True
        return await super().delete(id, **options)

    async def delete_many(self, ids: Iterable[Any], **options: Any) -> int:
        """`Repository.delete_many`; when soft delete replaces delete, logged as
        ``SOFT_DELETE``."""
        if not _AUDITING.get() and getattr(self, "soft_delete_replaces_delete", False):
            return int(await self.soft_delete_many(ids, **options))
        return await super().delete_many(ids, **options)
