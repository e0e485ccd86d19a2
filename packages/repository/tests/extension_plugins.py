"""Two third-party plugins written against the public extension points only.

- `ProvenancePlugin` records who wrote a row: ``created_by`` on insert and ``updated_by`` on
  every write, from the per-call option ``actor=...``, which its mixin reads in
  `Repository.call_options`. It keeps ``created_by`` out of an upsert's UPDATE branch with
  `Repository.upsert_update_columns`, so an upsert that meets an existing row keeps the row's
  creator.
- `HideArchivedPlugin` hides archived rows (``archived`` true) from every SELECT, COUNT and
  UPDATE, unless the call passes ``include_archived=True``. It lets a write's read-back
  through (`QueryContext.read_back`), so that archiving a row on MySQL/MariaDB, which read the
  written row back, still returns it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import sqlalchemy as sa

from kysera.repository import QueryContext, Repository, hookimpl

__all__ = ["HideArchivedPlugin", "ProvenanceMixin", "ProvenancePlugin"]


class ProvenanceMixin(Repository[Any]):
    """Fills in ``created_by`` / ``updated_by`` from the call's ``actor=`` option."""

    created_by: ClassVar[str] = "created_by"
    updated_by: ClassVar[str] = "updated_by"

    def prepare_insert(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = super().prepare_insert(rows)
        actor = self.call_options.get("actor")
        if actor is None:
            return rows
        # A value the row gives itself wins (an import keeps its creator).
        return [{self.created_by: actor, self.updated_by: actor, **row} for row in rows]

    def prepare_update(self, values: dict[str, Any]) -> dict[str, Any]:
        values = super().prepare_update(values)
        actor = self.call_options.get("actor")
        if actor is None or not values:
            return values
        return {**values, self.updated_by: actor}

    def upsert_update_columns(self, columns: tuple[str, ...]) -> tuple[str, ...]:
        # An existing row keeps its creator, unless the call asks to rewrite it.
        columns = super().upsert_update_columns(columns)
        if self.call_options.get("rewrite_creator"):
            return columns
        return tuple(name for name in columns if name != self.created_by)


class ProvenancePlugin:
    """Adds `ProvenanceMixin` to the repositories of tables with a ``created_by`` column."""

    name = "provenance"

    @hookimpl
    def kysera_repository_mixin(self, table: sa.Table) -> type | None:
        return ProvenanceMixin if "created_by" in table.c else None


class HideArchivedPlugin:
    """Hides archived rows; records whether each SELECT it saw was a read-back.

    Attributes:
        selects: ``(table name, read_back)`` for every SELECT of a repository it saw.
    """

    name = "hide-archived"

    def __init__(self) -> None:
        self.selects: list[tuple[str, bool]] = []

    @hookimpl
    def kysera_intercept_query(self, context: QueryContext) -> Any:
        table = context.table
        if table is None or "archived" not in table.c:
            return None
        if context.operation == "select":
            self.selects.append((table.name, context.read_back))
        if context.operation not in ("select", "count", "update"):
            return None
        if context.options.get("include_archived") or context.read_back:
            return None
        statement: Any = context.statement
        return statement.where(table.c.archived.is_(False))
