"""The audit log table: its definition and how to create it on any dialect."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.types import DateTime, TypeDecorator

from kysera.core import classify_database_errors

__all__ = ["AUDIT_OPERATIONS", "audit_log_table", "create_audit_table"]

AUDIT_OPERATIONS = ("INSERT", "UPDATE", "DELETE", "SOFT_DELETE", "RESTORE")
"""The values of the ``operation`` column."""

# JSONB on PostgreSQL, JSON on MySQL/MariaDB, JSON stored as TEXT on SQLite.
_JSON = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class _UtcDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every dialect.

    PostgreSQL stores ``timestamptz``; MySQL/MariaDB (``DATETIME(6)``) and SQLite store the
    naive UTC time, which is read back as aware UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=dialect.name == "postgresql"))

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        if dialect.name == "postgresql":
            return value
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # pragma: no cover - SQLite returns datetimes already
            value = dt.datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)  # type: ignore[no-any-return]
        return value.astimezone(dt.UTC)  # type: ignore[no-any-return]


def audit_log_table(metadata: MetaData, name: str = "audit_logs") -> Table:
    """Define the audit log table in ``metadata`` (or return it if already defined).

    Columns: ``id`` (autoincrement), ``table_name``, ``entity_id`` (the primary key as text;
    a JSON list for composite keys), ``operation`` (``INSERT``, ``UPDATE``, ``DELETE``,
    ``SOFT_DELETE``, ``RESTORE``), ``old_values``, ``new_values``, ``changed_fields`` (JSON),
    ``changed_by``, ``changed_at`` (UTC) and ``metadata`` (JSON). Indexed for the queries of
    the audit methods: by entity, by actor and by time.

    Args:
        metadata: The `MetaData` to define it in (yours, for Alembic or ``create_all``).
        name: The table name.

    Returns:
        The table.
    """
    existing = metadata.tables.get(name)
    if existing is not None:
        return existing
    return Table(
        name,
        metadata,
        Column(
            "id",
            BigInteger().with_variant(Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        Column("table_name", String(255), nullable=False),
        Column("entity_id", String(255), nullable=False),
        Column("operation", String(16), nullable=False),
        Column("old_values", _JSON, nullable=True),
        Column("new_values", _JSON, nullable=True),
        Column("changed_fields", _JSON, nullable=True),
        Column("changed_by", String(255), nullable=True),
        Column("changed_at", _UtcDateTime(), nullable=False),
        Column("metadata", _JSON, nullable=True),
        Index(f"ix_{name}_entity", "table_name", "entity_id"),
        Index(f"ix_{name}_changed_at", "changed_at"),
        Index(f"ix_{name}_changed_by", "changed_by"),
    )


async def create_audit_table(
    metadata_or_conn: MetaData | AsyncEngine | AsyncConnection, name: str = "audit_logs"
) -> Table:
    """Create the audit log table (if it does not exist), or define it in a `MetaData`.

    ```python
    await create_audit_table(engine)  # CREATE TABLE audit_logs ... (and its indexes)
    await create_audit_table(metadata)  # define only; create it with your schema
    ```

    Args:
        metadata_or_conn: An engine or connection to create the table on (a connection
            creates it in its transaction, which the caller commits), or a `MetaData` to
            define it in without touching a database.
        name: The table name (the plugin's ``table=``).

    Returns:
        The table.
    """
    if isinstance(metadata_or_conn, MetaData):
        return audit_log_table(metadata_or_conn, name)
    table = audit_log_table(MetaData(), name)
    with classify_database_errors():
        if isinstance(metadata_or_conn, AsyncConnection):
            await metadata_or_conn.run_sync(table.create, checkfirst=True)
        else:
            async with metadata_or_conn.begin() as connection:
                await connection.run_sync(table.create, checkfirst=True)
    return table
