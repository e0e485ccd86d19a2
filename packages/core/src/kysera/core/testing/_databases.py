"""Make sure a test database exists before the pytest plugin's engine uses it.

A missing PostgreSQL or MySQL/MariaDB database is created (as pytest-postgresql does), from a
connection to the same server without that database: PostgreSQL's ``postgres`` maintenance
database, MySQL's server-level connection. SQLite files are created on connect anyway.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

__all__: list[str] = []


def server_url(target: URL) -> URL:
    """The URL of the server without the target database: ``postgres`` on PostgreSQL."""
    if target.get_backend_name() == "postgresql":
        return target.set(database="postgres")
    return URL.create(
        target.drivername,
        username=target.username,
        password=target.password,
        host=target.host,
        port=target.port,
        query=target.query,
    )


async def database_exists(url: str) -> bool:
    """Whether the database of a PostgreSQL or MySQL URL exists on its server.

    Raises:
        sqlalchemy.exc.DBAPIError: The server cannot be reached or refuses the login.
    """
    target = make_url(url)
    name = target.database
    if target.get_backend_name() == "postgresql":
        query = sa.text("SELECT 1 FROM pg_database WHERE datname = :name")
    else:
        query = sa.text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :name")
    engine = create_async_engine(server_url(target), poolclass=sa.NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.scalar(query, {"name": name}) is not None
    finally:
        await engine.dispose()


async def create_database(url: str) -> None:
    """Create the database of a PostgreSQL or MySQL URL (with the server's defaults)."""
    target = make_url(url)
    server = server_url(target)
    engine = create_async_engine(server, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            quoted = connection.dialect.identifier_preparer.quote_identifier(target.database or "")
            await connection.execute(sa.text(f"CREATE DATABASE {quoted}"))
    finally:
        await engine.dispose()


async def ensure_database(url: str) -> bool:
    """Create the database of ``url`` when it is missing; return whether it was created.

    SQLite and other backends are left alone (SQLite creates its file on connect).
    """
    target = make_url(url)
    if target.get_backend_name() not in {"postgresql", "mysql", "mariadb"} or not target.database:
        return False
    if await database_exists(url):
        return False
    await create_database(url)
    return True
