"""Values of every kind write, read back and compare on every dialect and driver (SPEC §7).

PostgreSQL arrays take ``$contains`` / ``$overlap``; MySQL ``SET`` columns compare with
Python sets; ``bytes`` go through asyncmy and are refused by aiomysql with an error naming
asyncmy; a column of a type SQLAlchemy cannot reflect leaves the rest of the table usable.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.core import DatabaseError, InvalidQueryError
from kysera.core.capture import capture_queries
from kysera.repository import compile_where, create_repository

metadata = sa.MetaData()
tagged = sa.Table(
    "vt_tagged",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("tags", postgresql.ARRAY(sa.Text), nullable=True),
)


# -- PostgreSQL arrays ---------------------------------------------------------------------


def tables_for(dialect: str) -> list[sa.Table]:
    """The tables of this module a dialect has the types for."""
    return (
        [blobs, keyed]
        + ([tagged] if dialect == "postgresql" else [])
        + ([flagged] if dialect == "mysql" else [])
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tables(kysera_engine: AsyncEngine) -> AsyncIterator[None]:
    # Outside the rolled-back test transaction: DDL commits on MySQL/MariaDB.
    chosen = tables_for(kysera_engine.dialect.name)
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all, tables=chosen)
        await connection.run_sync(metadata.create_all, tables=chosen)
    yield
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all, tables=chosen)


@pytest_asyncio.fixture(loop_scope="session")
async def tags(tables: None, kysera_connection: AsyncConnection) -> AsyncConnection:
    repo = create_repository(kysera_connection, tagged)
    await repo.create_many(
        [
            {"id": 1, "tags": ["a", "b"]},
            {"id": 2, "tags": ["b", "c"]},
            {"id": 3, "tags": []},
            {"id": 4, "tags": None},
        ]
    )
    return kysera_connection


@pytest.mark.kysera_databases("postgresql")
async def test_array_operators_on_postgresql(tags: AsyncConnection) -> None:
    repo = create_repository(tags, tagged)

    async def ids(where: dict[str, object]) -> list[int]:
        return [row["id"] for row in await repo.find(where=where, order_by="id")]

    assert await ids({"tags": {"$contains": ["b"]}}) == [1, 2]
    assert await ids({"tags": {"$contains": "a"}}) == [1]  # one item stands for [item]
    assert await ids({"tags": {"$contains": ["a", "b"]}}) == [1]
    assert await ids({"tags": {"$overlap": ["a", "c"]}}) == [1, 2]
    assert await ids({"tags": {"$overlap": []}}) == []
    assert await ids({"tags": ["b", "c"]}) == [2]
    # Complements include NULL, as everywhere in the where-dialect.
    assert await ids({"tags": {"$not": {"$contains": ["a"]}}}) == [2, 3, 4]
    assert (await repo.find_by_id(1)) == {"id": 1, "tags": ["a", "b"]}


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ({"tags": {"$in": [["a"]]}}, "ARRAY column; use {'\\$contains'"),
        ({"tags": {"$nin": [["a"], ["b"]]}}, "ARRAY column"),
        ({"tags": {"$contains": [["a"]]}}, "takes items of the ARRAY column"),
        ({"tags": {"$overlap": [None]}}, "takes items of the ARRAY column"),
        ({"id": {"$overlap": [1]}}, "needs an ARRAY column"),
    ],
)
def test_array_misuse_is_an_invalid_query(where: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidQueryError, match=message):
        compile_where(tagged, where)


# -- MySQL SET -----------------------------------------------------------------------------

flagged = sa.Table(
    "vt_flagged",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("flags", mysql.SET("red", "green", "blue"), nullable=True),
)


@pytest.mark.kysera_databases("mysql")
async def test_set_columns_write_read_and_compare_as_sets(
    tables: None, kysera_connection: AsyncConnection
) -> None:
    repo = create_repository(kysera_connection, flagged)
    created = await repo.create({"id": 1, "flags": {"red", "blue"}})
    await repo.create({"id": 2, "flags": set()})

    assert created == {"id": 1, "flags": {"red", "blue"}}
    assert [row["id"] for row in await repo.find({"flags": {"blue", "red"}})] == [1]
    assert [row["id"] for row in await repo.find({"flags": "red,blue"})] == [1]
    assert await repo.count({"flags": {"$in": [{"red", "blue"}, set()]}}) == 2
    with pytest.raises(InvalidQueryError, match="a set of red, green, blue"):
        await repo.find({"flags": {"purple"}})


# -- bytes on every driver -----------------------------------------------------------------

keyed = sa.Table(  # binary keys, as MySQL schemas store UUIDs
    "vt_keyed",
    metadata,
    sa.Column("id", sa.LargeBinary().with_variant(mysql.BINARY(16), "mysql"), primary_key=True),
    sa.Column("name", sa.String(20), nullable=False),
)
blobs = sa.Table(
    "vt_blobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("data", sa.LargeBinary(70_000), nullable=True),
)


async def test_bytes_write_and_compare_or_are_refused_naming_asyncmy(
    tables: None, kysera_connection: AsyncConnection
) -> None:
    repo = create_repository(kysera_connection, blobs)
    payload = bytes(range(256)) * 120  # 30 KB, every byte value
    if kysera_connection.dialect.driver == "aiomysql":
        with pytest.raises(DatabaseError, match="use the asyncmy driver") as caught:
            await repo.create({"id": 1, "data": payload})
        assert isinstance(caught.value.__cause__, TypeError)
        assert await repo.count() == 0  # nothing written
        assert await repo.find({"data": payload}) == []  # comparisons send UNHEX(:hex)
        return
    assert (await repo.create({"id": 1, "data": payload}))["data"] == payload
    assert (await repo.update(1, {"data": b"\x00"}))["data"] == b"\x00"
    assert await repo.count({"data": b"\x00"}) == 1


def test_json_values_are_not_compared_in_a_where_dict() -> None:
    documents = sa.Table("vt_docs", sa.MetaData(), sa.Column("doc", sa.JSON))
    for where in ({"doc": [1, 2]}, {"doc": {"$in": [[1]]}}, {"doc": {"$ne": "x"}}):
        with pytest.raises(InvalidQueryError, match="not compared by value"):
            compile_where(documents, where)
    assert compile_where(documents, {"doc": None}) is not None  # IS NULL still works


def binary_literal(dialect: str, value: bytes) -> str:
    """SQL text for a binary constant (the test's own), so that no driver sends bytes."""
    if dialect == "mysql":
        return f"UNHEX('{value.hex()}')"
    if dialect == "postgresql":
        return f"decode('{value.hex()}', 'hex')"
    return f"X'{value.hex()}'"


async def test_binary_keys_and_filters_work_on_every_driver(
    tables: None, kysera_connection: AsyncConnection
) -> None:
    # Comparisons bind binary values as UNHEX(:hex) on MySQL/MariaDB: aiomysql, which
    # cannot send bytes, reads, updates and deletes by them too.
    dialect = kysera_connection.dialect.name
    keys = [bytes([index]) * 15 + b"\x00" for index in range(1, 4)]
    for index, key in enumerate(keys):
        literal = binary_literal(dialect, key)
        await kysera_connection.execute(
            sa.text(f"INSERT INTO vt_keyed (id, name) VALUES ({literal}, 'n{index}')")
        )
    repo = create_repository(kysera_connection, keyed)
    assert (await repo.get(keys[0]))["name"] == "n0"
    assert [row["name"] for row in await repo.find({"id": keys[1]})] == ["n1"]
    assert await repo.count({"id": {"$in": keys[:2]}}) == 2
    assert await repo.count({"id": {"$between": [keys[1], keys[2]]}}) == 2
    assert await repo.count({"id": {"$gt": keys[0]}}) == 2
    assert (await repo.update(keys[2], {"name": "renamed"}))["name"] == "renamed"
    assert await repo.delete(keys[0])
    assert await repo.count() == 2


# -- a column of a type SQLAlchemy cannot reflect ------------------------------------------

UNREFLECTABLE_DDL = {
    # MariaDB's spatial type: SQLAlchemy's MySQL dialect has no GEOMETRY.
    "mysql": "CREATE TABLE vt_places (id INTEGER PRIMARY KEY, name VARCHAR(40), "
    "shape GEOMETRY NULL)",
    # A composite type of the database's own.
    "postgresql": "CREATE TABLE vt_places (id INTEGER PRIMARY KEY, name VARCHAR(40), "
    "shape vt_point NULL)",
    # No declared type (SQLite reads an unknown type name as NUMERIC by its affinity rules).
    "sqlite": "CREATE TABLE vt_places (id INTEGER PRIMARY KEY, name VARCHAR(40), shape NULL)",
}


@pytest_asyncio.fixture(loop_scope="session")
async def places(kysera_engine: AsyncEngine) -> AsyncIterator[sa.Table]:
    dialect = kysera_engine.dialect.name
    async with kysera_engine.begin() as connection:
        await connection.execute(sa.text("DROP TABLE IF EXISTS vt_places"))
        if dialect == "postgresql":
            await connection.execute(sa.text("DROP TYPE IF EXISTS vt_point"))
            await connection.execute(sa.text("CREATE TYPE vt_point AS (x float8, y float8)"))
        await connection.execute(sa.text(UNREFLECTABLE_DDL[dialect]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sa.exc.SAWarning)  # "Did not recognize type"
            table = await connection.run_sync(
                lambda sync: sa.Table("vt_places", sa.MetaData(), autoload_with=sync)
            )
    yield table
    async with kysera_engine.begin() as connection:
        await connection.execute(sa.text("DROP TABLE IF EXISTS vt_places"))
        if dialect == "postgresql":
            await connection.execute(sa.text("DROP TYPE IF EXISTS vt_point"))


async def test_a_repository_over_an_unreflectable_column_works_for_the_others(
    kysera_engine: AsyncEngine, places: sa.Table
) -> None:
    assert isinstance(places.c.shape.type, sa.types.NullType)
    repo = create_repository(kysera_engine, places)
    created = await repo.create({"id": 1, "name": "home"})
    assert created == {"id": 1, "name": "home", "shape": None}
    assert (await repo.update(1, {"name": "office"}))["name"] == "office"
    assert await repo.find({"name": "office"}) == [{"id": 1, "name": "office", "shape": None}]
    page = await repo.paginate_cursor(limit=1, order_by="name")
    assert [row["id"] for row in page.items] == [1]
    assert await repo.delete(1)
    assert await repo.count() == 0


# -- PostgreSQL domains ----------------------------------------------------------------------


@pytest.mark.kysera_databases("postgresql")
async def test_a_domain_column_checks_values_as_the_type_it_constrains(
    kysera_connection: AsyncConnection,
) -> None:
    year = postgresql.DOMAIN("vt_year", sa.Integer, check="VALUE BETWEEN 1901 AND 2155")
    films = sa.Table(
        "vt_films",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("released", year, nullable=False),
    )
    await kysera_connection.run_sync(films.metadata.create_all)  # rolled back with the test
    repo = create_repository(kysera_connection, films)
    await repo.create({"id": 1, "released": 2006})

    assert [row["id"] for row in await repo.find({"released": {"$gte": 2000}})] == [1]
    with (
        capture_queries(kysera_connection) as log,
        pytest.raises(InvalidQueryError, match="takes an integer, not str"),
    ):
        await repo.find({"released": "2006"})
    assert log.count == 0
