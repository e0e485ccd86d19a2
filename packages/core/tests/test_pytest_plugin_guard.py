"""The pytest plugin never loses data it did not create, and stops early on an unusable database.

Each case runs a pytest of its own (pytester) against a database made for it: an
application's database (migrated tables with rows) on every configured backend, a missing
PostgreSQL/MySQL database, and a server that cannot be reached.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from kysera.core.pytest_plugin import (
    ALLOW_DROPPING_ENV,
    TEMPORARY_SQLITE,
    configured_database_urls,
    database_backend,
)
from kysera.core.testing import NotATestDatabaseError
from kysera.core.testing._databases import (
    create_database,
    database_exists,
    server_url,
)
from kysera.core.testing._guard import MARKER_TABLE, claim_test_database

pytest_plugins = ["pytester"]

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
"""

# The application: two related tables, as its migrations created them, with 37 rows.
app_metadata = sa.MetaData()
authors = sa.Table(
    "fh_authors",
    app_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50), nullable=False),
)
books = sa.Table(
    "fh_books",
    app_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("author_id", sa.ForeignKey("fh_authors.id"), nullable=False),
)
migrations = sa.Table(
    "kysera_migrations",
    app_metadata,
    sa.Column("name", sa.String(100), primary_key=True),
)

CONFTEST = """
import sqlalchemy as sa

from kysera.core.pytest_plugin import kysera_schema_fixture

metadata = sa.MetaData()
sa.Table("fh_authors", metadata, sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("name", sa.String(50), nullable=False))
sa.Table("fh_books", metadata, sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("author_id", sa.ForeignKey("fh_authors.id"), nullable=False))

engine = kysera_schema_fixture(metadata)
"""

SUITE = """
async def test_one(engine):
    pass


async def test_two(engine):
    pass
"""


def server_urls(config: pytest.Config) -> list[str]:
    return [url for url in configured_database_urls(config) if url != TEMPORARY_SQLITE]


def sibling_url(url: str, suffix: str) -> str:
    """The URL of another database on the same server: ``<database><suffix>``."""
    target = make_url(url)
    return target.set(database=f"{target.database}{suffix}").render_as_string(hide_password=False)


async def drop_database(url: str) -> None:
    target = make_url(url)
    server = server_url(target)
    engine = create_async_engine(server, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            quoted = connection.dialect.identifier_preparer.quote_identifier(target.database or "")
            await connection.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted}"))
    finally:
        await engine.dispose()


@pytest.fixture
async def app_database(
    request: pytest.FixtureRequest, pytester: pytest.Pytester
) -> AsyncIterator[str]:
    """A database of its own on the backend of ``request.param``, dropped afterwards."""
    url: str = request.param
    if url == TEMPORARY_SQLITE:
        yield f"sqlite+aiosqlite:///{pytester.path / 'app.db'}"
        return
    app_url = sibling_url(url, "_fhapp")
    await drop_database(app_url)
    await create_database(app_url)
    try:
        yield app_url
    finally:
        await drop_database(app_url)


