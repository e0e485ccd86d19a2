"""`TTLMixin`: what `TTLPlugin` adds to the repositories of expiring tables."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, and_, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kysera.core import ValidationError
from kysera.repository import Repository
from kysera.ttl.clock import database_now
from kysera.ttl.durations import parse_duration

__all__ = ["TTLMixin"]


class TTLMixin(Repository[Any]):
    """Added to the repositories of expiring tables by `TTLPlugin`.

    - ``create(data, ttl="5m")``, ``create_many(rows, ttl=...)``, ``upsert(..., ttl=...)``:
      rows that do not set the expiry column themselves get ``now + ttl`` (an explicit
      ``expires_at`` in a row wins). A bad ``ttl`` raises `ValidationError` before anything
      is written.
    - ``include_expired=True`` on any read shows expired rows.

    Attributes:
        ttl_column: The expiry column.
    """

    ttl_column: ClassVar[str] = "expires_at"

    def ttl_now(self) -> datetime:
        """The application clock for ``now + ttl`` (the plugin's ``now=``)."""
        return datetime.now(UTC)

    def expiry_for(self, ttl: Any) -> datetime:
        """The value to store for a row living ``ttl`` from now (aware UTC, or naive UTC for
        a column without time zone).

        Raises:
            ValidationError: ``ttl`` is not a strict positive duration.
        """
        duration = parse_duration(ttl)
        try:
            instant = self.ttl_now().astimezone(UTC) + duration
        except OverflowError:  # past the year 9999
            raise ValidationError(f"ttl {ttl!r} ends after the last date Python can hold") from None
        if getattr(self.table.c[self.ttl_column].type, "timezone", False):
            return instant
        return instant.replace(tzinfo=None)

    def prepare_insert(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = super().prepare_insert(rows)
        ttl = self.call_options.get("ttl")
        if ttl is None:
            return rows
        expires = self.expiry_for(ttl)
        column = self.ttl_column
        return [row if column in row else {**row, column: expires} for row in rows]

    async def touch_ttl(self, id: Any, ttl: Any, **options: Any) -> Any:
        """Set the row's expiry to ``now + ttl`` (``ttl=None``: never expires); return it.

        An expired row is gone: it raises `NotFoundError` unless ``include_expired=True``.

        Raises:
            ValidationError: ``ttl`` is not a strict positive duration (nothing written).
            NotFoundError: No such (unexpired) row.
        """
        value = None if ttl is None else self.expiry_for(ttl)
        return await self.update(id, {self.ttl_column: value}, **options)

    async def purge_expired(self, batch_size: int = 1000, **options: Any) -> int:
        """Delete expired rows, ``batch_size`` at a time, each batch in its own transaction.

        Each batch selects up to ``batch_size`` expired keys, then deletes those keys
        *where they are still expired* (``expires_at <= <database now>``): a row whose TTL
        was extended between the two statements survives. Two statements per batch; stops
        after the first batch that is not full.

        Returns:
            The number of rows deleted.

        Raises:
            ValidationError: ``batch_size`` is not a positive int.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValidationError(f"batch_size must be a positive int, got {batch_size!r}")
        total = 0
        while True:

            async def batch(connection: AsyncConnection) -> tuple[int, int]:
                ids = await self._expired_keys(connection, batch_size, options)
                if not ids:
                    return 0, 0
                return len(ids), await self._delete_expired(connection, ids, options)

            picked, deleted = await self._write(batch)
            total += deleted
            if picked < batch_size:
                return total

    def _expired(self) -> ColumnElement[bool]:
        expires = self.table.c[self.ttl_column]
        return and_(expires.is_not(None), expires <= database_now(expires.type))

    async def _expired_keys(
        self, connection: AsyncConnection, limit: int, options: Mapping[str, Any]
    ) -> list[Any]:
        """Up to ``limit`` keys of expired rows (soft-deleted or not)."""
        keys = list(self.table.primary_key.columns)
        read_options = {**options, "include_expired": True, "include_deleted": True}
        pick = self.intercept(
            "select", select(*keys).where(self._expired()).limit(limit), read_options
        )
        found = (await connection.execute(pick)).all()
        return [row[0] if len(keys) == 1 else tuple(row) for row in found]

    async def _delete_expired(
        self, connection: AsyncConnection, ids: list[Any], options: Mapping[str, Any]
    ) -> int:
        """Delete the rows of ``ids`` that are still expired; return how many."""
        statement = self.intercept(
            "delete", delete(self.table).where(self.keys_condition(ids), self._expired()), options
        )
        result: Any = await connection.execute(statement)
        return int(result.rowcount)
