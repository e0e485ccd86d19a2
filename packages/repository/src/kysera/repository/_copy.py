"""Bulk insert through PostgreSQL's COPY on asyncpg: the fastest way in for many rows.

``create_many(rows, returning=False)`` uses it for large batches when nothing needs the
inserted rows back and no plugin changed the INSERT statement. Values go through the same
SQLAlchemy bind processors an executemany would apply (JSON, enums, TypeDecorators), so the
database receives what the INSERT would have sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["COPY_THRESHOLD", "can_copy", "copy_rows"]

COPY_THRESHOLD = 500
"""Below this many rows an executemany is as fast, and simpler to trace."""


def can_copy(connection: AsyncConnection, row_count: int) -> bool:
    """Whether ``copy_rows`` applies: asyncpg, and enough rows to be worth it."""
    return row_count >= COPY_THRESHOLD and connection.dialect.driver == "asyncpg"


async def copy_rows(
    connection: AsyncConnection,
    table: Table,
    groups: Sequence[Sequence[dict[str, Any]]],
) -> None:
    """COPY every group of rows (each group sets one set of columns) in one transaction.

    Runs in the connection's open transaction (as a savepoint of asyncpg's), or in a
    transaction of its own that commits here when none is open on the server.
    """
    dialect = connection.dialect
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    async with driver.transaction():
        for group in groups:
            names = list(group[0])
            columns = [table.c[name] for name in names]
            processors: list[Callable[[Any], Any] | None] = [
                column.type.dialect_impl(dialect).bind_processor(dialect) for column in columns
            ]
            if any(processors):
                records = [
                    tuple(
                        value if process is None else process(value)
                        for process, value in zip(
                            processors, (row[name] for name in names), strict=True
                        )
                    )
                    for row in group
                ]
            else:
                records = [tuple(row[name] for name in names) for row in group]
            await driver.copy_records_to_table(
                table.name,
                records=records,
                columns=[column.name for column in columns],
                schema_name=table.schema,
            )
