"""The pytest plugin, run in a pytest of its own (pytester) the way a user's suite runs it."""

from __future__ import annotations

import pytest

from kysera.core.pytest_plugin import configured_database_urls, database_backend

pytest_plugins = ["pytester"]

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
"""


def test_nothing_is_imported_until_a_fixture_is_used_and_the_url_comes_from_the_environment(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('env') / 'env.db'}"
    monkeypatch.setenv("KYSERA_TEST_DATABASE_URL", url)
    pytester.makeini(INI)
    pytester.makepyfile(
        test_a_plain="""
        import sys

        DRIVERS = {"asyncpg", "aiosqlite", "sqlite3", "aiomysql", "pymysql", "asyncmy"}

        def test_plain():
            assert not DRIVERS & set(sys.modules)

        async def test_async_plain():
            assert not DRIVERS & set(sys.modules)
        """,
        test_b_database="""
        async def test_url(kysera_database_url, kysera_connection):
            assert kysera_database_url.endswith("env.db")
            assert kysera_connection.dialect.name == "sqlite"
        """,
    )

    result = pytester.runpytest_subprocess("-v", "-p", "no:randomly")

    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test_url?sqlite? PASSED*"])


USER_SUITE = """
import pytest
import sqlalchemy as sa

metadata = sa.MetaData()
notes = sa.Table(
    "tst_plugin_notes", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("body", sa.String(50)),
)


@pytest.fixture(scope="session", autouse=True)
async def schema(kysera_engine):
    async with kysera_engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
    yield
    async with kysera_engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)


async def save_note(conn, body):
    # code under test that commits, as application code does
    await conn.execute(notes.insert(), {"body": body})
    await conn.commit()


async def test_first_writes_and_commits(kysera_connection):
    await save_note(kysera_connection, "one")
    async with kysera_connection.begin():
        await kysera_connection.execute(notes.insert(), {"body": "two"})
    count = await kysera_connection.scalar(sa.select(sa.func.count()).select_from(notes))
    assert count == 2


async def test_second_sees_nothing_of_the_first(kysera_connection, kysera_engine):
    count = await kysera_connection.scalar(sa.select(sa.func.count()).select_from(notes))
    assert count == 0
    async with kysera_engine.connect() as other:
        assert await other.scalar(sa.select(sa.func.count()).select_from(notes)) == 0


async def test_queries_are_captured_on_the_connection(kysera_connection, kysera_queries):
    await kysera_connection.execute(notes.insert(), {"body": "three"})
    await kysera_connection.execute(sa.select(notes))
    kysera_queries.assert_count(2)
    assert "INSERT INTO tst_plugin_notes" in kysera_queries.queries[0].sql
"""


def test_each_test_gets_a_rolled_back_connection_and_its_queries(
    pytester: pytest.Pytester, request: pytest.FixtureRequest
) -> None:
    # The same databases this session runs on, in one inner session.
    urls = configured_database_urls(request.config)
    pytester.makeini(INI)
    pytester.makepyfile(USER_SUITE)

    result = pytester.runpytest_subprocess(
        *(f"--kysera-db-url={url}" for url in urls), "-v", "-p", "no:randomly"
    )

    result.assert_outcomes(passed=3 * len(urls))
    result.stdout.fnmatch_lines_random(
        [f"*test_second_sees_nothing_of_the_first?{database_backend(url)}? PASSED*" for url in urls]
    )
