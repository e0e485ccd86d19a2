"""Database URLs as platforms hand them out, turned into the async URLs Kysera runs on.

``postgresql://``, ``postgres://``, ``mysql://``, ``sqlite:///`` and the sync drivers
(``psycopg2``, ``pymysql``, ``pysqlite``...) name no async driver, and ``create_async_engine``
fails on them with messages that do not say so ("No module named 'psycopg'", "pysqlite is not
async"). `async_url` gives each the async driver Kysera is tested with; `driver_extra` names
the ``kysera-core`` extra that installs it.
"""

from __future__ import annotations

import importlib.util

import sqlalchemy as sa
from sqlalchemy.engine import URL

from kysera.core.errors import BadRequestError

__all__ = ["async_url", "driver_extra"]

# backend (as written in the URL) -> the async driver Kysera tests with.
_ASYNC_DRIVERS = {
    "postgresql": "asyncpg",
    "postgres": "asyncpg",
    "mysql": "asyncmy",
    "mariadb": "asyncmy",
    "sqlite": "aiosqlite",
}
# The backend name Kysera's dialect checks know: SQLAlchemy's ``mariadb`` dialect is its MySQL
# dialect under another name (the MySQL dialect detects MariaDB itself), and Kysera's MariaDB
# support is written and tested against the ``mysql`` name.
_CANONICAL_BACKENDS = {"postgres": "postgresql", "mariadb": "mysql"}
# Drivers that cannot run under create_async_engine, replaced by the backend's async driver.
_SYNC_DRIVERS = {"psycopg2", "pg8000", "pymysql", "mysqldb", "mysqlconnector", "pysqlite"}
# async driver -> the kysera-core extra that installs it.
_EXTRAS = {
    "asyncpg": "postgresql",
    "psycopg": "postgresql",
    "aiomysql": "aiomysql",
    "asyncmy": "mysql",
    "aiosqlite": "sqlite",
}


def async_url(url: str | URL) -> URL:
    """Return ``url`` with an async driver: the one given, or the backend's tested default.

    ``postgresql://`` and ``postgres://`` get ``asyncpg``, ``mysql://`` and ``mariadb://`` get
    ``asyncmy`` (``aiomysql`` when only aiomysql is installed, as ``kysera-core[aiomysql]``
    does), ``sqlite://`` gets ``aiosqlite``; a sync driver (``psycopg2``, ``pymysql``,
    ``pysqlite``...) is replaced the same way. An async driver already named is kept.
    ``mariadb`` becomes ``mysql`` (SQLAlchemy's MySQL dialect detects MariaDB; Kysera's
    MariaDB support is tested through it) and ``postgres`` becomes ``postgresql``.

    Args:
        url: A database URL, as a string or a SQLAlchemy `URL`.

    Returns:
        A `URL` to pass to ``create_async_engine``.

    Raises:
        BadRequestError: ``url`` is not a database URL.

    Example:
        >>> str(async_url("postgres://app@db.example.com/shop"))
        'postgresql+asyncpg://app@db.example.com/shop'
    """
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise BadRequestError(f"not a database URL: {exc}") from exc
    backend, _, driver = parsed.drivername.partition("+")
    default = _ASYNC_DRIVERS.get(backend)
    if default is None:
        return parsed
    canonical = _CANONICAL_BACKENDS.get(backend, backend)
    if driver and driver not in _SYNC_DRIVERS:
        return parsed.set(drivername=f"{canonical}+{driver}")
    if default == "asyncmy" and not _installed("asyncmy") and _installed("aiomysql"):
        default = "aiomysql"
    return parsed.set(drivername=f"{canonical}+{default}")


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def driver_extra(url: str | URL) -> str | None:
    """The ``kysera-core`` extra that installs the driver of ``url``, if one does.

    Example:
        >>> driver_extra("mysql://root@localhost/shop")
        'mysql'
    """
    return _EXTRAS.get(async_url(url).get_driver_name())
