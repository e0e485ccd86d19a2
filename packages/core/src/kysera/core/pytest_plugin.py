"""Kysera's pytest plugin (entry point ``pytest11``): database fixtures for async tests.

Nothing happens unless a test uses one of the fixtures: the module imports no driver and
creates no engine on its own.

Which databases a test runs on:

* ``--kysera-db-url URL`` (repeatable) or ``KYSERA_TEST_DATABASE_URL`` (whitespace-separated
  URLs), when given, is the list;
* otherwise a temporary SQLite file, plus ``KYSERA_TEST_POSTGRES_URL`` and
  ``KYSERA_TEST_MYSQL_URL`` when they are set.

A test that uses ``kysera_engine`` (or ``kysera_database_url``, ``kysera_connection``,
``kysera_queries``) runs once per database, with the backend name as its id:
``test_insert[sqlite]``, ``test_insert[postgresql]``, ...
``@pytest.mark.kysera_databases("postgresql", "mysql")`` keeps a test to those backends.

Fixtures:

* ``kysera_engine``: a session-scoped `AsyncEngine` for the database.
* ``kysera_connection``: a function-scoped `AsyncConnection` in a transaction that is rolled
  back after the test, in savepoint mode: code under test may call ``commit()``,
  ``rollback()``, ``begin()`` and ``begin_nested()`` on it and still leaves nothing behind
  (see `kysera.core.testing.rollback_transaction`).
* ``kysera_queries``: a `kysera.core.capture.capture_queries` recording on that connection.

SQLite engines made here get ``PRAGMA foreign_keys=ON`` and SQLAlchemy's pysqlite recipe for
real transactions (the driver's own transaction handling switched off, ``BEGIN`` emitted
when SQLAlchemy begins a transaction), so
savepoints and transactional DDL behave on SQLite as on PostgreSQL.

The engine is session-scoped and pooled, so tests using the fixtures should run in the session
event loop (``asyncio_default_test_loop_scope = "session"`` and
``asyncio_default_fixture_loop_scope = "session"`` in the pytest configuration).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from kysera.core.capture import QueryProfiler

DATABASE_URL_ENV = "KYSERA_TEST_DATABASE_URL"
POSTGRES_URL_ENV = "KYSERA_TEST_POSTGRES_URL"
MYSQL_URL_ENV = "KYSERA_TEST_MYSQL_URL"
TEMPORARY_SQLITE = "sqlite+aiosqlite:///<temporary file>"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kysera", "Kysera database fixtures")
    group.addoption(
        "--kysera-db-url",
        action="append",
        dest="kysera_db_urls",
        metavar="URL",
        default=None,
        help=(
            f"database URL for the kysera fixtures; repeat it to run each database test on "
            f"several databases (default: ${DATABASE_URL_ENV}, else a temporary SQLite file "
            f"plus ${POSTGRES_URL_ENV} and ${MYSQL_URL_ENV} when set)"
        ),
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "kysera_databases(*backends): run this database test only on these backends "
        "(e.g. 'postgresql', 'mysql', 'sqlite')",
    )


def configured_database_urls(config: pytest.Config) -> list[str]:
    """Return the database URLs the kysera fixtures run on, in order."""
    urls: list[str] | None = config.getoption("kysera_db_urls")
    if urls:
        return list(urls)
    from_env = os.environ.get(DATABASE_URL_ENV, "").split()
    if from_env:
        return from_env
    return [TEMPORARY_SQLITE] + [
        url for url in (os.environ.get(POSTGRES_URL_ENV), os.environ.get(MYSQL_URL_ENV)) if url
    ]


def database_backend(url: str) -> str:
    """Return the backend of a URL: ``"postgresql+asyncpg://..."`` gives ``"postgresql"``.

    MariaDB URLs count as ``"mysql"``: one family, one set of tests.
    """
    backend = url.partition(":")[0].partition("+")[0]
    return "mysql" if backend == "mariadb" else backend


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "kysera_database_url" not in metafunc.fixturenames:
        return
    urls = configured_database_urls(metafunc.config)
    marker = metafunc.definition.get_closest_marker("kysera_databases")
    if marker is not None:
        urls = [url for url in urls if database_backend(url) in marker.args]
    metafunc.parametrize(
        "kysera_database_url",
        urls,
        ids=[database_backend(url) for url in urls],
        indirect=True,
        scope="session",
    )


@pytest.fixture(scope="session")
def kysera_database_url(request: pytest.FixtureRequest) -> str:
    """The URL of the database this test runs on (one of `configured_database_urls`)."""
    url: str = request.param
    if url == TEMPORARY_SQLITE:
        directory = request.getfixturevalue("tmp_path_factory").mktemp("kysera")
        return f"sqlite+aiosqlite:///{directory / 'test.db'}"
    return url


def create_test_engine(url: str, **options: Any) -> AsyncEngine:
    """Create an engine for tests.

    SQLite gets ``PRAGMA foreign_keys=ON`` on every connection and real transactions
    (SQLAlchemy's pysqlite/aiosqlite SAVEPOINT recipe).
    """
    from sqlalchemy import event
    from sqlalchemy.ext.asyncio import create_async_engine

    from kysera.core.testing._sqlite import use_real_transactions

    engine = create_async_engine(url, **options)
    if engine.dialect.name == "sqlite":
        use_real_transactions(engine)

        @event.listens_for(engine.sync_engine, "connect")
        def _enable_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the async fixtures need pytest-asyncio
    HAS_PYTEST_ASYNCIO = False
else:
    HAS_PYTEST_ASYNCIO = True

if HAS_PYTEST_ASYNCIO:

    @pytest_asyncio.fixture(scope="session", loop_scope="session")
    async def kysera_engine(kysera_database_url: str) -> AsyncIterator[AsyncEngine]:
        """A session-scoped `AsyncEngine` for the database this test runs on."""
        engine = create_test_engine(kysera_database_url)
        try:
            yield engine
        finally:
            await engine.dispose()

    @pytest_asyncio.fixture(loop_scope="session")
    async def kysera_connection(kysera_engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction rolled back after the test (savepoint mode)."""
        from kysera.core.testing import rollback_transaction

        async with rollback_transaction(kysera_engine) as connection:
            yield connection

    @pytest_asyncio.fixture(loop_scope="session")
    async def kysera_queries(kysera_connection: AsyncConnection) -> AsyncIterator[QueryProfiler]:
        """The statements run on ``kysera_connection`` during the test (``capture_queries``)."""
        from kysera.core.capture import capture_queries

        with capture_queries(kysera_connection) as queries:
            yield queries
