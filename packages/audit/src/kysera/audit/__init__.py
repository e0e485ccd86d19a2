"""kysera.audit: log every write of a repository in the same transaction."""

from kysera.audit.errors import AuditRestoreError as AuditRestoreError

__all__ = ["AuditRestoreError"]
