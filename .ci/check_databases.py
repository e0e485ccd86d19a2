"""Exit non-zero with a clear message when a database URL's server does not accept TCP.

With ``--connect`` (run from a virtualenv holding asyncpg and aiomysql) it also logs in to each
URL's database, so that a missing database is reported here, in one line, rather than by
every test. (The pytest plugin creates a missing test database; a server that refuses to, or
a login that fails, is still worth knowing before the suite starts.)
"""

from __future__ import annotations

import asyncio
import socket
import sys
from urllib.parse import unquote, urlsplit

DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}


def main(urls: list[str]) -> int:
    failed = False
    for url in urls:
        parts = urlsplit(url)
        backend = parts.scheme.partition("+")[0]
        host = parts.hostname or "127.0.0.1"
        port = parts.port or DEFAULT_PORTS.get(backend, 0)
        try:
            with socket.create_connection((host, port), timeout=5):
                print(f"ci: {backend} reachable at {host}:{port}")
        except OSError as exc:
            print(
                f"ci: {backend} is UNREACHABLE at {host}:{port} ({exc}); "
                "the tests need it, so CI stops here",
                file=sys.stderr,
            )
            failed = True
    return 1 if failed else 0


async def _log_in(url: str) -> None:
    parts = urlsplit(url)
    backend = parts.scheme.partition("+")[0]
    login = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or DEFAULT_PORTS.get(backend, 0),
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
    }
    database = parts.path.lstrip("/")
    if backend == "postgresql":
        import asyncpg

        connection = await asyncpg.connect(database=database, **login)
        await connection.close()
    else:
        import aiomysql

        mysql_connection = await aiomysql.connect(db=database, **login)
        mysql_connection.close()


def check_databases(urls: list[str]) -> int:
    """Log in to each URL's database; say which is missing or refuses the login."""
    failed = False
    for url in urls:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.partition("+")[0], 0)
        shown = f"{parts.hostname}:{port}{parts.path}"
        try:
            asyncio.run(_log_in(url))
            print(f"ci: database {shown} exists and accepts the login")
        except Exception as exc:
            print(
                f"ci: cannot use the database {shown} ({type(exc).__name__}: {exc}); "
                "create it (or fix the URL) before running the tests",
                file=sys.stderr,
            )
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments[:1] == ["--connect"]:
        sys.exit(main(arguments[1:]) or check_databases(arguments[1:]))
    sys.exit(main(arguments))
