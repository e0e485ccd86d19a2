"""`AuditPlugin`: log every write of the repositories of an ORM."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import Insert, MetaData, Select, Table

from kysera.audit._encoding import RowCodec
from kysera.audit._postgres import SingleStatementCreate, recordset_insert, rows_by_keys
from kysera.audit.mixin import AuditMixin
from kysera.audit.soft_delete_mixin import SoftDeleteAuditMixin
from kysera.audit.table import audit_log_table
from kysera.repository import PluginError, hookimpl

__all__ = ["AuditPlugin"]

# Tables that are never audited: the migration runner's bookkeeping table.
_ALWAYS_EXCLUDED = frozenset({"kysera_migrations"})


class AuditPlugin:
    """Log every write of audited repositories in the same transaction as the change.

    ```python
    orm = await create_orm(engine, plugins=[AuditPlugin()])
    users = orm.repository(users_table)
    with audit_context(user_id=42, request_id="r-1"):
        await users.update(7, {"email": "new@example.com"})
    history = await users.get_audit_history(7)
    ```

    Args:
        table: The name of the audit log table (create it with `create_audit_table`).
        capture_old_values: Store each row's values before the change.
        capture_new_values: Store each row's values after the change.
        skip_unchanged: Do not log updates that changed no column.
        get_user_id: Called for the actor when no `audit_context` gives one.
        get_metadata: Called for metadata, merged under the `audit_context` metadata.
        tables: Audit only these tables (default: every table).
        exclude_tables: Never audit these tables. The audit table itself and the
            migrations table are never audited.

    Raises:
        PluginError: (from ``create_orm``) soft delete is ordered outside the audit
            plugin, where its soft deletes and restores could not be logged.
    """

    name = "audit"
    # Outermost: the audit mixin sees (and logs) the rows as every other plugin left them,
    # and wraps soft delete's methods.
    priority = 1000

    def __init__(
        self,
        table: str = "audit_logs",
        capture_old_values: bool = True,
        capture_new_values: bool = True,
        skip_unchanged: bool = True,
        get_user_id: Callable[[], Any] | None = None,
        get_metadata: Callable[[], Mapping[str, Any] | None] | None = None,
        tables: Iterable[str] | None = None,
        exclude_tables: Iterable[str] = (),
    ) -> None:
        if not isinstance(table, str) or not table:
            raise TypeError(f"table must be the audit table's name, not {table!r}")
        self.table = table
        self.audit_table: Table = audit_log_table(MetaData(), table)
        self.capture_old_values = capture_old_values
        self.capture_new_values = capture_new_values
        self.skip_unchanged = skip_unchanged
        self.get_user_id = get_user_id
        self.get_metadata = get_metadata
        self.tables = None if tables is None else frozenset(tables)
        self.exclude_tables = frozenset(exclude_tables) | _ALWAYS_EXCLUDED | {table}
        self._codecs: dict[Table, RowCodec] = {}
        self._single_statement_creates: dict[Table, SingleStatementCreate] = {}
        self._rows_by_keys: dict[Table, Select[Any]] = {}
        self.recordset_insert: Insert = recordset_insert(self.audit_table)
        # One class each, so that the ORM can cache the composed repository classes.
        attributes = {"audit_plugin": self, "audit_log": self.audit_table}
        self._mixin = type("AuditMixin", (AuditMixin,), attributes)
        self._soft_delete_mixin = type("AuditMixin", (SoftDeleteAuditMixin,), attributes)

    def __repr__(self) -> str:
        return f"AuditPlugin(table={self.table!r})"

    def audits(self, table: Table) -> bool:
        """Whether writes to ``table`` are logged."""
        if table.name in self.exclude_tables:
            return False
        return self.tables is None or table.name in self.tables

    def codec(self, table: Table) -> RowCodec:
        """The JSON encoding of ``table``'s rows (built once per table)."""
        found = self._codecs.get(table)
        if found is None:
            found = self._codecs[table] = RowCodec(table)
        return found

    def single_statement_create(self, table: Table) -> SingleStatementCreate:
        """How an audited ``create`` on ``table`` logs in the same statement (PostgreSQL)."""
        found = self._single_statement_creates.get(table)
        if found is None:
            found = SingleStatementCreate(table, self.audit_table)
            self._single_statement_creates[table] = found
        return found

    def rows_by_keys(self, table: Table) -> Select[Any]:
        """The locking read of old rows by key on PostgreSQL (built once per table)."""
        found = self._rows_by_keys.get(table)
        if found is None:
            found = self._rows_by_keys[table] = rows_by_keys(table)
        return found

    @hookimpl
    def kysera_configure(self, orm: Any) -> None:
        names = orm.registry.names
        if "soft_delete" in names and names.index("soft_delete") < names.index(self.name):
            raise PluginError(
                f"plugin {self.name!r} must come before 'soft_delete' (outside it) to log soft "
                "deletes and restores; do not give 'soft_delete' a higher priority than "
                f"{self.name!r} ({self.priority}) or make {self.name!r} require it",
                plugins=[self.name, "soft_delete"],
            )

    @hookimpl
    def kysera_repository_mixin(self, table: Table, orm: Any) -> type | None:
        if not self.audits(table):
            return None
        if "soft_delete" in orm.registry.names:
            return self._soft_delete_mixin
        return self._mixin
