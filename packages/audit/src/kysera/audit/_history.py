"""Reading and restoring the audit log: the query methods of audited repositories."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kysera.audit._base import AuditBase, _check_window, _with_deleted, retried_on_conflict
from kysera.audit._encoding import entity_id_of
from kysera.audit.entry import AuditLogEntry, AuditOperation
from kysera.audit.errors import AuditRestoreError
from kysera.audit.table import AUDIT_OPERATIONS
from kysera.core import InvalidQueryError, NotFoundError, classify_database_errors

__all__ = ["AuditHistory"]


class AuditHistory(AuditBase):
    """The methods that read the log of one table and restore rows from it."""

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

    @retried_on_conflict
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
