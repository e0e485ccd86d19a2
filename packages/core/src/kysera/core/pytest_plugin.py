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
* ``kysera_fault_proxy``: a `kysera.core.testing.FaultProxy` on 127.0.0.1 in front of the
  test's database server (PostgreSQL, MySQL/MariaDB), to drop, stall or cut connections.

For your own tables, `kysera_schema_fixture` makes a fixture in one line of a conftest::

    engine = kysera_schema_fixture(metadata)  # tables created once per database, emptied per test

It refuses (one message, and the session stops) to drop or empty tables in a database that
holds a migrations table, or tables named like the metadata's that it did not create, unless
the user opts in (ini ``kysera_allow_dropping_tables = true`` or
``KYSERA_TEST_ALLOW_DROPPING_TABLES=1``): see `kysera.core.testing._guard`. A missing
PostgreSQL/MySQL test database is created; an unusable one stops the session in one line.

SQLite engines made here get ``PRAGMA foreign_keys=ON`` and SQLAlchemy's pysqlite recipe for
real transactions (the driver's own transaction handling switched off, ``BEGIN`` emitted
when SQLAlchemy begins a transaction), so
savepoints and transactional DDL behave on SQLite as on PostgreSQL.

The engine is session-scoped and pooled, so tests using the fixtures run in the session event
loop: the plugin marks their async tests so (``asyncio(loop_scope="session")``) under any
pytest-asyncio mode, and refuses a test that asks for another loop explicitly. The user's own
async fixtures using them need the session loop too (``asyncio_default_test_loop_scope =
"session"`` and ``asyncio_default_fixture_loop_scope = "session"`` in the pytest
configuration do both).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

import pytest

if TYPE_CHECKING:
    from sqlalchemy import MetaData
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from kysera.core.capture import QueryProfiler
    from kysera.core.testing import FaultProxy
    from kysera.core.testing._schemas import SessionTables

