"""Offset pagination: right pages and right totals, also for DISTINCT, GROUP BY and joins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    insert,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement

from kysera.core import DatabaseError, InvalidQueryError, OffsetPage, paginate
from kysera.core.capture import capture_queries

metadata = MetaData()
authors = Table(
    "pg_offset_authors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(20), nullable=False),
)
books = Table(
    "pg_offset_books",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("author_id", ForeignKey("pg_offset_authors.id"), nullable=False),
    Column("genre", String(20), nullable=False),
)


@pytest_asyncio.fixture
async def engine(kysera_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
        await connection.execute(
            insert(authors), [{"id": i, "name": f"author {i}"} for i in range(1, 8)]
        )
        # Authors 1-3 wrote books; 13 books across 3 genres.
        await connection.execute(
            insert(books),
            [
                {"id": i, "author_id": 1 + i % 3, "genre": ("poetry", "crime", "essay")[i % 3]}
                for i in range(1, 14)
            ],
        )
    yield kysera_engine
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)


async def test_pages_report_their_place_in_the_whole(engine: AsyncEngine) -> None:
    statement = select(authors).order_by(authors.c.id)

    first = await paginate(engine, statement, page=1, limit=3)
    last = await paginate(engine, statement, page=3, limit=3)

    assert [a["id"] for a in first.items] == [1, 2, 3]
    assert (first.total, first.total_pages, first.has_prev, first.has_next) == (7, 3, False, True)
    assert first.items[0] == {"id": 1, "name": "author 1"}
    assert [a["id"] for a in last.items] == [7]
    assert (last.total, last.page, last.limit, last.has_prev, last.has_next) == (
        7,
        3,
        3,
        True,
        False,
    )


async def test_a_page_past_the_end_is_empty(engine: AsyncEngine) -> None:
    page = await paginate(engine, select(authors).order_by(authors.c.id), page=9, limit=3)

    assert page.items == []
    assert (page.total, page.total_pages, page.has_next, page.has_prev) == (7, 3, False, True)


async def test_totals_count_distinct_grouped_and_joined_rows(engine: AsyncEngine) -> None:
    distinct_genres = select(books.c.genre).distinct().order_by(books.c.genre)
    per_author = (
        select(books.c.author_id, func.count().label("books"))
        .group_by(books.c.author_id)
        .order_by(books.c.author_id)
    )
    joined = (
        select(authors.c.name, books.c.id).select_from(authors.join(books)).order_by(books.c.id)
    )
    outer = select(authors.c.id, books.c.id).select_from(authors.outerjoin(books))

    assert (await paginate(engine, distinct_genres, limit=2)).total == 3
    assert (await paginate(engine, per_author, limit=2)).total == 3
    assert (await paginate(engine, joined, limit=5)).total == 13
    assert (await paginate(engine, outer.order_by(books.c.id), limit=5)).total == 13 + 4


async def test_a_union_pages_too(engine: AsyncEngine) -> None:
    both = union_all(select(authors.c.id), select(books.c.id)).order_by(text("id"))

    page = await paginate(engine, both, page=2, limit=10)

    assert page.total == 20
    assert len(page.items) == 10


async def test_the_count_is_skipped_when_the_page_shows_the_end(engine: AsyncEngine) -> None:
    with capture_queries(engine) as captured:
        page = await paginate(engine, select(authors).order_by(authors.c.id), limit=50)

    assert page.total == 7
    captured.assert_count(1)


async def test_map_row_shapes_items(engine: AsyncEngine) -> None:
    page: OffsetPage[str] = await paginate(
        engine,
        select(authors).order_by(authors.c.id),
        limit=2,
        map_row=lambda row: row["name"].upper(),
    )

    assert page.items == ["AUTHOR 1", "AUTHOR 2"]


async def test_a_connection_is_used_as_it_is(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(insert(authors).values(id=100, name="uncommitted"))

        page = await paginate(connection, select(authors), limit=1)

        assert page.total == 8
        await connection.rollback()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"page": 0}, "page"),
        ({"page": -1}, "page"),
        ({"page": 1.5}, "page"),
        ({"page": True}, "page"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": 51, "max_limit": 50}, "limit"),
        ({"limit": None}, "limit"),
        ({"max_limit": 0}, "max_limit"),
    ],
)
async def test_out_of_range_page_or_limit_is_a_query_error(
    engine: AsyncEngine, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidQueryError, match=message):
        await paginate(engine, select(authors), **options)


async def test_unusable_statements_are_query_errors(engine: AsyncEngine) -> None:
    with pytest.raises(InvalidQueryError, match="LIMIT"):
        await paginate(engine, select(authors).limit(2))
    with pytest.raises(InvalidQueryError, match="SELECT"):
        await paginate(engine, text("SELECT 1"))  # type: ignore[arg-type]
    with pytest.raises(InvalidQueryError, match="executor"):
        await paginate(object(), select(authors))  # type: ignore[arg-type]


async def test_database_errors_are_classified(engine: AsyncEngine) -> None:
    missing = Table("pg_offset_missing", MetaData(), Column("id", Integer, primary_key=True))

    with pytest.raises(DatabaseError) as caught:
        await paginate(engine, select(missing))

    assert caught.value.dialect == engine.dialect.name


async def test_statements_the_dialect_cannot_compile_are_query_errors(engine: AsyncEngine) -> None:
    class Unrenderable(ColumnElement[int]):
        inherit_cache = True

    @compiles(Unrenderable, "nonexistent-dialect")
    def _render(element: Unrenderable, compiler: Any, **kw: Any) -> str:  # pragma: no cover
        return "1"

    with pytest.raises(InvalidQueryError, match="cannot run"):
        await paginate(engine, select(authors.c.id, Unrenderable()))


async def test_a_statement_built_once_is_paged_with_new_parameters(engine: AsyncEngine) -> None:
    # A service builds its statement once and pages it with each request's values.
    statement = select(books.c.id).where(books.c.genre == bindparam("genre")).order_by(books.c.id)

    for genre, ids in [("crime", [1, 4, 7, 10, 13]), ("poetry", [3, 6, 9, 12])]:
        first = await paginate(engine, statement, page=1, limit=3, parameters={"genre": genre})
        second = await paginate(engine, statement, page=2, limit=3, parameters={"genre": genre})
        assert [b["id"] for b in first.items + second.items] == ids
        assert first.total == second.total == len(ids)

    with pytest.raises(InvalidQueryError, match="genre"):
        await paginate(engine, statement, page=1, limit=3)


async def test_an_offset_beyond_32_bits_reaches_the_database(engine: AsyncEngine) -> None:
    statement = select(authors).order_by(authors.c.id)

    page = await paginate(engine, statement, page=2**40, limit=3)

    assert (page.items, page.total, page.has_prev, page.has_next) == ([], 7, True, False)
