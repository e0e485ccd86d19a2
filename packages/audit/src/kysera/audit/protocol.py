"""A static type for audited repositories (plugin mixins are composed at run time)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from kysera.audit.entry import AuditLogEntry, AuditOperation

__all__ = ["AuditedRepository"]


class AuditedRepository(Protocol):
    """The methods `AuditPlugin` adds to a repository.

    Ask for ``repository_class=AuditRepository[User]`` to get them typed without a cast, or,
    for code that receives any repository, cast:

    ```python
    users = cast(AuditedRepository, orm.repository(users_table))
    ```
    """

    async def get_audit_history(
        self, id: Any, limit: int | None = None, offset: int = 0
    ) -> list[AuditLogEntry]:
        """The log entries of one row, newest first."""
        ...

    async def get_audit_log(self, audit_id: int) -> AuditLogEntry | None:
        """One log entry of this table, or ``None``."""
        ...

    async def get_table_audit_logs(
        self,
        operation: AuditOperation | None = None,
        user_id: Any = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[AuditLogEntry]:
        """The log entries of this table, newest first, optionally filtered."""
        ...

    async def get_user_changes(
        self, user_id: Any, limit: int | None = None, offset: int = 0
    ) -> list[AuditLogEntry]:
        """The changes one actor made to this table, newest first."""
        ...

    async def restore_from_audit(self, audit_id: int, **options: Any) -> Any:
        """Put a row back as it was before a logged change."""
        ...
