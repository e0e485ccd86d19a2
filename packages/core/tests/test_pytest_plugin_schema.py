"""`kysera_schema_fixture`: a user's tables created once per database, emptied before each test
and dropped at the end, checked in a pytest of its own (pytester) on every configured database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from kysera.core.errors import BadRequestError
from kysera.core.pytest_plugin import (
    TEMPORARY_SQLITE,
    configured_database_urls,
    create_test_engine,
    database_backend,
    kysera_schema_fixture,
)

pytest_plugins = ["pytester"]

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
"""

# Table names of the suite below; unique to this test, as the databases are shared.
TABLES = {"tst_schema_parents", "tst_schema_children", "tst_schema_counters"}

CONFTEST = """
import sqlalchemy as sa

from kysera.core.pytest_plugin import kysera_schema_fixture

metadata = sa.MetaData()
parents = sa.Table(
    "tst_schema_parents", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50), nullable=False),
)
children = sa.Table(  # a foreign key: emptied before its parent
    "tst_schema_children", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("parent_id", sa.ForeignKey("tst_schema_parents.id"), nullable=False),
)
counters_metadata = sa.MetaData()
counters = sa.Table(
    "tst_schema_counters", counters_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("label", sa.String(20), nullable=False),
)

# Every CREATE of the tables, per backend: the fixture must create them once per database.
created = []
sa.event.listen(
    metadata, "after_create", lambda _m, connection, **_kw: created.append(connection.dialect.name)
)

engine = kysera_schema_fixture(metadata)
tables = kysera_schema_fixture(metadata, clean=False)  # the same tables, as the last test left them
counted = kysera_schema_fixture(counters_metadata, strategy="truncate")
"""

SUITE = """
import sqlalchemy as sa

from conftest import children, counters, created, parents


async def count(engine, table):
    async with engine.connect() as connection:
        return await connection.scalar(sa.select(sa.func.count()).select_from(table))


async def test_a_writes_and_commits(engine):
    async with engine.begin() as connection:
        await connection.execute(parents.insert(), [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}])
        await connection.execute(children.insert(), [{"id": 1, "parent_id": 1}])


async def test_b_the_same_tables_are_kept_as_left(tables):
    assert await count(tables, parents) == 2
    assert await count(tables, children) == 1


async def test_c_starts_with_empty_tables(engine):
    assert await count(engine, parents) == 0
    assert await count(engine, children) == 0
    async with engine.begin() as connection:
        await connection.execute(parents.insert(), {"id": 1, "name": "again"})
        await connection.execute(children.insert(), {"id": 1, "parent_id": 1})


async def test_d_starts_with_empty_tables_again(engine, kysera_engine):
    assert engine is kysera_engine
    assert await count(engine, parents) == 0
    assert await count(engine, children) == 0


async def test_e_truncate_restarts_ids(counted):
    async with counted.begin() as connection:
        result = await connection.execute(counters.insert(), {"label": "first"})
    assert result.inserted_primary_key[0] == 1


async def test_f_truncate_restarts_ids_again(counted):
    async with counted.begin() as connection:
        result = await connection.execute(counters.insert(), {"label": "second"})
    assert result.inserted_primary_key[0] == 1


async def test_g_created_once_per_database(engine):
    assert created.count(engine.dialect.name) == 1
"""


async def test_tables_are_created_once_emptied_before_each_test_and_dropped(
    pytester: pytest.Pytester, request: pytest.FixtureRequest
) -> None:
    # The databases this session runs on; SQLite as a file this test can look at afterwards.
    sqlite_url = f"sqlite+aiosqlite:///{pytester.path / 'inner.db'}"
    urls = [
        sqlite_url if url == TEMPORARY_SQLITE else url
        for url in configured_database_urls(request.config)
    ]
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite=SUITE)

    result = pytester.runpytest_subprocess(
        *(f"--kysera-db-url={url}" for url in urls), "-v", "-p", "no:randomly"
    )

    result.assert_outcomes(passed=7 * len(urls))
    result.stdout.fnmatch_lines_random(
        [f"*test_d_starts_with_empty_tables_again?{database_backend(url)}? PASSED*" for url in urls]
    )
    for url in urls:
        engine = create_test_engine(url)
        try:
            async with engine.connect() as connection:
                names = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
        finally:
            await engine.dispose()
        assert not TABLES & set(names), f"left behind on {database_backend(url)}"


def test_a_fixture_only_takes_metadata_and_a_known_strategy() -> None:
    with pytest.raises(BadRequestError, match="MetaData, got Table"):
        kysera_schema_fixture(sa.Table("t", sa.MetaData()))  # type: ignore[arg-type]
    with pytest.raises(BadRequestError, match="unknown clean_database strategy 'drop'"):
        kysera_schema_fixture(sa.MetaData(), strategy="drop")  # type: ignore[arg-type]
