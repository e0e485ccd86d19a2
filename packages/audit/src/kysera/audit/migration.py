"""A ready-made migration creating the audit log table, for kysera-migrations.

```python
from kysera.audit import audit_migration_down, audit_migration_up
from kysera.migrations import migration

migrations = [migration("001_audit_logs", up=audit_migration_up, down=audit_migration_down)]
```

Or, in a migrations directory, a file ``001_audit_logs.py`` containing
``from kysera.audit import audit_migration_up as up, audit_migration_down as down``.
For another table name, use `audit_migration("my_audit")`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncConnection

from kysera.audit.table import audit_log_table, create_audit_table

__all__ = ["audit_migration", "audit_migration_down", "audit_migration_up"]

_Step = Callable[[AsyncConnection], Awaitable[None]]


def audit_migration(table: str = "audit_logs") -> tuple[_Step, _Step]:
    """The ``(up, down)`` pair creating / dropping the audit table named ``table``."""

    async def up(connection: AsyncConnection) -> None:
        await create_audit_table(connection, table)

    async def down(connection: AsyncConnection) -> None:
        await connection.run_sync(audit_log_table(MetaData(), table).drop, checkfirst=True)

    return up, down


audit_migration_up, audit_migration_down = audit_migration()
"""Migration steps for the default ``audit_logs`` table: ``up(conn)`` / ``down(conn)``."""
