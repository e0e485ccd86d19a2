"""One audit log entry as the query methods return it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["AuditLogEntry", "AuditOperation"]

AuditOperation = Literal["INSERT", "UPDATE", "DELETE", "SOFT_DELETE", "RESTORE"]
"""What a logged change did."""


@dataclass(frozen=True)
class AuditLogEntry:
    """One row of the audit log, with its values decoded into Python types.

    Attributes:
        id: The entry's id (increasing in insertion order).
        table_name: The audited table.
        entity_id: The changed row's primary key as text (a JSON list for composite keys).
        operation: ``INSERT``, ``UPDATE``, ``DELETE``, ``SOFT_DELETE`` or ``RESTORE``.
        old_values: The row before the change (``None`` for inserts, or when not captured).
        new_values: The row after the change (``None`` for deletes, or when not captured).
        changed_fields: The columns whose values changed.
        changed_by: The actor, as text, or ``None``.
        changed_at: When the change was made (timezone-aware UTC).
        metadata: The metadata of the `audit_context`, or ``None``.
    """

    id: int
    table_name: str
    entity_id: str
    operation: AuditOperation
    old_values: dict[str, Any] | None
    new_values: dict[str, Any] | None
    changed_fields: list[str]
    changed_by: str | None
    changed_at: dt.datetime
    metadata: dict[str, Any] | None
