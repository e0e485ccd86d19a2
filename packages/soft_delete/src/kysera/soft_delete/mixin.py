"""`SoftDeleteMixin`: the methods soft delete adds to (and changes in) a repository."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, Table, and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kysera.core import NotFoundError
from kysera.core._affected_rows import affected_rows
from kysera.repository import Repository, as_read_back, compile_where
from kysera.soft_delete.errors import RecordNotDeletedError

__all__ = ["SoftDeleteMixin"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _with_deleted(options: dict[str, Any]) -> dict[str, Any]:
    return {**options, "include_deleted": True}


class SoftDeleteMixin(Repository[Any]):
    """Added to the repositories of soft-deletable tables by `SoftDeletePlugin`.

    ``SoftDeletePlugin`` composes a configured subclass of this class into each repository
    class; ``isinstance(repo, SoftDeleteMixin)`` narrows a repository for type checkers (or
    see `SoftDeleteMethods` for a `typing.Protocol`).

    Attributes:
        soft_delete_column: The deletion-time column.
        soft_delete_replaces_delete: Whether ``delete``/``delete_many`` soft-delete.
    """

    soft_delete_column: ClassVar[str] = "deleted_at"
    soft_delete_replaces_delete: ClassVar[bool] = False

    # --- helpers ----------------------------------------------------------------------------

    def soft_delete_now(self) -> datetime:
        """The deletion time for rows deleted now (the plugin's ``now=`` clock; by default
        timezone-aware UTC)."""
        return _utc_now()

    def _deleted_value(self, connection: AsyncConnection) -> datetime:
        """The deletion time to write: aware UTC, or naive UTC for a PostgreSQL
        ``timestamp without time zone`` column (asyncpg refuses aware values there)."""
        value = self.soft_delete_now()
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        column_type = self.table.c[self.soft_delete_column].type
        if connection.dialect.name == "postgresql" and not getattr(column_type, "timezone", True):
            return value.replace(tzinfo=None)
        return value

    def _key_of(self, id: Any) -> ColumnElement[bool]:
        return self.key_condition(id)

    async def _update_one(
        self,
        connection: AsyncConnection,
        key: ColumnElement[bool],
        only_if: ColumnElement[bool] | None,
        values: dict[str, Any],
        options: dict[str, Any],
    ) -> dict[str, Any] | None:
        """Update the row with ``key`` (and ``only_if``) through the plugins; return the row
        as stored, or ``None`` when no row matched."""
        table: Table = self.table
        condition = key if only_if is None else and_(key, only_if)
        statement: Any = self.intercept(
            "update", update(table).where(condition).values(values), options
        )
        if connection.dialect.update_returning:
            row = (await connection.execute(statement.returning(*table.columns))).first()
            return None if row is None else row._asdict()
        if (await connection.execute(statement)).rowcount == 0:
            return None
        # MySQL/MariaDB: read the row back in this transaction; marked as a read-back, so
        # that the plugin (and any other hiding plugin) lets a now-deleted row through.
        reselect = self.intercept("select", as_read_back(select(table).where(key)), options)
        row = (await connection.execute(reselect)).first()
        return None if row is None else row._asdict()

    # --- added methods ----------------------------------------------------------------------

    async def soft_delete(self, id: Any, **options: Any) -> Any:
        """Mark the row deleted (set its deletion time); return it as stored.

        Other plugins see an ``update``: timestamps sets ``updated_at``, audit logs it.

        Raises:
            NotFoundError: No row has this key, or it is already deleted.
        """
        condition = self._key_of(id)
        async with self.atomic() as repo:
            connection = repo.executor
            assert isinstance(connection, AsyncConnection)
            values = self.prepared_update(
                {self.soft_delete_column: self._deleted_value(connection)}, options
            )
            row = await self._update_one(connection, condition, None, values, options)
        if row is None:
            raise NotFoundError(entity=self.table.name, filters=id)
        return self.to_entity(row)

    async def soft_delete_many(self, ids: Iterable[Any], **options: Any) -> int:
        """Mark the rows with these keys deleted (one UPDATE); return how many were marked.

        Keys that match no row, or an already deleted one, are skipped.
        """
        keys = list(ids)
        if not keys:
            return 0
        condition = self.keys_condition(keys)
        async with self.atomic() as repo:
            connection = repo.executor
            assert isinstance(connection, AsyncConnection)
            values = self.prepared_update(
                {self.soft_delete_column: self._deleted_value(connection)}, options
            )
            statement = self.intercept(
                "update", update(self.table).where(condition).values(values), options
            )
            return await affected_rows(connection, await connection.execute(statement))

    async def restore(self, id: Any, **options: Any) -> Any:
        """Clear the row's deletion time; return it as stored.

        Raises:
            NotFoundError: No row has this key.
            RecordNotDeletedError: The row is not deleted.
        """
        column = self.table.c[self.soft_delete_column]
        condition = self._key_of(id)
        options = _with_deleted(options)
        async with self.atomic() as repo:
            connection = repo.executor
            assert isinstance(connection, AsyncConnection)
            values = self.prepared_update({self.soft_delete_column: None}, options)
            row = await self._update_one(
                connection, condition, column.is_not(None), values, options
            )
            if row is None:
                probe = self.intercept(
                    "select", select(*self.table.primary_key.columns).where(condition), options
                )
                if (await connection.execute(probe)).first() is not None:
                    raise RecordNotDeletedError(entity=self.table.name, key=id)
                raise NotFoundError(entity=self.table.name, filters=id)
        return self.to_entity(row)

    async def restore_many(self, ids: Iterable[Any], **options: Any) -> int:
        """Clear the deletion time of the deleted rows among these keys (one UPDATE);
        return how many were restored. Missing or live rows are skipped."""
        keys = list(ids)
        if not keys:
            return 0
        column = self.table.c[self.soft_delete_column]
        condition = and_(self.keys_condition(keys), column.is_not(None))
        values = self.prepared_update({self.soft_delete_column: None}, options)
        async with self.atomic() as repo:
            connection = repo.executor
            assert isinstance(connection, AsyncConnection)
            statement = self.intercept(
                "update",
                update(self.table).where(condition).values(values),
                _with_deleted(options),
            )
            return await affected_rows(connection, await connection.execute(statement))

    async def hard_delete(self, id: Any, **options: Any) -> bool:
        """Remove the row for good, deleted or not; return whether there was one."""
        return await super().delete(id, **options)

    async def hard_delete_many(self, ids: Iterable[Any], **options: Any) -> int:
        """Remove the rows with these keys for good (one DELETE); return how many."""
        return await super().delete_many(ids, **options)

    async def find_with_deleted(self, id: Any, **options: Any) -> Any:
        """`find_by_id` that also finds a deleted row."""
        return await self.find_by_id(id, **_with_deleted(options))

    async def find_all_with_deleted(
        self,
        order_by: Any = None,
        limit: int | None = None,
        offset: int | None = None,
        **options: Any,
    ) -> list[Any]:
        """`find_all` including deleted rows."""
        return await self.find_all(order_by, limit, offset, **_with_deleted(options))

    async def find_deleted(
        self,
        where: Any = None,
        order_by: Any = None,
        limit: int | None = None,
        offset: int | None = None,
        **options: Any,
    ) -> list[Any]:
        """Only the deleted rows (optionally matching ``where``, ordered and sliced)."""
        deleted: ColumnElement[bool] = self.table.c[self.soft_delete_column].is_not(None)
        condition = compile_where(self.table, where)
        if condition is not None:
            deleted = and_(condition, deleted)
        return await self.find(deleted, order_by, limit, offset, **_with_deleted(options))

    # --- changed methods --------------------------------------------------------------------

    async def delete(self, id: Any, **options: Any) -> bool:
        """Hard delete, or, with ``replace_delete=True``, `soft_delete` (``False`` when there
        is no live row with this key)."""
        if not self.soft_delete_replaces_delete:
            return await super().delete(id, **options)
        try:
            await self.soft_delete(id, **options)
        except NotFoundError:
            return False
        return True

    async def delete_many(self, ids: Iterable[Any], **options: Any) -> int:
        """Hard delete, or, with ``replace_delete=True``, `soft_delete_many`."""
        if not self.soft_delete_replaces_delete:
            return await super().delete_many(ids, **options)
        return await self.soft_delete_many(ids, **options)

    async def update(self, id: Any, data: Any, **options: Any) -> Any:
        """`update`; one that sets the deletion column itself works on deleted rows too.

        Writing ``deleted_at`` directly is an explicit act on a row, deleted or not, so such
        an update runs as with ``include_deleted=True``. Prefer `soft_delete` / `restore`.
        """
        if self._sets_deletion_column(data):
            options = _with_deleted(options)
        return await super().update(id, data, **options)

    def _sets_deletion_column(self, data: Any) -> bool:
        column = self.soft_delete_column
        if isinstance(data, Mapping):
            return column in data
        fields_set = getattr(data, "model_fields_set", None)
        return isinstance(fields_set, (set, frozenset)) and column in fields_set
