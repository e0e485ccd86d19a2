"""`TimestampsMixin`: what the plugin adds to the repositories of timestamped tables.

The ORM composes the plugin's mixin in front of the repository class on its own. To get
the added methods statically typed, compose it explicitly (the ORM keeps it once):

```python
class UserRepository(TimestampsMixin[User]):
    pass


users = orm.repository(users_table, entity=User, repository_class=UserRepository)
```
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from sqlalchemy import Column, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kysera.core import InvalidQueryError, NotFoundError
from kysera.core._affected_rows import affected_rows
from kysera.repository import PluginError, Repository
from kysera.timestamps._ordering import newest_first
from kysera.timestamps._settings import (
    CURRENT_CALL,
    PLUGIN_NAME,
    SUSPENDED,
    TimestampCall,
    TimestampColumns,
    TimestampSettings,
)
from kysera.timestamps.errors import InvalidTimestampError

__all__ = ["TimestampsMixin"]

EntityT = TypeVar("EntityT")


class TimestampsMixin(Repository[EntityT]):
    """Timestamp bookkeeping and queries for a repository of a timestamped table.

    Every write method stamps ``created_at``/``updated_at`` (see docs/timestamps.md), and
    accepts the per-call option ``timestamps=False`` to write exactly what it is given.
    """

    timestamp_settings: ClassVar[TimestampSettings | None] = None
    """Set on the subclass the plugin builds; ``None`` on this class itself."""

    # --- plumbing ---------------------------------------------------------------------------

    def _timestamps(self) -> tuple[TimestampSettings, TimestampColumns]:
        # Resolved once per repository (copies made by with_executor share it).
        state: tuple[TimestampSettings, TimestampColumns] | None = self.__dict__.get(
            "_timestamp_state"
        )
        if state is None:
            state = self.__dict__["_timestamp_state"] = self._resolve_timestamps()
        return state

    def _resolve_timestamps(self) -> tuple[TimestampSettings, TimestampColumns]:
        settings = self.timestamp_settings
        if settings is None:
            raise PluginError(
                f"{type(self).__name__} uses TimestampsMixin but the repository was not "
                "created by an ORM with TimestampsPlugin(): use "
                "create_orm(engine, plugins=[TimestampsPlugin()]).repository(...)",
                plugins=[PLUGIN_NAME],
            )
        columns = settings.columns_of(self.table)
        if columns is None:
            raise PluginError(
                f"table {self.table.name!r} is not timestamped by TimestampsPlugin "
                "(excluded, or not named in tables=)",
                plugins=[PLUGIN_NAME],
            )
        return settings, columns

    def _open_call(self, options: dict[str, Any], upsert: bool = False) -> TimestampCall:
        skip = options.get("timestamps") is False or SUSPENDED.get()
        return TimestampCall(self._timestamps()[0], self.table, skip, upsert)

    def _current_call(self, settings: TimestampSettings) -> TimestampCall:
        call = CURRENT_CALL.get()
        if call is not None and call.table is self.table and call.settings is settings:
            return call
        # Reached without one of the wrapped methods (another plugin's or a subclass's own
        # write path, such as a soft delete): stamp, unless inside without_timestamps() or
        # the call passed timestamps=False (prepared_insert / prepared_update show its
        # options here).
        skip = SUSPENDED.get() or self.call_options.get("timestamps") is False
        return TimestampCall(settings, self.table, skip)

    def _column(self, which: str) -> Column[Any]:
        _, columns = self._timestamps()
        column = columns.created if which == "created" else columns.updated
        if column is None:
            settings = self.timestamp_settings
            assert settings is not None
            name = settings.created_at if which == "created" else settings.updated_at
            raise InvalidQueryError(f"table {self.table.name!r} has no {name!r} column")
        return column

    def _instant(self, column: Column[Any], value: Any) -> datetime:
        """``value`` as the column stores it: aware UTC, or the naive UTC reading."""
        aware = bool(getattr(column.type, "timezone", False))
        if not isinstance(value, datetime):
            raise InvalidTimestampError(value=value)
        if value.utcoffset() is None:
            if aware:
                raise InvalidTimestampError(value=value)
            return value  # a plain DateTime column holds naive UTC readings: compare as is
        instant = value.astimezone(UTC)
        return instant if aware else instant.replace(tzinfo=None)

    def _order(self, column: Column[Any], *, descending: bool) -> list[str]:
        sign = "-" if descending else ""
        return [f"{sign}{column.key}", *(f"{sign}{name}" for name in self.primary_key)]

    # --- stamping the repository's own write paths -------------------------------------------

    def prepare_insert(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Set ``created_at`` and ``updated_at`` on every row that does not set them.

        An upsert gets only ``updated_at`` here (so that its update branch refreshes it);
        its ``created_at`` is added to the INSERT statement, which the update branch never
        copies. A value of ``None`` counts as not set.
        """
        rows = super().prepare_insert(rows)
        settings, columns = self._timestamps()
        call = self._current_call(settings)
        if call.skip:
            return rows
        instant = call.instant()
        created, updated = columns.created, columns.updated
        stamps: list[tuple[str, datetime]] = []
        if created is not None and not call.upsert:
            stamps.append((created.key, columns.created_value(instant)))
        if updated is not None:
            stamps.append((updated.key, columns.updated_value(instant)))
        # The rows are the repository's own copies made by validation: filled in place.
        for row in rows:
            for name, value in stamps:
                if row.get(name) is None:
                    row[name] = value
        return rows

    def prepare_update(self, values: dict[str, Any]) -> dict[str, Any]:
        """Set ``updated_at`` on an update that changes something and does not set it.

        An update with no values writes nothing, so it leaves ``updated_at`` alone too (use
        `touch` to bump it). A value of ``None`` counts as not set.
        """
        values = super().prepare_update(values)
        if not values:
            return values
        settings, columns = self._timestamps()
        column = columns.updated
        if column is None:
            return values
        call = self._current_call(settings)
        if call.skip or values.get(column.key) is not None:
            return values
        values[column.key] = columns.updated_value(call.instant())
        return values

    async def create(self, data: Any, **options: Any) -> EntityT:
        token = CURRENT_CALL.set(self._open_call(options))
        try:
            return await super().create(data, **options)
        finally:
            CURRENT_CALL.reset(token)

    async def create_many(self, rows: Iterable[Any], **options: Any) -> Any:
        token = CURRENT_CALL.set(self._open_call(options))
        try:
            return await super().create_many(rows, **options)
        finally:
            CURRENT_CALL.reset(token)

    async def upsert_many(
        self,
        rows: Iterable[Any],
        conflict: Sequence[str] | None = None,
        update: Sequence[str] | None = None,
        **options: Any,
    ) -> list[EntityT]:
        call = self._open_call(options, True)
        _, columns = self._timestamps()
        if update is not None and not call.skip and columns.updated is not None:
            chosen = [update] if isinstance(update, str) else list(update)
            # update=[...] names what the update branch overwrites: it refreshes updated_at
            # too. update=[] means "leave an existing row alone", so it stays alone.
            if chosen and columns.updated.key not in chosen:
                update = [*chosen, columns.updated.key]
        token = CURRENT_CALL.set(call)
        try:
            return await super().upsert_many(rows, conflict=conflict, update=update, **options)
        finally:
            CURRENT_CALL.reset(token)

    async def update(self, id: Any, data: Any, **options: Any) -> EntityT:
        token = CURRENT_CALL.set(self._open_call(options))
        try:
            return await super().update(id, data, **options)
        finally:
            CURRENT_CALL.reset(token)

    async def update_many(self, where: Any, data: Any, **options: Any) -> int:
        token = CURRENT_CALL.set(self._open_call(options))
        try:
            return await super().update_many(where, data, **options)
        finally:
            CURRENT_CALL.reset(token)

    async def bulk_update(
        self, changes: Iterable[tuple[Any, Any]], **options: Any
    ) -> list[EntityT]:
        token = CURRENT_CALL.set(self._open_call(options))
        try:
            return await super().bulk_update(changes, **options)
        finally:
            CURRENT_CALL.reset(token)

    # --- added methods ----------------------------------------------------------------------

    async def touch(self, id: Any, **options: Any) -> EntityT:
        """Set the row's ``updated_at`` to now, changing nothing else; return the row.

        Raises:
            NotFoundError: No row has this key (or another plugin hides it).
            InvalidQueryError: The table has no ``updated_at`` column, or a bad key.
        """
        settings, columns = self._timestamps()
        column = self._column("updated")
        statement: Any = (
            update(self.table)
            .where(self.key_condition(id))
            .values({column: columns.updated_value(settings.now())})
        )
        async with self.atomic() as repository:
            connection = repository.executor
            assert isinstance(connection, AsyncConnection)
            if connection.dialect.update_returning:
                statement = self.intercept(
                    "update", statement.returning(*self.table.columns), options
                )
                row = (await connection.execute(statement)).first()
                if row is None:
                    raise NotFoundError(entity=self.table.name, filters=id)
                return self.to_entity(row._asdict())
            # MySQL/MariaDB: no UPDATE ... RETURNING; read the row back in this transaction.
            statement = self.intercept("update", statement, options)
            if (await connection.execute(statement)).rowcount == 0:
                raise NotFoundError(entity=self.table.name, filters=id)
            found: EntityT = await repository.get(id, **options)
            return found

    async def touch_many(self, ids: Iterable[Any], **options: Any) -> int:
        """Set ``updated_at`` to now on the rows with these keys (one UPDATE).

        Returns:
            The number of rows found (an empty list sends no statement).
        """
        keys = list(ids)
        settings, columns = self._timestamps()
        column = self._column("updated")
        if not keys:
            return 0
        statement = self.intercept(
            "update",
            update(self.table)
            .where(self.keys_condition(keys))
            .values({column: columns.updated_value(settings.now())}),
            options,
        )
        async with self.atomic() as repository:
            connection = repository.executor
            assert isinstance(connection, AsyncConnection)
            return await affected_rows(connection, await connection.execute(statement))

    async def find_created_after(
        self, dt: datetime, *, limit: int | None = None, **options: Any
    ) -> list[EntityT]:
        """Rows created strictly after ``dt`` (an aware datetime), oldest first."""
        column = self._column("created")
        found: list[EntityT] = await self.find(
            column > self._instant(column, dt),
            order_by=self._order(column, descending=False),
            limit=limit,
            **options,
        )
        return found

    async def find_created_before(
        self, dt: datetime, *, limit: int | None = None, **options: Any
    ) -> list[EntityT]:
        """Rows created strictly before ``dt`` (an aware datetime), oldest first."""
        column = self._column("created")
        found: list[EntityT] = await self.find(
            column < self._instant(column, dt),
            order_by=self._order(column, descending=False),
            limit=limit,
            **options,
        )
        return found

    async def find_created_between(
        self, start: datetime, end: datetime, *, limit: int | None = None, **options: Any
    ) -> list[EntityT]:
        """Rows created at or after ``start`` and at or before ``end``, oldest first."""
        column = self._column("created")
        found: list[EntityT] = await self.find(
            column.between(self._instant(column, start), self._instant(column, end)),
            order_by=self._order(column, descending=False),
            limit=limit,
            **options,
        )
        return found

    async def find_updated_after(
        self, dt: datetime, *, limit: int | None = None, **options: Any
    ) -> list[EntityT]:
        """Rows updated strictly after ``dt`` (an aware datetime), least recent first."""
        column = self._column("updated")
        found: list[EntityT] = await self.find(
            column > self._instant(column, dt),
            order_by=self._order(column, descending=False),
            limit=limit,
            **options,
        )
        return found

    async def find_recently_created(self, limit: int = 10, **options: Any) -> list[EntityT]:
        """The ``limit`` newest rows by ``created_at``, newest first."""
        column = self._column("created")
        # NULLs (rows older than the column) last on every dialect, not first as on PG.
        order = [newest_first(column), *(f"-{name}" for name in self.primary_key)]
        found: list[EntityT] = await self.find(order_by=order, limit=limit, **options)
        return found

    async def find_recently_updated(self, limit: int = 10, **options: Any) -> list[EntityT]:
        """The ``limit`` most recently updated rows by ``updated_at``, most recent first."""
        column = self._column("updated")
        # NULLs (rows older than the column) last on every dialect, not first as on PG.
        order = [newest_first(column), *(f"-{name}" for name in self.primary_key)]
        found: list[EntityT] = await self.find(order_by=order, limit=limit, **options)
        return found

    async def create_without_timestamps(self, data: Any, **options: Any) -> EntityT:
        """`create` writing exactly ``data``: no timestamp is filled in.

        Same as ``create(data, timestamps=False)``; for imports that carry their own
        timestamps. Columns left unset get their database default (or NULL).
        """
        return await self.create(data, **{**options, "timestamps": False})

    async def update_without_timestamp(self, id: Any, data: Any, **options: Any) -> EntityT:
        """`update` that leaves ``updated_at`` as it is (unless ``data`` sets it).

        Same as ``update(id, data, timestamps=False)``; for corrections and backfills that
        should not count as a change.
        """
        return await self.update(id, data, **{**options, "timestamps": False})
