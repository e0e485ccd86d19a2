"""`ChangeFeedPlugin`: record every write of the repositories of an ORM as change rows."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from sqlalchemy import MetaData, Select, Table
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.changes._postgres import SingleStatementCreate, record_statement
from kysera.changes.consumer import Change, follow_changes
from kysera.changes.mixin import ChangeFeedMixin, SoftDeleteChangeFeedMixin
from kysera.changes.table import change_tables
from kysera.repository import hookimpl

__all__ = ["ChangeFeedPlugin"]

# Never recorded: the migration runner's bookkeeping table.
_ALWAYS_EXCLUDED = frozenset({"kysera_migrations"})


class ChangeFeedPlugin:
    """Write one change row per changed entity in the same transaction as the change.

    ```python
    orm = await create_orm(engine, plugins=[ChangeFeedPlugin()])
    await orm.repository(users).create({"email": "ada@example.com"})
    for change in await read_changes(engine, after=0):
        print(change.id, change.table, change.key, change.operation, change.columns)
    ```

    Every write path is recorded: ``create``, ``create_many``, ``upsert(_many)``,
    ``update``, ``update_many``, ``bulk_update``, ``increment(_many)``,
    ``delete(_many)``, and, with the soft delete plugin, ``soft_delete(_many)``,
    ``restore(_many)`` and ``hard_delete(_many)``. A bulk path costs the same few
    statements whatever the number of rows. Change ids are given out in commit order
    (a lock on the counter row, see `kysera.changes.take_ids`'s module), so a consumer that
    reads ``id > cursor`` never skips a change.

    Args:
        table: The change table's name (create it with `create_change_tables`).
        tables: Record only these tables (default: every table).
        exclude_tables: Never record these tables. The change tables and the migrations
            table are never recorded.
    """

    name = "changes"
    # Outside soft delete (its soft deletes and restores are recorded as such), inside
    # audit (which wants to be outermost).
    priority = 900

    def __init__(
        self,
        table: str = "kysera_changes",
        *,
        tables: Iterable[str] | None = None,
        exclude_tables: Iterable[str] = (),
    ) -> None:
        if not isinstance(table, str) or not table:
            raise TypeError(f"table must be the change table's name, not {table!r}")
        self.table = table
        found = change_tables(MetaData(), table)
        self.changes_table: Table = found.changes
        self.counter_table: Table = found.counter
        self.tables = None if tables is None else frozenset(tables)
        self.exclude_tables = (
            frozenset(exclude_tables) | _ALWAYS_EXCLUDED | {table, found.counter.name}
        )
        # PostgreSQL: the change rows of a write as one statement, and a create with its
        # change row as one statement (per table, where the key allows).
        self.record_statement: Select[Any] = record_statement(
            self.changes_table, self.counter_table
        )
        self._single_statement_creates: dict[Table, SingleStatementCreate] = {}
        attributes = {"change_feed": self}
        self._mixin = type("ChangeFeedMixin", (ChangeFeedMixin,), attributes)
        self._soft_delete_mixin = type("ChangeFeedMixin", (SoftDeleteChangeFeedMixin,), attributes)

    def __repr__(self) -> str:
        return f"ChangeFeedPlugin(table={self.table!r})"

    def records(self, table: Table) -> bool:
        """Whether writes to ``table`` are recorded."""
        if table.name in self.exclude_tables:
            return False
        return self.tables is None or table.name in self.tables

    def single_statement_create(self, table: Table) -> SingleStatementCreate:
        """The one-statement recorded ``create`` of ``table`` on PostgreSQL (built once)."""
        found = self._single_statement_creates.get(table)
        if found is None:
            found = self._single_statement_creates[table] = SingleStatementCreate(
                table, self.changes_table, self.counter_table, self.table
            )
        return found

    @hookimpl
    def kysera_repository_mixin(self, table: Table, orm: Any) -> type | None:
        if not self.records(table):
            return None
        if "soft_delete" in orm.registry.names:
            return self._soft_delete_mixin
        return self._mixin

    @hookimpl
    def kysera_follow_changes(
        self,
        orm: Any,
        tables: tuple[str, ...] | None,
        after: int,
        poll_interval: float,
        batch_size: int,
    ) -> AsyncIterator[Change]:
        """`orm.changes(...)`: `follow_changes` on the ORM's engine and this plugin's table.

        The stream reads through the engine, never through the ORM's current transaction
        or connection: a reader inside a transaction would keep seeing its own snapshot.
        """
        executor = orm.executor
        engine = executor if isinstance(executor, AsyncEngine) else executor.engine
        return follow_changes(
            engine,
            after=after,
            tables=tables,
            poll_interval=poll_interval,
            batch_size=batch_size,
            table=self.table,
        )
