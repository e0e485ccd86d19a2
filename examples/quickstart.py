"""Kysera quickstart: runs on SQLite with no server.

    python examples/quickstart.py

For now it shows kysera.core's classified errors on a real SQLite database; it grows as the
other packages land.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from kysera.core import (
    DatabaseError,
    UniqueConstraintError,
    classify_database_errors,
    is_transient_error,
)

metadata = sa.MetaData()
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(200), nullable=False, unique=True),
    sa.Column("age", sa.Integer, sa.CheckConstraint("age >= 0", name="ck_users_age")),
)


async def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        engine = create_async_engine(f"sqlite+aiosqlite:///{Path(directory) / 'quickstart.db'}")
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(users.insert(), {"email": "ada@example.com", "age": 36})

        print("1. A duplicate email becomes a UniqueConstraintError, not a driver exception:")
        try:
            async with engine.begin() as conn, classify_database_errors():
                await conn.execute(users.insert(), {"email": "ada@example.com", "age": 37})
        except UniqueConstraintError as error:
            print(f"   {type(error).__name__}: table={error.table} columns={error.columns}")
            cause = type(error.__cause__).__name__
            print(f"   native code {error.sqlstate}; the driver's error: {cause}")
            print(f"   transient (worth retrying)? {is_transient_error(error)}")

        print("2. Every error serialises for an API response:")
        try:
            async with engine.begin() as conn, classify_database_errors():
                await conn.execute(users.insert(), {"email": "bob@example.com", "age": -1})
        except DatabaseError as error:
            print("   " + json.dumps(error.to_dict()))

        async with engine.connect() as conn:
            count = await conn.scalar(sa.select(sa.func.count()).select_from(users))
        print(f"3. Nothing half-written: the table still holds {count} row.")
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
