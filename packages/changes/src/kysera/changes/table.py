"""The change table and its one-row id counter."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["ChangeTables", "change_tables", "create_change_tables"]


class _UtcDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every dialect (naive UTC where the column has no
    time zone: MySQL/MariaDB ``DATETIME(6)``, SQLite), read back as aware UTC."""

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
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)  # type: ignore[no-any-return]
        return value.astimezone(dt.UTC)  # type: ignore[no-any-return]


class ChangeTables:
    """The two tables of a change feed.

    Attributes:
        changes: One row per changed entity: ``id`` (dense, in commit order),
            ``table_name``, ``entity_key`` (the primary key as a JSON list),
            ``operation``, ``changed_columns`` (JSON list) and ``changed_at`` (UTC).
        counter: One row holding the last id given out (``{name}_counter``). Writers
            lock it to take ids, so ids are given out in commit order (see
            `ChangeFeedPlugin`).
    """

    __slots__ = ("changes", "counter")

    def __init__(self, changes: Table, counter: Table) -> None:
        self.changes = changes
        self.counter = counter


def change_tables(metadata: MetaData, name: str = "kysera_changes") -> ChangeTables:
    """Define the change table ``name`` and its counter ``{name}_counter`` in ``metadata``."""
    changes = Table(
        name,
        metadata,
        Column(
            "id",
            BigInteger().with_variant(Integer, "sqlite"),
            primary_key=True,
            autoincrement=False,
        ),
        Column("table_name", String(255), nullable=False),
        Column("entity_key", Text, nullable=False),
        Column("operation", String(16), nullable=False),
        Column("changed_columns", JSON, nullable=False),
        Column("changed_at", _UtcDateTime(), nullable=False),
        Index(f"ix_{name}_changed_at", "changed_at"),
    )
    counter = Table(
        f"{name}_counter",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("last_id", BigInteger, nullable=False),
    )
    return ChangeTables(changes, counter)


async def create_change_tables(
    executor: AsyncEngine | AsyncConnection, name: str = "kysera_changes"
) -> ChangeTables:
    """Create the change table and its counter (if they do not exist)."""
    tables = change_tables(MetaData(), name)
    if isinstance(executor, AsyncConnection):
        await executor.run_sync(tables.changes.metadata.create_all)
    else:
        async with executor.begin() as connection:
            await connection.run_sync(tables.changes.metadata.create_all)
    return tables
