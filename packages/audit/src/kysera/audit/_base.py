"""Plumbing shared by the audit mixins: the transaction, old-row reads, log-row writes."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, Table, insert, select, tuple_
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.audit._encoding import RowCodec, entity_id_of
from kysera.audit._postgres import KEYS_PARAMETER, RECORDSET_PARAMETER
from kysera.audit.context import current_audit_actor
from kysera.audit.entry import AuditOperation
from kysera.core import InvalidQueryError, classify_database_errors
from kysera.repository import Repository, as_read_back

if TYPE_CHECKING:
    from kysera.audit.plugin import AuditPlugin

__all__ = ["AuditBase"]

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
            return columns[0].in_([key[0] for key in keys])
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
