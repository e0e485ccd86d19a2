"""Property test of relation loading against every database: for random authors, books and
include options, ``include=`` gives every parent exactly what a naive query per parent gives
(the N+1 loop it replaces), in two statements, through the soft-delete plugin."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from relations_support import authors, book_tags, books, metadata, relate_all, tags
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import KyseraError
from kysera.core.capture import capture_queries
from kysera.core.pytest_plugin import kysera_schema_fixture
from kysera.repository import create_orm
from kysera.soft_delete import SoftDeletePlugin

engine = kysera_schema_fixture(metadata)

OPTION_NAMES = ("count", "include", "limit", "order_by", "where")
EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

BOOKS = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(1, 6)),  # author (None: no author)
        st.integers(1990, 1995),  # year: few values, so ties in the ordering are common
        st.booleans(),  # soft-deleted
    ),
    max_size=25,
)
OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "where": st.sampled_from([{"year": {"$gte": 1992}}, {"year": {"$in": [1990, 1994]}}, {}]),
        "order_by": st.sampled_from(["year", "-year", ["-year", "-id"], "title"]),
        "limit": st.integers(0, 4),
    },
)


@EXAMPLES
@given(
    parents=st.integers(0, 6),
    rows=BOOKS,
    options=OPTIONS,
    count=st.booleans(),
    include_deleted=st.booleans(),
    links=st.lists(st.tuples(st.integers(1, 25), st.integers(1, 4)), max_size=30, unique=True),
)
async def test_include_equals_a_query_per_parent(
    engine: AsyncEngine,
    parents: int,
    rows: list[tuple[int | None, int, bool]],
    options: dict[str, Any],
    count: bool,
    include_deleted: bool,
    links: list[tuple[int, int]],
) -> None:
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            orm = relate_all(await create_orm(connection, plugins=[SoftDeletePlugin()]))
            if parents:
                await connection.execute(
                    sa.insert(authors), [{"id": n, "name": f"a{n}"} for n in range(1, parents + 1)]
                )
            book_rows = [
                {
                    "id": index + 1,
                    "author_id": author if author is None or author <= parents else None,
                    "title": f"t{(index * 7) % 5}",
                    "year": year,
                    "deleted_at": datetime(2024, 1, 1) if deleted else None,
                }
                for index, (author, year, deleted) in enumerate(rows)
            ]
            if book_rows:
                await connection.execute(sa.insert(books), book_rows)
            await connection.execute(
                sa.insert(tags),
                [
                    {
                        "id": n,
                        "label": f"l{n % 3}",
                        "deleted_at": datetime(2024, 1, 1) if n == 4 else None,
                    }
                    for n in range(1, 5)
                ],
            )
            present = [(book, tag) for book, tag in links if book <= len(book_rows)]
            if present:
                await connection.execute(
                    sa.insert(book_tags), [{"book_id": b, "tag_id": t} for b, t in present]
                )
            author_repo = orm.repository(authors)
            book_repo = orm.repository(books)
            flags = {"include_deleted": True} if include_deleted else {}
            spec: dict[str, Any] = (
                {"count": True, **({"where": options["where"]} if "where" in options else {})}
                if count
                else {**options, "include": {"tags": {"order_by": "-label"}}}
            )

            with capture_queries(connection) as captured:
                found = await author_repo.find(order_by="id", include={"books": spec}, **flags)
            loaded_books = not count and any(author["books"] for author in found)
            assert captured.count == 1 + (1 if parents else 0) + (1 if loaded_books else 0)

            for author in found:
                where = {"author_id": author["id"], **spec.get("where", {})}
                if count:
                    assert author["books_count"] == await book_repo.count(where, **flags)
                    continue
                order = spec.get("order_by", [])
                order = [order] if isinstance(order, str) else list(order)
                expected = await book_repo.find(
                    where, order_by=[*order, "id"], limit=spec.get("limit"), **flags
                )
                assert [
                    {key: value for key, value in book.items() if key != "tags"}
                    for book in author["books"]
                ] == expected
                for book in author["books"]:
                    linked = (
                        sa.select(tags)
                        .join(book_tags, book_tags.c.tag_id == tags.c.id)
                        .where(book_tags.c.book_id == book["id"])
                        .order_by(tags.c.label.desc(), tags.c.id)
                    )
                    result = await orm.execute(linked, **flags)
                    assert book["tags"] == [row._asdict() for row in result]
        finally:
            await transaction.rollback()


NAMES = st.sampled_from(
    ["books", "author", "tags", "profile", "bookz", "", "count", "where", "include", "$or", "id"]
)
JUNK_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=True),
    st.text(max_size=6),
    NAMES,
)
JUNK = st.recursive(
    JUNK_LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(NAMES, st.sampled_from(list(OPTION_NAMES))), inner, max_size=4),
    ),
    max_leaves=12,
)


@settings(EXAMPLES, max_examples=100)
@given(include=JUNK)
async def test_junk_include_specs_give_a_result_or_a_kysera_error(
    engine: AsyncEngine, include: Any
) -> None:
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            await connection.execute(sa.insert(authors), [{"id": 1, "name": "a"}])
            await connection.execute(
                sa.insert(books), [{"id": 1, "author_id": 1, "title": "t", "year": 1990}]
            )
            orm = relate_all(await create_orm(connection, plugins=[SoftDeletePlugin()]))
            try:
                found = await orm.repository(authors).find(include=include)
            except KyseraError:
                return
            assert len(found) == 1
        finally:
            await transaction.rollback()