DATABASE_URL_ENV = "KYSERA_TEST_DATABASE_URL"
POSTGRES_URL_ENV = "KYSERA_TEST_POSTGRES_URL"
MYSQL_URL_ENV = "KYSERA_TEST_MYSQL_URL"
TEMPORARY_SQLITE = "sqlite+aiosqlite:///<temporary file>"
ALLOW_DROPPING_INI = "kysera_allow_dropping_tables"
ALLOW_DROPPING_ENV = "KYSERA_TEST_ALLOW_DROPPING_TABLES"


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
    parser.addini(
        ALLOW_DROPPING_INI,
        type="bool",
        default=False,
        help=(
            "let kysera_schema_fixture drop and empty its tables in a database it did not set "
            f"up, even one holding a migrations table (also: ${ALLOW_DROPPING_ENV}=1). "
            "Use a dedicated test database instead."
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


def allow_dropping_tables(config: pytest.Config) -> bool:
    """Whether the user let `kysera_schema_fixture` drop tables in any database (opt-in)."""
    from_env = os.environ.get(ALLOW_DROPPING_ENV, "").strip().lower()
    return bool(config.getini(ALLOW_DROPPING_INI)) or from_env in {"1", "true", "yes"}


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
        if not urls:
            # Say what to set, rather than pytest's "got empty parameter set".
            metafunc.parametrize(
                "kysera_database_url",
                [
                    pytest.param(
                        None, id="no-database", marks=pytest.mark.skip(reason=_unset(marker.args))
                    )
                ],
                indirect=True,
                scope="session",
            )
            return
    # The session event loop for async tests, whatever pytest-asyncio's mode and defaults:
    # the engine is session-scoped, and a pooled connection cannot move between loops. As a
    # mark of the parameter, it also makes strict mode run an async test with no marker.
    session_loop = HAS_PYTEST_ASYNCIO and _is_async(metafunc.function)
    marks = [pytest.mark.asyncio(loop_scope="session")] if session_loop else []
    metafunc.parametrize(
        "kysera_database_url",
        [pytest.param(url, id=database_backend(url), marks=marks) for url in urls],
        indirect=True,
        scope="session",
    )


def _unset(backends: tuple[Any, ...]) -> str:
    """Why a test limited to ``backends`` has no database to run on, and what to set."""
    variables = {"postgresql": POSTGRES_URL_ENV, "mysql": MYSQL_URL_ENV}
    wanted = [f"${variables[b]}" for b in backends if b in variables] or ["--kysera-db-url"]
    return (
        f"runs on {', '.join(map(str, backends))} only: set {' or '.join(wanted)} "
        f"(or pass --kysera-db-url) to run it"
    )


def _is_async(function: Callable[..., Any]) -> bool:
    import inspect

    return inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the kysera fixtures' async tests in the session loop, or say what to change.

    A bare ``@pytest.mark.asyncio`` (the usual marker in strict mode) would take the default
    test loop scope, ``function`` unless configured: the session loop is put in front of it.
    A marker that asks for another loop explicitly cannot work with the session's engine.
    """
    for item in items:
        if "kysera_database_url" not in getattr(item, "fixturenames", ()):
            continue
        marker = item.get_closest_marker("asyncio")
        if marker is None:
            continue
        scope = marker.kwargs.get("loop_scope") or marker.kwargs.get("scope")
        if scope is None:
            item.own_markers.insert(0, pytest.mark.asyncio(loop_scope="session").mark)
        elif scope != "session":
            raise pytest.UsageError(
                f"{item.nodeid}: the kysera fixtures run in pytest-asyncio's session event "
                f"loop, but this test asks for loop_scope={scope!r}: use "
                f'@pytest.mark.asyncio(loop_scope="session") or no loop_scope (and give your '
                f'own async fixtures that use them loop_scope="session", or set '
                f"asyncio_default_fixture_loop_scope = session)"
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
    (SQLAlchemy's pysqlite/aiosqlite SAVEPOINT recipe). A SQLite file database is pooled
    (``AsyncAdaptedQueuePool``) on every SQLAlchemy version, as 2.0.38 and later do by
    default, so pool options mean the same everywhere.
    """
    from sqlalchemy import event, make_url
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import AsyncAdaptedQueuePool

    from kysera.core.testing._sqlite import use_real_transactions

    parsed = make_url(url)
    if (
        parsed.get_backend_name() == "sqlite"
        and parsed.database not in (None, "", ":memory:")
        and "poolclass" not in options
    ):
        options = {"poolclass": AsyncAdaptedQueuePool, **options}
    engine = create_async_engine(url, **options)
    if engine.dialect.name == "sqlite":
        use_real_transactions(engine)

        @event.listens_for(engine.sync_engine, "connect")
        def _enable_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine


async def ensure_test_database(url: str) -> None:
    """Create the URL's PostgreSQL/MySQL database when missing, or stop the session in one line.

    A server that cannot be reached, or refuses to create the database, ends the session with
    one message naming the URL rather than a traceback per test.
    """
    from sqlalchemy.engine import make_url

    from kysera.core.testing._databases import ensure_database

    try:
        await ensure_database(url)
    except Exception as error:
        shown = make_url(url).render_as_string(hide_password=True)
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        pytest.exit(
            f"kysera: cannot use the test database {shown}: {reason}",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


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
        await ensure_test_database(kysera_database_url)
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

    @pytest_asyncio.fixture(loop_scope="session")
    async def kysera_fault_proxy(kysera_database_url: str) -> AsyncIterator[FaultProxy]:
        """A `kysera.core.testing.FaultProxy` to this test's database server (not SQLite).

        Point a second engine at ``kysera_fault_proxy.url(kysera_database_url)``.
        """
        from sqlalchemy.engine import make_url

        from kysera.core.errors import BadRequestError
        from kysera.core.testing import FaultProxy

        url = make_url(kysera_database_url)
        if url.get_backend_name() == "sqlite":
            raise BadRequestError(
                "kysera_fault_proxy needs a database server; mark the test "
                '@pytest.mark.kysera_databases("postgresql", "mysql")'
            )
        default_port = 5432 if url.get_backend_name() == "postgresql" else 3306
        async with FaultProxy(url.host or "127.0.0.1", url.port or default_port) as proxy:
            yield proxy

    @pytest_asyncio.fixture(scope="session", loop_scope="session")
    async def _kysera_schemas(
        kysera_engine: AsyncEngine, request: pytest.FixtureRequest
    ) -> AsyncIterator[SessionTables]:
        """The tables `kysera_schema_fixture` fixtures created on this database (dropped last)."""
        from kysera.core.testing._schemas import SessionTables

        tables = SessionTables(kysera_engine, allow_dropping=allow_dropping_tables(request.config))
        try:
            yield tables
        finally:
            await tables.drop()


def kysera_schema_fixture(
    metadata: MetaData,
    *,
    clean: bool = True,
    strategy: Literal["delete", "truncate"] = "delete",
    autouse: bool = False,
) -> Callable[..., Awaitable[AsyncEngine]]:
    """Return a fixture giving tests ``kysera_engine`` with ``metadata``'s tables in place.

    Assign it to the name your tests use, in a conftest or a test module::

        from kysera.core.pytest_plugin import kysera_schema_fixture

        from myapp.schema import metadata

        engine = kysera_schema_fixture(metadata)


        async def test_signup(engine):  # runs once per configured database
            ...

    For tests whose code commits for real (it opens its own connections, or several
    connections must see each other's rows), where the rolled-back ``kysera_connection``
    does not fit:

    * the tables are created the first time a test of the session uses the fixture on a
      database (tables of the same names are dropped first: an interrupted run may have left
      them), and dropped at the end of the session. Only in a test database: one holding a
      migrations table, or one the plugin has not marked that already has these tables, is
      refused and the session stops, unless the user opted in (docs/testing.md);
    * with ``clean=True`` every table of ``metadata`` is emptied before each test that uses the
      fixture, by `kysera.core.testing.clean_database` (children before parents). Emptying
      before rather than after leaves a failed test's rows in place to look at, and a test
      that was interrupted cannot leave rows for the next one.

    Why a factory rather than a ``kysera_metadata`` fixture to override: the fixture takes the
    name the suite already uses, in one line, and several `MetaData` (one per test directory,
    or one for a single module) can share a session, each created once per database. A
    session-scoped fixture creating the tables of an overridable ``kysera_metadata`` would be
    cached with whichever `MetaData` asked first. Fixtures made from the same `MetaData` share
    its tables: they are created once, however many fixtures name them.

    Tests that use the fixture run on every configured database, as with ``kysera_engine``.
    A test that does not use it sees whatever the last test that did committed: keep tests
    that commit apart from ``kysera_connection`` tests on the same tables, or let those ask
    for the emptying fixture too.

    Args:
        metadata: The tables (of the database's default schema) the tests need.
        clean: Empty the tables before each test. ``False`` only makes sure they exist: for
            tests that use ``kysera_connection``, whose work is rolled back anyway.
        strategy: How to empty them (see `kysera.core.testing.clean_database`): ``"delete"``,
            or ``"truncate"``, which also restarts generated ids.
        autouse: Use the fixture in every test within its scope (the conftest's directory, or
            the module), without naming it.

    Returns:
        A function-scoped async fixture whose value is the session's ``kysera_engine``.

    Raises:
        BadRequestError: ``metadata`` is not a `MetaData`, or ``strategy`` is unknown.
        RuntimeError: pytest-asyncio is not installed (the ``testing`` extra).
    """
    from sqlalchemy import MetaData

    from kysera.core.errors import BadRequestError
    from kysera.core.testing.cleanup import STRATEGIES

    if not isinstance(metadata, MetaData):
        raise BadRequestError(
            f"kysera_schema_fixture takes a sqlalchemy MetaData, got {type(metadata).__name__}"
        )
    if strategy not in STRATEGIES:
        raise BadRequestError(
            f"unknown clean_database strategy {strategy!r}; use one of {', '.join(STRATEGIES)}"
        )
    if not HAS_PYTEST_ASYNCIO:  # pragma: no cover - installed with the testing extra
        raise RuntimeError(
            "kysera_schema_fixture needs pytest-asyncio: install kysera-core[testing]"
        )

    async def kysera_schema(
        kysera_engine: AsyncEngine, _kysera_schemas: SessionTables
    ) -> AsyncEngine:
        from kysera.core.testing import NotATestDatabaseError, clean_database

        try:
            await _kysera_schemas.ensure(metadata)
        except NotATestDatabaseError as error:
            # One message for the session, before any test touches the database.
            pytest.exit(f"{error.code}: {error}", returncode=pytest.ExitCode.USAGE_ERROR)
        if clean and metadata.tables:
            # In any order: clean_database orders them by the database's foreign keys (and,
            # unlike sorted_tables, copes with a cycle without a warning).
            await clean_database(kysera_engine, strategy, tables=list(metadata.tables.values()))
        return kysera_engine

    names = ", ".join(sorted(metadata.tables)) or "no tables"
    kysera_schema.__doc__ = (
        f"``kysera_engine`` with these tables created once per database"
        f"{' and emptied before the test' if clean else ''}: {names}."
    )
    return pytest_asyncio.fixture(kysera_schema, loop_scope="session", autouse=autouse)
