"""kysera.audit: log every write of a repository in the same transaction."""

from kysera.audit.commands import audit_command as audit_command
from kysera.audit.context import AuditActor as AuditActor
from kysera.audit.context import audit_context as audit_context
from kysera.audit.context import current_audit_actor as current_audit_actor
from kysera.audit.entry import AuditLogEntry as AuditLogEntry
from kysera.audit.entry import AuditOperation as AuditOperation
from kysera.audit.errors import AuditRestoreError as AuditRestoreError
from kysera.audit.migration import audit_migration as audit_migration
from kysera.audit.migration import audit_migration_down as audit_migration_down
from kysera.audit.migration import audit_migration_up as audit_migration_up
from kysera.audit.mixin import AuditMixin as AuditMixin
from kysera.audit.plugin import AuditPlugin as AuditPlugin
from kysera.audit.protocol import AuditedRepository as AuditedRepository
from kysera.audit.repository import AuditRepository as AuditRepository
from kysera.audit.retention import purge_audit_logs as purge_audit_logs
from kysera.audit.soft_delete_mixin import SoftDeleteAuditMixin as SoftDeleteAuditMixin
from kysera.audit.table import AUDIT_OPERATIONS as AUDIT_OPERATIONS
from kysera.audit.table import audit_log_table as audit_log_table
from kysera.audit.table import create_audit_table as create_audit_table

__all__ = [
    "AUDIT_OPERATIONS",
    "AuditActor",
    "AuditLogEntry",
    "AuditMixin",
    "AuditOperation",
    "AuditPlugin",
    "AuditRepository",
    "AuditRestoreError",
    "AuditedRepository",
    "SoftDeleteAuditMixin",
    "audit_command",
    "audit_context",
    "audit_log_table",
    "audit_migration",
    "audit_migration_down",
    "audit_migration_up",
    "create_audit_table",
    "current_audit_actor",
    "purge_audit_logs",
]
