"""What ``include=`` costs: 1,000 authors x 10 books, against the ways it replaces (issue 18).

Same data, one held PostgreSQL connection, turns taken batch by batch (see conftest's
``compare_interleaved``); every way returns the authors with their books:

- hand-written Core with the same two statements (``= ANY(:ids)``), building the same
  validated pydantic entities (target: Kysera <= 1.3x);
- the N+1 loop (one SELECT of books per author), building the same entities (reported);
- SQLAlchemy ORM ``selectinload`` on classes mapped to the same tables (target: Kysera faster);
- nested two levels (authors -> books -> reviews) likewise against hand-written Core and
  ``selectinload``.

Run: ``pytest benchmarks/test_relations.py -s`` with KYSERA_BENCH_POSTGRES_URL (or
KYSERA_TEST_POSTGRES_URL) set; the ratios are printed and recorded in RESULTS.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel, TypeAdapter
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine
from sqlalchemy.orm import registry, relationship, selectinload

from kysera.repository import create_orm, has_many

PARENTS = 1_000
CHILDREN = 10

metadata = sa.MetaData()
authors = sa.Table(
    "bench_rel_authors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50), nullable=False),
)
books = sa.Table(
    "bench_rel_books",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("author_id", sa.ForeignKey("bench_rel_authors.id"), nullable=False, index=True),
    sa.Column("title", sa.String(50), nullable=False),
    sa.Column("year", sa.Integer, nullable=False),
)
reviews = sa.Table(
    "bench_rel_reviews",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("book_id", sa.ForeignKey("bench_rel_books.id"), nullable=False, index=True),
    sa.Column("stars", sa.Integer, nullable=False),
)


class Review(BaseModel):
    id: int
    book_id: int
    stars: int


class Book(BaseModel):
    id: int
    author_id: int
    title: str
    year: int
    reviews: list[Review] = []


class Author(BaseModel):
    id: int
    name: str
    books: list[Book] = []


# SQLAlchemy ORM classes mapped to the same tables.
class AuthorRow:
    id: int
    books: list[BookRow]


class BookRow:
    id: int
    reviews: list[ReviewRow]


class ReviewRow:
    id: int


mapper = registry()
mapper.map_imperatively(ReviewRow, reviews)
mapper.map_imperatively(BookRow, books, properties={"reviews": relationship(ReviewRow)})
mapper.map_imperatively(AuthorRow, authors, properties={"books": relationship(BookRow)})

_books = TypeAdapter(list[Book])
_reviews = TypeAdapter(list[Review])
_authors = TypeAdapter(list[Author])


async def by_hand(connection: AsyncConnection, nested: bool) -> list[Author]:
    """The two (three) statements written by hand, the same entities built."""
    parents = _authors.validate_python(
        [row._asdict() for row in await connection.execute(sa.select(authors))]
    )
    ids = [author.id for author in parents]
    rows = await connection.execute(
        sa.select(books)
        .where(books.c.author_id == sa.any_(sa.bindparam("ids", ids, type_=sa.ARRAY(sa.Integer))))
        .order_by(books.c.id)
    )
    children = _books.validate_python([row._asdict() for row in rows])
    grouped: dict[int, list[Book]] = {}
    for book in children:
        grouped.setdefault(book.author_id, []).append(book)
    for author in parents:
        author.books = grouped.get(author.id, [])
    if nested:
        book_ids = [book.id for book in children]
        rows = await connection.execute(
            sa.select(reviews)
            .where(
                reviews.c.book_id
                == sa.any_(sa.bindparam("ids", book_ids, type_=sa.ARRAY(sa.Integer)))
            )
            .order_by(reviews.c.id)
        )
        by_book: dict[int, list[Review]] = {}
        for review in _reviews.validate_python([row._asdict() for row in rows]):
            by_book.setdefault(review.book_id, []).append(review)
        for book in children:
            book.reviews = by_book.get(book.id, [])
    return parents


async def n_plus_one(connection: AsyncConnection) -> list[Author]:
    parents = _authors.validate_python(
        [row._asdict() for row in await connection.execute(sa.select(authors))]
    )
    statement = sa.select(books).where(books.c.author_id == sa.bindparam("id")).order_by(books.c.id)
    for author in parents:
        rows = await connection.execute(statement, {"id": author.id})
        author.books = _books.validate_python([row._asdict() for row in rows])
    return parents


async def orm_selectin(connection: AsyncConnection, nested: bool) -> list[Any]:
    option = selectinload(AuthorRow.books)  # type: ignore[arg-type]
    if nested:
        option = option.selectinload(BookRow.reviews)  # type: ignore[arg-type]
    async with AsyncSession(bind=connection) as session:
        result = await session.execute(sa.select(AuthorRow).options(option))
        return list(result.scalars().all())


@pytest.fixture(scope="module")
def loaded(runner: asyncio.Runner, postgres_url: str) -> Iterator[tuple[AsyncConnection, Any]]:
    engine = create_async_engine(postgres_url)

    async def start() -> tuple[AsyncConnection, Any]:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
            await connection.run_sync(metadata.create_all)
            await connection.execute(
                authors.insert(), [{"id": n, "name": f"a{n}"} for n in range(1, PARENTS + 1)]
            )
            book_rows = [
                {"id": n, "author_id": 1 + (n - 1) // CHILDREN, "title": f"b{n}", "year": 2000}
                for n in range(1, PARENTS * CHILDREN + 1)
            ]
            await connection.execute(books.insert(), book_rows)
            await connection.execute(
                reviews.insert(),
                [{"id": n, "book_id": n, "stars": n % 5} for n in range(1, len(book_rows) + 1)],
            )
        connection = await engine.connect()
        orm = await create_orm(engine)
        orm.relate(has_many(authors, "books", books), has_many(books, "reviews", reviews))
        repo = orm.repository(authors, entity=Author).with_executor(connection)
        return connection, repo

    async def stop(connection: AsyncConnection) -> None:
        await connection.rollback()
        await connection.close()
        async with engine.begin() as cleanup:
            await cleanup.run_sync(metadata.drop_all)
        await engine.dispose()

    connection, repo = runner.run(start())
    try:
        yield connection, repo
    finally:
        runner.run(stop(connection))


def test_include_against_hand_written_core_n_plus_one_and_selectinload(
    loaded: tuple[AsyncConnection, Any], compare_interleaved: Callable[..., Any]
) -> None:
    connection, repo = loaded

    async def kysera(_: int) -> Any:
        found = await repo.find(include={"books": {}})
        assert len(found) == PARENTS
        return found

    async def hand(_: int) -> Any:
        return await by_hand(connection, nested=False)

    async def loop(_: int) -> Any:
        return await n_plus_one(connection)

    async def orm(_: int) -> Any:
        return await orm_selectin(connection, nested=False)

    versus_core = compare_interleaved(hand, kysera, rounds=15, batch=2)
    versus_loop = compare_interleaved(loop, kysera, rounds=5, batch=1)
    versus_orm = compare_interleaved(orm, kysera, rounds=15, batch=2)
    print(f"\none level: Kysera vs hand-written Core {versus_core.info()}")
    print(f"one level: Kysera vs N+1 loop {versus_loop.info()}")
    print(f"one level: Kysera vs ORM selectinload {versus_orm.info()}")
    assert versus_loop.wall < 1.0


def test_nested_include_against_hand_written_core_and_selectinload(
    loaded: tuple[AsyncConnection, Any], compare_interleaved: Callable[..., Any]
) -> None:
    connection, repo = loaded

    async def kysera(_: int) -> Any:
        return await repo.find(include={"books": {"include": {"reviews": {}}}})

    async def hand(_: int) -> Any:
        return await by_hand(connection, nested=True)

    async def orm(_: int) -> Any:
        return await orm_selectin(connection, nested=True)

    versus_core = compare_interleaved(hand, kysera, rounds=10, batch=1)
    versus_orm = compare_interleaved(orm, kysera, rounds=10, batch=1)
    print(f"\ntwo levels: Kysera vs hand-written Core {versus_core.info()}")
    print(f"two levels: Kysera vs ORM selectinload {versus_orm.info()}")
