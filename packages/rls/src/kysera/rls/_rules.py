"""`TableRules`: one table's policies, compiled into the conditions and checks they imply."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, or_

from kysera.rls.context import RLSContext
from kysera.rls.errors import RLSContextError, RLSPolicyError
from kysera.rls.policy import (
    AllowPolicy,
    CheckPolicy,
    FilterPolicy,
    Policy,
    PublicPolicy,
    RowPredicate,
    TenantPolicy,
    condition,
)

__all__ = ["TableRules"]


@dataclass(frozen=True)
class TableRules:
    """The policies of one table."""

    table: str
    tenant_column: str | None
    filters: tuple[RowPredicate, ...]
    allows: Mapping[str, tuple[RowPredicate, ...]]
    checks: tuple[CheckPolicy, ...]

    @classmethod
    def of(cls, table: str, policies: Sequence[Policy]) -> TableRules:
        """Compile ``policies``.

        Raises:
            TypeError: An entry is not a policy.
            ValueError: Two tenant policies, or public() together with restrictions.
        """
        tenants = [p.column for p in policies if isinstance(p, TenantPolicy)]
        unknown = [p for p in policies if not isinstance(p, Policy)]
        if unknown:
            raise TypeError(f"policies of {table!r} must be made with policy.*: {unknown[0]!r}")
        if len(tenants) > 1:
            raise ValueError(f"{table!r} has more than one tenant policy")
        public = any(isinstance(p, PublicPolicy) for p in policies)
        if public and len(policies) > 1:
            raise ValueError(f"{table!r}: policy.public() cannot be combined with others")
        allows: dict[str, tuple[RowPredicate, ...]] = {}
        for item in policies:
            if isinstance(item, AllowPolicy):
                allows[item.operation] = (*allows.get(item.operation, ()), item.predicate)
        return cls(
            table=table,
            tenant_column=tenants[0] if tenants else None,
            filters=tuple(p.predicate for p in policies if isinstance(p, FilterPolicy)),
            allows=allows,
            checks=tuple(p for p in policies if isinstance(p, CheckPolicy)),
        )

    @property
    def restricts(self) -> bool:
        """Whether anything is required of the caller (``False`` for ``policy.public()``)."""
        return bool(self.tenant_column or self.filters or self.allows or self.checks)

    def check_table(self, table: Table) -> None:
        """Refuse a table without the tenant column, when its repository is built."""
        if self.tenant_column is not None and self.tenant_column not in table.c:
            raise RLSPolicyError(
                f"table {table.name!r} has no column {self.tenant_column!r} for its tenant "
                f"policy; its columns are {sorted(table.c.keys())}",
                table=table.name,
            )

    def where(self, context: RLSContext, table: Any, operation: str) -> ColumnElement[bool] | None:
        """The condition rows of ``table`` (a Table, or its columns) must meet for
        ``operation`` (select, count, update, delete) in ``context``, or ``None``."""
        columns = getattr(table, "c", table)
        parts: list[ColumnElement[bool]] = []
        if self.tenant_column is not None:
            parts.append(columns[self.tenant_column] == context.tenant_id)
        parts += [condition(predicate, context, columns) for predicate in self.filters]
        allows = self.allows.get("select" if operation == "count" else operation)
        if allows:
            parts.append(or_(*(condition(p, context, columns) for p in allows)))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else and_(*parts)

    def prepare_rows(
        self, context: RLSContext | None, rows: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Rows to insert, with the tenant filled in; refuse another tenant's or a failed
        check."""
        context = self.require(context)
        if context.system:
            return rows
        column = self.tenant_column
        if column is not None:
            tenant = context.tenant_id
            for row in rows:
                if column in row and row[column] != tenant:
                    raise RLSPolicyError(
                        f"cannot create a row of {self.table!r} for tenant {row[column]!r} "
                        f"as tenant {tenant!r}",
                        table=self.table,
                    )
            rows = [{**row, column: tenant} for row in rows]
        self._check(context, "insert", rows)
        return rows

    def prepare_values(self, context: RLSContext | None, values: dict[str, Any]) -> dict[str, Any]:
        """Values of an update: refuse moving rows to another tenant or a failed check."""
        context = self.require(context)
        if context.system:
            return values
        column = self.tenant_column
        if column is not None and column in values and values[column] != context.tenant_id:
            raise RLSPolicyError(
                f"cannot move rows of {self.table!r} to tenant {values[column]!r} "
                f"as tenant {context.tenant_id!r}",
                table=self.table,
            )
        self._check(context, "update", [values])
        return values

    def require(self, context: RLSContext | None) -> RLSContext:
        """``context``, or `RLSContextError` when there is none."""
        if context is None:
            raise RLSContextError(tables=[self.table])
        return context

    def _check(self, context: RLSContext, operation: str, rows: list[dict[str, Any]]) -> None:
        for check in self.checks:
            if operation in check.operations:
                for row in rows:
                    if not check.predicate(context, row):
                        raise RLSPolicyError(
                            f"a policy check of {self.table!r} refused the {operation} of "
                            f"{sorted(row)}",
                            table=self.table,
                        )