async def migrate_with_rows(url: str) -> None:
    engine = create_async_engine(url, poolclass=sa.NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(app_metadata.create_all)
            await connection.execute(migrations.insert(), [{"name": "001_authors_and_books"}])
            await connection.execute(authors.insert(), [{"id": 1, "name": "Le Guin"}])
            rows = [{"id": i, "author_id": 1} for i in range(1, 37)]
            await connection.execute(books.insert(), rows)
    finally:
        await engine.dispose()


async def table_counts(url: str) -> dict[str, int | None]:
    """Rows per application table; None for a table that does not exist."""
    engine = create_async_engine(url, poolclass=sa.NullPool)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
            return {
                table.name: (
                    await connection.scalar(sa.select(sa.func.count()).select_from(table))
                    if table.name in names
                    else None
                )
                for table in app_metadata.sorted_tables
            }
    finally:
        await engine.dispose()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "app_database" in metafunc.fixturenames:
        urls = configured_database_urls(metafunc.config)
        metafunc.parametrize(
            "app_database", urls, ids=[database_backend(url) for url in urls], indirect=True
        )


async def test_an_application_database_is_refused_and_left_intact(
    pytester: pytest.Pytester, app_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await migrate_with_rows(app_database)
    intact = {"fh_authors": 1, "fh_books": 36, "kysera_migrations": 1}
    assert await table_counts(app_database) == intact
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite=SUITE)
    monkeypatch.delenv(ALLOW_DROPPING_ENV, raising=False)

    result = pytester.runpytest_subprocess(f"--kysera-db-url={app_database}", "-p", "no:randomly")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert output.count("TESTING_NOT_A_TEST_DATABASE") == 1, output
    assert "holds the migrations table kysera_migrations" in output
    assert "kysera_allow_dropping_tables" in output
    assert await table_counts(app_database) == intact


async def test_tables_it_did_not_create_are_refused_without_a_migrations_table(
    app_database: str,
) -> None:
    await migrate_with_rows(app_database)
    engine = create_async_engine(app_database, poolclass=sa.NullPool)
    try:
        async with engine.begin() as connection:
            await connection.execute(sa.text("DROP TABLE kysera_migrations"))
        async with engine.begin() as connection:
            with pytest.raises(NotATestDatabaseError, match="existing tables fh_authors, fh_books"):
                await connection.run_sync(claim_test_database, app_metadata)
    finally:
        await engine.dispose()
    assert await table_counts(app_database) == {
        "fh_authors": 1,
        "fh_books": 36,
        "kysera_migrations": None,
    }


async def test_a_database_it_marked_or_an_opt_in_lets_it_drop_its_tables(
    pytester: pytest.Pytester, app_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await migrate_with_rows(app_database)
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite=SUITE)
    monkeypatch.setenv(ALLOW_DROPPING_ENV, "1")

    result = pytester.runpytest_subprocess(f"--kysera-db-url={app_database}", "-p", "no:randomly")

    result.assert_outcomes(passed=2)
    # The opted-in session dropped its tables at the end and marked the database as its own.
    counts = await table_counts(app_database)
    assert counts["fh_authors"] is None
    assert counts["fh_books"] is None
    engine = create_async_engine(app_database, poolclass=sa.NullPool)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(lambda sync: sa.inspect(sync).has_table(MARKER_TABLE))
    finally:
        await engine.dispose()


async def test_a_missing_test_database_is_created(
    pytester: pytest.Pytester, request: pytest.FixtureRequest
) -> None:
    urls = [sibling_url(url, "_fhnew") for url in server_urls(request.config)]
    if not urls:
        pytest.skip("no PostgreSQL or MySQL URL configured: SQLite needs no database created")
    for url in urls:
        await drop_database(url)
    pytester.makeini(INI)
    pytester.makepyfile(test_suite="async def test_connects(kysera_connection):\n    pass\n")
    try:
        result = pytester.runpytest_subprocess(*(f"--kysera-db-url={url}" for url in urls))
        result.assert_outcomes(passed=len(urls))
        for url in urls:
            assert await database_exists(url)
    finally:
        for url in urls:
            await drop_database(url)


def test_an_unreachable_database_stops_the_session_in_one_line(pytester: pytest.Pytester) -> None:
    url = "postgresql+asyncpg://kysera:secret@127.0.0.1:1/kysera_nowhere"
    pytester.makeini(INI)
    pytester.makepyfile(
        test_suite="async def test_a(kysera_engine):\n    pass\n\n"
        "async def test_b(kysera_engine):\n    pass\n"
    )

    result = pytester.runpytest_subprocess(f"--kysera-db-url={url}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert output.count("kysera: cannot use the test database") == 1, output
    assert "postgresql+asyncpg://kysera:***@127.0.0.1:1/kysera_nowhere" in output
    assert "secret" not in output
    assert "Traceback" not in output


def test_a_database_it_marked_stays_its_own_after_its_tests_ran_migrations(
    tmp_path: Path,
) -> None:
    """Tests of migrations leave a migrations table in the test database: still the plugin's."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'marked.db'}")
    metadata = sa.MetaData()
    sa.Table("guard_items", metadata, sa.Column("id", sa.Integer, primary_key=True))
    try:
        with engine.begin() as connection:
            claim_test_database(connection, metadata)  # a fresh database: marked
            metadata.create_all(connection)
            connection.execute(sa.text("CREATE TABLE kysera_migrations (name TEXT)"))
        with engine.begin() as connection:
            claim_test_database(connection, metadata)  # no NotATestDatabaseError
            assert sa.inspect(connection).has_table(MARKER_TABLE)
    finally:
        engine.dispose()
