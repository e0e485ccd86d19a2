"""The bookkeeping table: one row per applied migration, ordered by a monotonic id.

``id`` is an auto-increment primary key (``AUTOINCREMENT`` on SQLite, so ids are never
reused), ``name`` is unique, ``checksum`` is the SHA-256 of the migration's code when it
ran, ``applied_at`` is naive UTC (the same on every dialect), ``duration_ms`` is how long
``up()`` took.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from kysera.migrations.migration import MAX_NAME_LENGTH, Migration
from kysera.migrations.results import AppliedMigration

__all__: list[str] = []  # used by the runner only

DEFAULT_TABLE = "kysera_migrations"
"""The default name of the bookkeeping table."""


class BookkeepingTable:
    """Reads and writes the bookkeeping table on a connection the caller manages.

    Args:
        name: The table's name.
    """

    __slots__ = ("name", "table")

    def __init__(self, name: str = DEFAULT_TABLE) -> None:
        self.name = name
        self.table = sa.Table(
            name,
            sa.MetaData(),
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("name", sa.String(MAX_NAME_LENGTH), nullable=False, unique=True),
            sa.Column("checksum", sa.String(64), nullable=False),
            sa.Column("applied_at", sa.DateTime(), nullable=False),
            sa.Column("duration_ms", sa.Integer, nullable=False),
            sqlite_autoincrement=True,
        )

    async def exists(self, conn: AsyncConnection) -> bool:
        """Tell whether the table exists (without creating it)."""
        return await conn.run_sync(lambda sync: sa.inspect(sync).has_table(self.name))

    async def create(self, conn: AsyncConnection) -> None:
        """Create the table unless it exists."""
        await conn.run_sync(lambda sync: self.table.create(sync, checkfirst=True))

    async def read(self, conn: AsyncConnection) -> list[AppliedMigration]:
        """Every applied migration, ordered by id."""
        result = await conn.execute(sa.select(self.table).order_by(self.table.c.id))
        return [_record(row) for row in result.mappings()]

    async def find(self, conn: AsyncConnection, name: str) -> AppliedMigration | None:
        """The row of the migration called ``name``, or ``None`` if it is not applied."""
        result = await conn.execute(sa.select(self.table).where(self.table.c.name == name))
        row = result.mappings().first()
        return _record(row) if row is not None else None

    async def latest(self, conn: AsyncConnection) -> AppliedMigration | None:
        """The most recently applied migration (highest id), or ``None``."""
        statement = sa.select(self.table).order_by(self.table.c.id.desc()).limit(1)
        row = (await conn.execute(statement)).mappings().first()
        return _record(row) if row is not None else None

    async def insert(self, conn: AsyncConnection, migration: Migration, duration_ms: int) -> None:
        """Record ``migration`` as applied."""
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
        await conn.execute(
            sa.insert(self.table).values(
                name=migration.name,
                checksum=migration.checksum,
                applied_at=now,
                duration_ms=duration_ms,
            )
        )

    async def update_checksum(self, conn: AsyncConnection, name: str, checksum: str) -> None:
        """Record ``checksum`` as the code of the applied migration ``name``."""
        await conn.execute(
            sa.update(self.table).where(self.table.c.name == name).values(checksum=checksum)
        )

    async def delete(self, conn: AsyncConnection, name: str) -> None:
        """Forget the migration called ``name`` (it was rolled back)."""
        await conn.execute(sa.delete(self.table).where(self.table.c.name == name))


def _record(row: sa.RowMapping) -> AppliedMigration:
    applied_at: dt.datetime = row["applied_at"]
    return AppliedMigration(
        id=int(row["id"]),
        name=str(row["name"]),
        checksum=str(row["checksum"]),
        applied_at=applied_at.replace(tzinfo=dt.UTC),
        duration_ms=int(row["duration_ms"]),
    )
