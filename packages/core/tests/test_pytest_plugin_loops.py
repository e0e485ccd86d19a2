"""The fixtures under pytest-asyncio's default configuration (strict mode, a loop per test).

The engine is session-scoped and pooled, so its tests must run in the session loop; the
plugin sees to that without any ``asyncio_*`` setting, and says what to change when a test
asks for another loop explicitly.
"""

from __future__ import annotations

import pytest

from kysera.core.pytest_plugin import TEMPORARY_SQLITE, configured_database_urls

pytest_plugins = ["pytester"]

# Several tests, each reusing the session's pooled connection: in a loop of their own, the
# second would fail on PostgreSQL with "attached to a different loop".
SUITE = """
import pytest
import sqlalchemy as sa


async def test_unmarked(kysera_connection):
    assert await kysera_connection.scalar(sa.text("SELECT 1")) == 1


@pytest.mark.asyncio
async def test_marked_as_strict_mode_asks(kysera_connection):
    assert await kysera_connection.scalar(sa.text("SELECT 2")) == 2


async def test_engine(kysera_engine):
    async with kysera_engine.connect() as connection:
        assert await connection.scalar(sa.text("SELECT 3")) == 3
"""


def server_and_sqlite_urls(request: pytest.FixtureRequest, pytester: pytest.Pytester) -> list[str]:
    sqlite_url = f"sqlite+aiosqlite:///{pytester.path / 'loops.db'}"
    return [
        sqlite_url if url == TEMPORARY_SQLITE else url
        for url in configured_database_urls(request.config)
    ]


def test_the_fixtures_work_under_pytest_asyncio_defaults(
    pytester: pytest.Pytester, request: pytest.FixtureRequest
) -> None:
    urls = server_and_sqlite_urls(request, pytester)
    pytester.makeini("[pytest]\n")  # no asyncio_mode, no loop scopes: the defaults
    pytester.makepyfile(test_a=SUITE, test_b=SUITE)

    result = pytester.runpytest_subprocess(*(f"--kysera-db-url={url}" for url in urls), "-v")

    result.assert_outcomes(passed=6 * len(urls))


def test_a_test_asking_for_another_loop_is_told_what_to_set(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(
        test_a="""
import pytest


@pytest.mark.asyncio(loop_scope="function")
async def test_own_loop(kysera_connection):
    pass
"""
    )

    result = pytester.runpytest_subprocess(
        f"--kysera-db-url=sqlite+aiosqlite:///{pytester.path / 'loops.db'}"
    )

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*test_own_loop*session event loop*loop_scope='function'*loop_scope=?session?*"]
    )


def test_a_test_for_databases_not_configured_says_what_to_set(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    pytester.makepyfile(
        test_a="""
import pytest


@pytest.mark.kysera_databases("postgresql", "mysql")
async def test_server_only(kysera_connection):
    pass
"""
    )

    result = pytester.runpytest_subprocess(
        f"--kysera-db-url=sqlite+aiosqlite:///{pytester.path / 'x.db'}", "-rs"
    )

    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*runs on postgresql, mysql only: set $KYSERA_TEST_POSTGRES_URL or "
            "$KYSERA_TEST_MYSQL_URL (or pass --kysera-db-url) to run it*"
        ]
    )
    assert "empty parameter set" not in result.stdout.str()
