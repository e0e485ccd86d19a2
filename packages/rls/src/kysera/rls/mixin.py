"""`RLSMixin`: what row-level security adds to the repositories of protected tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from kysera.repository import Repository
from kysera.rls._rules import TableRules
from kysera.rls.context import current_context
from kysera.rls.errors import RLSPolicyError

__all__ = ["RLSMixin"]


class RLSMixin(Repository[Any]):
    """Inserts get the context's tenant, updates cannot move rows, checks run on the values.

    Reads, updates and deletes are scoped by `RLSPlugin`'s statement interceptor, so every
    path (bulk ones, counters, soft delete) is scoped the same way.
    """

    rls_rules: ClassVar[TableRules]

    def prepare_insert(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.rls_rules.prepare_rows(current_context(), super().prepare_insert(rows))

    def prepare_update(self, values: dict[str, Any]) -> dict[str, Any]:
        return self.rls_rules.prepare_values(current_context(), super().prepare_update(values))

    async def upsert_many(
        self,
        rows: Iterable[Any],
        conflict: Sequence[str] | None = None,
        update: Sequence[str] | None = None,
        **options: Any,
    ) -> list[Any]:
        """Upsert, insisting that the conflict key contains the tenant column: otherwise the
        upsert could find, and overwrite, another tenant's row.

        Raises:
            RLSPolicyError: The conflict key lacks the tenant column.
        """
        column = self.rls_rules.tenant_column
        context = current_context()
        system = context is not None and context.system
        if column is not None and not system and column not in (conflict or self.primary_key):
            raise RLSPolicyError(
                f"an upsert of {self.table.name!r} must have {column!r} in its conflict key "
                "(conflict=[...]), so that it can only match rows of the current tenant",
                table=self.table.name,
            )
        return await super().upsert_many(rows, conflict=conflict, update=update, **options)
