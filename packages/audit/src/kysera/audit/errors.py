"""Errors raised by kysera.audit.

```
KyseraError (kysera.core)
└── AuditRestoreError     AUDIT_RESTORE_ERROR    .audit_id
```
"""

from __future__ import annotations

from typing import Any, ClassVar

from kysera.core import KyseraError

__all__ = ["AuditRestoreError"]


class AuditRestoreError(KyseraError):
    """An audit entry cannot be restored (an INSERT entry, or its values were not captured).

    Attributes:
        audit_id: The id of the audit log entry.
    """

    code: ClassVar[str] = "AUDIT_RESTORE_ERROR"

    def __init__(self, message: str = "", *, audit_id: Any = None) -> None:
        super().__init__(message or f"audit entry {audit_id!r} cannot be restored")
        self.audit_id = audit_id

    def _details(self) -> dict[str, Any]:
        return {"audit_id": self.audit_id}
