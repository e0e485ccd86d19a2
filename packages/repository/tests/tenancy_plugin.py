"""Multi-tenant scoping for Kysera: each tenant reads and writes only its own rows.

A third-party plugin written against the public hooks only. Every table with a `tenant_id`
column is scoped: reads, counts, updates and deletes get `tenant_id = <current tenant>`,
inserts get the column filled in, and a call without a tenant fails instead of touching
every tenant's rows. The current tenant is set per request (or task) with `tenant_scope()`;
a call may pass `all_tenants=True` to opt out, for administration.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.sql import visitors

from kysera.core import BadRequestError
from kysera.repository import QueryContext, Repository, hookimpl

__all__ = ["TenantError", "TenantMixin", "TenantPlugin", "current_tenant", "tenant_scope"]

_tenant: ContextVar[Any] = ContextVar("kysera_tenant", default=None)


@contextmanager
def tenant_scope(tenant_id: Any) -> Iterator[None]:
    """Run a block as `tenant_id`: `with tenant_scope(42): await projects.find_all()`.

    A context variable carries it, so it follows the task that set it (and tasks started
    from there) and never leaks into concurrent requests.
    """
    token = _tenant.set(tenant_id)
    try:
        yield
    finally:
        _tenant.reset(token)


def current_tenant() -> Any:
    """The tenant of the enclosing `tenant_scope()`, or `None` outside one."""
    return _tenant.get()


class TenantError(BadRequestError):
    """A statement on a tenant-scoped table could not be confined to one tenant."""

    code: ClassVar[str] = "TENANT_ERROR"


class TenantMixin(Repository[Any]):
    """Methods the plugin adds to the repositories of tenant-scoped tables."""

    tenant_column: ClassVar[str] = "tenant_id"

    def prepare_insert(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Fill in the current tenant; refuse rows of another tenant, or without one."""
        rows = super().prepare_insert(rows)
        column, tenant = self.tenant_column, current_tenant()
        if tenant is None:  # outside a tenant scope every row must name its tenant
            if any(row.get(column) is None for row in rows):
                raise TenantError(
                    f"no tenant for a new row of {self.table.name!r}: run inside "
                    f"tenant_scope(...) or give {column!r}"
                )
            return rows
        for row in rows:
            if row.get(column, tenant) != tenant:
                raise TenantError(
                    f"cannot create a row of tenant {row[column]!r} as tenant {tenant!r}"
                )
        return [{**row, column: tenant} for row in rows]

    def prepare_update(self, values: dict[str, Any]) -> dict[str, Any]:
        """Refuse to move rows to another tenant."""
        values = super().prepare_update(values)
        if self.tenant_column in values:
            raise TenantError(f"the {self.tenant_column!r} of a row cannot be changed")
        return values

    async def upsert_many(
        self,
        rows: Any,
        conflict: Sequence[str] | None = None,
        update: Sequence[str] | None = None,
        **options: Any,
    ) -> list[Any]:
        """Upsert, insisting that the conflict key contains the tenant column.

        Otherwise an upsert could find (and overwrite) another tenant's row.
        """
        if self.tenant_column not in (conflict or self.primary_key):
            raise TenantError(
                f"upsert on {self.table.name!r} must include {self.tenant_column!r} in "
                "conflict=..., so that it can only match rows of the current tenant"
            )
        return await super().upsert_many(rows, conflict=conflict, update=update, **options)

    async def find_across_tenants(self, where: Any = None, **options: Any) -> list[Any]:
        """Rows of every tenant (for administration)."""
        return await self.find(where, **{**options, "all_tenants": True})


class TenantPlugin:
    """Scopes every table that has the tenant column.

    Args:
        column: The name of the tenant column.
    """

    name = "tenant"
    # Outermost: plugins after this one already see the scoped statement.
    priority = 100

    def __init__(self, column: str = "tenant_id") -> None:
        self.column = column
        # One class per plugin, so that the ORM can cache the composed repository class.
        self._mixin = type("TenantMixin", (TenantMixin,), {"tenant_column": column})

    @hookimpl
    def kysera_repository_mixin(self, table: sa.Table, orm: Any) -> type | None:
        return self._mixin if self.column in table.c else None

    @hookimpl
    def kysera_intercept_query(self, context: QueryContext) -> Any:
        if context.operation == "insert" or context.options.get("all_tenants"):
            return None  # new rows get their tenant in TenantMixin.prepare_insert
        statement: Any = context.statement
        if context.table is not None:  # a repository's statement, or orm.execute UPDATE/DELETE
            tables = [context.table] if self.column in context.table.c else []
        elif isinstance(statement, sa.Select):  # a hand-written SELECT through orm.execute
            tables = self._scopable_tables(statement)
        else:
            return None
        if tables:
            tenant = self._require_tenant(tables)
            for table in tables:
                statement = statement.where(table.c[self.column] == tenant)
        return statement

    def _require_tenant(self, tables: list[sa.Table]) -> Any:
        tenant = current_tenant()
        if tenant is None:
            names = ", ".join(repr(table.name) for table in tables)
            raise TenantError(
                f"no tenant for a statement on {names}: run inside tenant_scope(...) "
                "or pass all_tenants=True"
            )
        return tenant

    def _scopable_tables(self, statement: sa.Select[Any]) -> list[sa.Table]:
        """The scoped tables a WHERE clause can restrict: plain FROM tables and both sides
        of inner joins. A scoped table anywhere else (the optional side of an outer join,
        a subquery, an alias) is refused rather than left unscoped."""
        found: list[sa.Table] = []

        def collect(source: Any) -> None:
            if isinstance(source, sa.Table) and self.column in source.c:
                found.append(source)
            elif isinstance(source, sa.Join):
                collect(source.left)
                if not source.isouter:
                    collect(source.right)

        for source in statement.get_final_froms():
            collect(source)
        unscoped = {
            element.name
            for element in visitors.iterate(statement)
            if isinstance(element, sa.Table) and self.column in element.c
        } - {table.name for table in found}
        if unscoped:
            raise TenantError(
                f"cannot scope {sorted(unscoped)} in this statement (outer join, subquery or "
                f"alias): filter on {self.column!r} yourself and pass all_tenants=True"
            )
        return found
