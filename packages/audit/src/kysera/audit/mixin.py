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

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Insert

from kysera.audit._base import _AUDITING, _Row, _with_deleted, retried_on_conflict
from kysera.audit._history import AuditHistory
from kysera.audit._postgres import CHANGED_AT, CHANGED_BY, METADATA
from kysera.audit.entry import AuditOperation
from kysera.repository import compile_where

__all__ = ["AuditMixin"]

# The per-call option through which `create` asks for the one-statement insert: a list,
# [SingleStatementCreate], to which `prepare_insert` (which sees it in `call_options`)
# appends the row's column names, and which `intercept` then turns into the statement.
_LOG_INSERT = "kysera_audit_log_insert"


class _NotWrappable(Exception):
    """Raised (before anything is sent) when the one-statement create would lose a
    Python-side default of the row; `create` then logs it the general way."""


# Per composed repository class: whether AuditMixin.prepare_insert runs outermost.
_PREPARES_LAST: dict[type, bool] = {}


class AuditMixin(AuditHistory):
    """Logs every write of the repository and adds methods to read and restore the log.

    `AuditPlugin` composes a configured subclass of this class into each audited
    repository; use `AuditRepository[E]` (or the `AuditedRepository` protocol) to type
    such a repository.
    """

    # --- inserts ----------------------------------------------------------------------------

    @retried_on_conflict
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
                log_insert: dict[str, Any] = {_LOG_INSERT: request}
                token = _AUDITING.set(True)
                try:
                    return await super().create(data, **options, **log_insert)
                except _NotWrappable:
                    pass  # nothing was sent: log it the general way
                finally:
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
        request = self.call_options.get(_LOG_INSERT)
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
        if request is not None and operation == "insert":
            if len(request) != 2 or not isinstance(statement, Insert):
                # A plugin inside turned the INSERT into something else: log the general way.
                raise _NotWrappable
            single, columns = request
            wrapped = single.wrap(statement, columns, self.audit_plugin.capture_new_values)
            if wrapped is None:
                raise _NotWrappable
            return wrapped
        return statement

    @retried_on_conflict
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

    @retried_on_conflict
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
        known = bool(keys) and all(name in self.table.c for name in names)
        async with (
            self._audited() as (bound, connection),
            self._audit_key_locks(connection, names, keys if known else []),
        ):
            old_rows: dict[tuple[Any, ...], _Row] = {}
            if known:
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

    @retried_on_conflict
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

    @retried_on_conflict
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
                await self._audit_updated_rows(connection, old_rows, options)
        return count

    @retried_on_conflict
    async def bulk_update(self, changes: Iterable[tuple[Any, Any]], **options: Any) -> list[Any]:
        """Apply per-row updates (see `Repository.bulk_update`); log one ``UPDATE`` per row
        that changed."""
        if _AUDITING.get():
            return await super().bulk_update(changes, **options)
        changes = list(changes)
        ids = [
            change[0]
            for change in changes
            # (id, data) pairs, or (id, data, version) triples for kysera-versioning.
            if isinstance(change, (tuple, list)) and len(change) in (2, 3)
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

    @retried_on_conflict
    async def increment(
        self, id: Any, deltas: Mapping[str, Any] | None = None, /, **keywords: Any
    ) -> Any:
        """Add to numeric columns of one row (see `Repository.increment`); log an
        ``UPDATE`` if it changed."""
        if _AUDITING.get():
            return await super().increment(id, deltas, **keywords)
        _, options = self.increment_arguments(deltas, keywords)  # bad deltas: before any SQL
        async with self._audited() as (bound, connection):
            old_rows = await self._audit_read_keys(connection, [id], options)
            entity = await super(AuditMixin, bound).increment(id, deltas, **keywords)
            new = self._audit_row_of(entity)
            await self._audit_write(
                connection, [("UPDATE", old_rows.get(self._audit_key_of_row(new)), new)]
            )
        return entity

    @retried_on_conflict
    async def increment_many(
        self, where: Any, deltas: Mapping[str, Any] | None = None, /, **keywords: Any
    ) -> int:
        """Add to numeric columns of matching rows (see `Repository.increment_many`); log
        one ``UPDATE`` per row that changed (old rows read with the call's own filters)."""
        if _AUDITING.get() or where is None:
            return await super().increment_many(where, deltas, **keywords)
        _, options = self.increment_arguments(deltas, keywords)  # bad deltas: before any SQL
        condition = compile_where(self.table, where)
        async with self._audited() as (bound, connection):
            old_rows = await self._audit_read(connection, condition, options)
            count = await super(AuditMixin, bound).increment_many(where, deltas, **keywords)
            if old_rows and count:
                await self._audit_updated_rows(connection, old_rows, options)
        return count

    async def _audit_updated_rows(
        self, connection: Any, old_rows: dict[Any, Any], options: Mapping[str, Any]
    ) -> None:
        """Log one ``UPDATE`` per row of ``old_rows``, read again now that a statement has
        changed them (soft-deleted ones included)."""
        new_rows = await self._audit_read(
            connection,
            self._audit_keys_condition(list(old_rows)),
            _with_deleted(options),
            read_back=True,
        )
        await self._audit_write(
            connection, self._audit_pairs("UPDATE", old_rows, new_rows.values())
        )

    # --- deletes ----------------------------------------------------------------------------

    @retried_on_conflict
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

    @retried_on_conflict
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
