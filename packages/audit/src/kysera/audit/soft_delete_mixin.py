"""Audit for repositories that also soft delete (kysera-soft-delete): soft deletes and
restores are logged as ``SOFT_DELETE`` / ``RESTORE``, hard deletes as ``DELETE``.

`AuditPlugin` uses this mixin instead of `AuditMixin` when the ORM has the ``soft_delete``
plugin. The soft delete methods are reached by name (``getattr`` on ``super()``), so
kysera-audit does not import kysera-soft-delete.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kysera.audit._base import _AUDITING, _Row, retried_on_conflict
from kysera.audit.entry import AuditOperation
from kysera.audit.mixin import AuditMixin
from kysera.core import NotFoundError

__all__ = ["SoftDeleteAuditMixin"]


class SoftDeleteAuditMixin(AuditMixin):
    """`AuditMixin` for repositories that soft delete too: soft delete and restore are
    logged as ``SOFT_DELETE`` / ``RESTORE``, hard deletes as ``DELETE``."""

    def _soft_delete_method(self, name: str) -> Any:
        """The soft delete plugin's method ``name`` (next in line after this mixin)."""
        return getattr(super(), name)

    @retried_on_conflict
    async def _audit_one(
        self, method: str, operation: AuditOperation, id: Any, options: dict[str, Any]
    ) -> Any:
        async with self._audited() as (bound, connection):
            old_rows = await self._audit_read_keys(connection, [id], options)
            result = await getattr(super(SoftDeleteAuditMixin, bound), method)(id, **options)
            new_rows = await self._audit_read_keys(
                connection, list(old_rows), options, read_back=True
            )
            changes = self._audit_pairs(operation, old_rows, new_rows.values())
            if operation == "DELETE":
                changes = [
                    ("DELETE", old, None) for key, old in old_rows.items() if key not in new_rows
                ]
            await self._audit_write(connection, changes)
        return result

    @retried_on_conflict
    async def _audit_many(
        self, method: str, operation: AuditOperation, ids: Iterable[Any], options: dict[str, Any]
    ) -> Any:
        ids = list(ids)
        async with self._audited() as (bound, connection):
            old_rows = await self._audit_read_keys(connection, ids, options)
            result = await getattr(super(SoftDeleteAuditMixin, bound), method)(ids, **options)
            new_rows = (
                await self._audit_read_keys(connection, list(old_rows), options, read_back=True)
                if old_rows
                else {}
            )
            if operation == "DELETE":
                changes: list[tuple[AuditOperation, _Row | None, _Row | None]] = [
                    ("DELETE", old, None) for key, old in old_rows.items() if key not in new_rows
                ]
            else:
                changes = [
                    change
                    for change in self._audit_pairs(operation, old_rows, new_rows.values())
                    if change[1] != change[2]
                ]
            await self._audit_write(connection, changes)
        return result

    async def soft_delete(self, id: Any, **options: Any) -> Any:
        """Soft delete one row and log a ``SOFT_DELETE``."""
        if _AUDITING.get():
            return await self._soft_delete_method("soft_delete")(id, **options)
        return await self._audit_one("soft_delete", "SOFT_DELETE", id, options)

    async def soft_delete_many(self, ids: Iterable[Any], **options: Any) -> Any:
        """Soft delete rows and log a ``SOFT_DELETE`` for each row that changed."""
        if _AUDITING.get():
            return await self._soft_delete_method("soft_delete_many")(ids, **options)
        return await self._audit_many("soft_delete_many", "SOFT_DELETE", ids, options)

    async def restore(self, id: Any, **options: Any) -> Any:
        """Restore one soft-deleted row and log a ``RESTORE``."""
        if _AUDITING.get():
            return await self._soft_delete_method("restore")(id, **options)
        return await self._audit_one("restore", "RESTORE", id, options)

    async def restore_many(self, ids: Iterable[Any], **options: Any) -> Any:
        """Restore soft-deleted rows and log a ``RESTORE`` for each row that changed."""
        if _AUDITING.get():
            return await self._soft_delete_method("restore_many")(ids, **options)
        return await self._audit_many("restore_many", "RESTORE", ids, options)

    async def hard_delete(self, id: Any, **options: Any) -> Any:
        """Delete one row for good and log a ``DELETE``."""
        if _AUDITING.get():
            return await self._soft_delete_method("hard_delete")(id, **options)
        return await self._audit_one("hard_delete", "DELETE", id, options)

    async def hard_delete_many(self, ids: Iterable[Any], **options: Any) -> Any:
        """Delete rows for good and log a ``DELETE`` for each row that existed."""
        if _AUDITING.get():
            return await self._soft_delete_method("hard_delete_many")(ids, **options)
        return await self._audit_many("hard_delete_many", "DELETE", ids, options)

    async def delete(self, id: Any, **options: Any) -> bool:
        """`Repository.delete`; when soft delete replaces delete, logged as ``SOFT_DELETE``."""
        if not _AUDITING.get() and getattr(self, "soft_delete_replaces_delete", False):
            try:
                await self.soft_delete(id, **options)
            except NotFoundError:
                return False
            return True
        return await super().delete(id, **options)

    async def delete_many(self, ids: Iterable[Any], **options: Any) -> int:
        """`Repository.delete_many`; when soft delete replaces delete, logged as
        ``SOFT_DELETE``."""
        if not _AUDITING.get() and getattr(self, "soft_delete_replaces_delete", False):
            return int(await self.soft_delete_many(ids, **options))
        return await super().delete_many(ids, **options)
