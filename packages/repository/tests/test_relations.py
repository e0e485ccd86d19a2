"""Relations (SPEC §9) on every database: declaring, including, loading, statement counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel
from relations_support import (
    Author,
    Book,
    authors,
    book_tags,
    books,
    cities,
    countries,
    employees,
    follows,
    insert,
    members,
    messages,
    metadata,
    profiles,
    relations_orm,
    sales,
    shops,
    tags,
    teams,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from tenancy_plugin import TenantError, TenantPlugin, tenant_scope

from kysera.audit import AuditPlugin, create_audit_table
from kysera.core import InvalidQueryError, KyseraError
from kysera.core.capture import capture_queries
from kysera.core.pytest_plugin import kysera_schema_fixture
from kysera.repository import (
    belongs_to,
    create_orm,
    create_repository,
    foreign_key_relations,
    has_many,
    has_one,
    many_to_many,
)
from kysera.soft_delete import SoftDeletePlugin
from kysera.timestamps import TimestampsPlugin

engine = kysera_schema_fixture(metadata)


async def seed_library(engine: AsyncEngine) -> None:
    """Three authors: Ada (3 books, one deleted), Bo (1 book), Cy (none); tags on books."""
    await insert(
        engine,
        authors,
        [
            {"id": 1, "name": "Ada", "country": "NL"},
            {"id": 2, "name": "Bo", "country": "BE"},
            {"id": 3, "name": "Cy", "country": "NL"},
        ],
    )
    await insert(
        engine,
        books,
        [
            {"id": 10, "author_id": 1, "title": "A1", "year": 1999},
            {"id": 11, "author_id": 1, "title": "A2", "year": 2005},
            {"id": 12, "author_id": 1, "title": "A3", "year": 2010},
            {"id": 13, "author_id": 2, "title": "B1", "year": 2001},
            {
                "id": 14,
                "author_id": 1,
                "title": "A4",
                "year": 2020,
                "deleted_at": datetime(2024, 1, 1),
            },
            {"id": 15, "author_id": None, "title": "Anon", "year": 1900},
        ],
    )
    await insert(
        engine,
        tags,
        [
            {"id": 1, "label": "sf"},
            {"id": 2, "label": "classic"},
            {"id": 3, "label": "gone", "deleted_at": datetime(2024, 1, 1)},
        ],
    )
    await insert(
        engine,
        book_tags,
        [
            {"book_id": 10, "tag_id": 1},
            {"book_id": 10, "tag_id": 2},
            {"book_id": 11, "tag_id": 2},
            {"book_id": 11, "tag_id": 3},
            {"book_id": 13, "tag_id": 1},
        ],
    )
    await insert(engine, profiles, [{"id": 1, "author_id": 2, "bio": "Bo's bio"}])


# --- declaring ------------------------------------------------------------------------------


def test_foreign_keys_are_inferred_and_explicit_keys_resolve() -> None:
    relation = has_many(authors, "books", books)
    assert [c.key for c in relation.local] == ["id"]
    assert [c.key for c in relation.match] == ["author_id"]
    assert relation.many
    relation = belongs_to(books, "author", authors)
    assert [c.key for c in relation.local] == ["author_id"]
    assert not relation.many
    relation = many_to_many(books, "tags", tags, through=book_tags)
    assert [c.key for c in relation.match] == ["book_id"]
    assert [c.key for c in relation.through_target] == ["tag_id"]
    relation = has_many(shops, "sales", sales)
    assert [c.key for c in relation.local] == ["region", "code"]
    assert [c.key for c in relation.match] == ["region", "shop_code"]
    relation = has_one(employees, "sent_one", messages, foreign_key=messages.c.sender_id)
    assert [c.key for c in relation.match] == ["sender_id"]


def test_ambiguous_missing_and_wrong_keys_name_the_fix() -> None:
    with pytest.raises(InvalidQueryError, match=r"2 foreign keys.*foreign_key="):
        belongs_to(messages, "sender", employees)
    with pytest.raises(InvalidQueryError, match=r"no foreign key.*foreign_key="):
        has_many(authors, "tags", tags)
    with pytest.raises(InvalidQueryError, match="not a column of 'rl_books'"):
        has_many(authors, "books", books, foreign_key="writer_id")
    with pytest.raises(InvalidQueryError, match="not a column"):
        has_many(authors, "books", books, foreign_key=tags.c.label)
    with pytest.raises(InvalidQueryError, match="name of one of its columns"):
        belongs_to(books, "title", authors)
    with pytest.raises(InvalidQueryError, match="identifier"):
        belongs_to(books, "not a name", authors)
    with pytest.raises(InvalidQueryError, match="source_key=/target_key="):
        many_to_many(employees, "peers", employees, through=messages)
    assert issubclass(InvalidQueryError, KyseraError)


def test_explicit_key_without_a_declared_foreign_key_uses_the_primary_key() -> None:
    loose = sa.Table("loose", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
    other = sa.Table(
        "other",
        loose.metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("x", sa.Integer),
    )
    relation = has_many(loose, "others", other, foreign_key="x")
    assert [c.key for c in relation.local] == ["id"]
    with pytest.raises(InvalidQueryError, match="references="):
        has_many(shops, "others", other, foreign_key="x")


def test_foreign_key_relations_are_named_after_the_tables() -> None:
    derived = {(r.source.name, r.name): r for r in foreign_key_relations(metadata.tables.values())}
    assert derived["rl_books", "author"].kind == "belongs_to"
    assert derived["rl_authors", "rl_books"].kind == "has_many"
    assert derived["rl_messages", "sender"].target is employees
    assert derived["rl_employees", "rl_messages_by_sender"].match == (messages.c.sender_id,)
    assert derived["rl_employees", "manager"].target is employees
    assert derived["rl_sales", "rl_shops"].kind == "belongs_to"


def test_a_self_reference_named_after_its_table_keeps_both_sides() -> None:
    # staff.reports_to: the belongs_to is named after the table (the column has no _id), and
    # so would the has_many be; before, the has_many was dropped.
    staff = sa.Table(
        "staff",
        sa.MetaData(),
        sa.Column("staff_id", sa.Integer, primary_key=True),
        sa.Column("reports_to", sa.ForeignKey("staff.staff_id")),
    )
    derived = {(r.kind, r.name): r for r in foreign_key_relations([staff])}
    assert set(derived) == {("belongs_to", "staff"), ("has_many", "staff_by_reports_to")}
    assert derived["has_many", "staff_by_reports_to"].match == (staff.c.reports_to,)


# --- including ------------------------------------------------------------------------------


async def test_has_many_include_costs_two_statements_and_empty_parents_get_lists(
    engine: AsyncEngine,
) -> None:
    await seed_library(engine)
    orm = await relations_orm(engine)
    repo = orm.repository(authors, entity=Author)

    with capture_queries(engine) as captured:
        found = await repo.find(order_by="id", include={"books": {}})

    assert captured.count == 2
    assert [[b.title for b in a.books] for a in found] == [["A1", "A2", "A3", "A4"], ["B1"], []]
    assert all(isinstance(b, Book) for b in found[0].books)
    sql = captured.queries[1].sql.upper()
    if engine.dialect.name == "postgresql":
        assert "ANY" in sql
        assert len(captured.queries[1].params) == 1  # type: ignore[arg-type]


async def test_every_read_method_takes_include(engine: AsyncEngine) -> None:
    await seed_library(engine)
    orm = await relations_orm(engine)
    repo = orm.repository(authors, entity=Author)
    spec = {"books": {"where": {"year": {"$gte": 2001}}}}

    def titles(author: Author | None) -> list[str]:
        assert author is not None
        return [book.title for book in author.books]

    assert titles(await repo.find_by_id(1, include=spec)) == ["A2", "A3", "A4"]
    assert titles(await repo.get(2, include=spec)) == ["B1"]
    assert titles(await repo.find_one({"name": "Cy"}, include=spec)) == []
    assert [titles(a) for a in await repo.find_by_ids([2], include=spec)] == [["B1"]]
    assert [titles(a) for a in await repo.find_all(order_by="id", limit=1, include=spec)] == [
        ["A2", "A3", "A4"]
    ]
    items, total = await repo.find_and_count({"country": "BE"}, include=spec)
    assert total == 1
    assert titles(items[0]) == ["B1"]
    page = await repo.paginate(page=1, limit=2, include=spec)
    assert [titles(a) for a in page.items] == [["A2", "A3", "A4"], ["B1"]]
    cursor_page = await repo.paginate_cursor(limit=2, include=spec)
    assert [titles(a) for a in cursor_page.items] == [["A2", "A3", "A4"], ["B1"]]
    assert await repo.find_by_id(99, include=spec) is None
    assert await repo.find_by_ids([], include=spec) == []


async def test_nested_includes_cost_one_statement_per_level(engine: AsyncEngine) -> None:
    await seed_library(engine)
    orm = await relations_orm(engine)
    repo = orm.repository(authors, entity=Author)

    with capture_queries(engine) as captured:
        found = await repo.find(
            order_by="id",
            include={"books": {"include": {"tags": {"order_by": "label"}, "author": {}}}},
        )

    # authors, books, then tags and author (two relations on the second level).
    assert captured.count == 4
    ada = found[0]
    assert [t.label for t in ada.books[0].tags] == ["classic", "sf"]
    assert [t.label for t in ada.books[1].tags] == ["classic", "gone"]
    assert ada.books[2].tags == []
    assert ada.books[0].author is not None
    assert ada.books[0].author.name == "Ada"


async def test_belongs_to_has_one_and_null_keys(engine: AsyncEngine) -> None:
    await seed_library(engine)
    orm = await relations_orm(engine)
    book_repo = orm.repository(books, entity=Book)
    found = await book_repo.find(order_by="id", include="author")
    assert [b.author.name if b.author else None for b in found] == [
        "Ada",
        "Ada",
        "Ada",
        "Bo",
        "Ada",
        None,
    ]
    author_repo = orm.repository(authors, entity=Author)
    with_profiles = await author_repo.find(order_by="id", include=["profile"])
    assert [a.profile.bio if a.profile else None for a in with_profiles] == [None, "Bo's bio", None]


async def test_dict_rows_get_the_key(engine: AsyncEngine) -> None:
    await seed_library(engine)
    orm = await relations_orm(engine)
    repo = orm.repository(authors)
    found = await repo.find(order_by="id", include={"books": {"include": ["tags"]}})
    assert [len(row["books"]) for row in found] == [4, 1, 0]
    assert found[0]["books"][0]["tags"][0]["label"] in ("sf", "classic")
    rows = await repo.find(columns=["id"], order_by="id", include={"books": {"count": True}})
    assert rows == [
        {"id": 1, "books_count": 4},
        {"id": 2, "books_count": 1},
        {"id": 3, "books_count": 0},
    ]
    with pytest.raises(InvalidQueryError, match="key column"):
        await repo.find(columns=["name"], include="books")


async def test_per_parent_limit_order_where_and_count(engine: AsyncEngine) -> None:
    await seed_library(engine)
    orm = await relations_orm(engine)
    repo = orm.repository(authors, entity=Author)

    with capture_queries(engine) as captured:
        found = await repo.find(
            order_by="id",
            include={"books": {"order_by": "-year", "limit": 2, "where": {"year": {"$lt": 2020}}}},
        )
    assert captured.count == 2
    assert "ROW_NUMBER" in captured.queries[1].sql.upper()
    assert [[b.year for b in a.books] for a in found] == [[2010, 2005], [2001], []]

    zero = await repo.find(order_by="id", include={"books": {"limit": 0}})
    assert [a.books for a in zero] == [[], [], []]

    with capture_queries(engine) as captured:
        counted = await repo.find(order_by="id", include={"books": {"count": True}})
    assert captured.count == 2
    assert [a.books_count for a in counted] == [4, 1, 0]
    counted = await repo.find(
        order_by="id", include={"books": {"count": True, "where": {"year": {"$gt": 2000}}}}
    )
    assert [a.books_count for a in counted] == [3, 1, 0]


async def test_many_to_many_limit_and_count(engine: AsyncEngine) -> None:
    await seed_library(engine)
    orm = await relations_orm(engine)
    repo = orm.repository(books, entity=Book)
    found = await repo.find_by_ids(
        [10, 11, 12], include={"tags": {"order_by": "-label", "limit": 1}}
    )
    by_id = {b.id: [t.label for t in b.tags] for b in found}
    assert by_id == {10: ["sf"], 11: ["gone"], 12: []}
    plain = await orm.repository(books).find_by_ids([10, 11, 12], include={"tags": {"count": True}})
    assert {row["id"]: row["tags_count"] for row in plain} == {10: 2, 11: 2, 12: 0}


async def test_load_onto_existing_entities(engine: AsyncEngine) -> None:
    await seed_library(engine)
    orm = await relations_orm(engine)
    repo = orm.repository(authors, entity=Author)
    found = await repo.find(order_by="id")
    assert [a.books for a in found] == [[], [], []]

    with capture_queries(engine) as captured:
        returned = await repo.load(found, "books")
    assert returned is found
    assert captured.count == 1
    assert [len(a.books) for a in found] == [4, 1, 0]
    assert "books" in found[0].model_dump()
    single = await repo.find_by_id(2)
    assert single is not None
    await repo.load(single, {"books": {"include": "tags"}})
    assert [t.label for t in single.books[0].tags] == ["sf"]
    with capture_queries(engine) as captured:
        assert await repo.load([], "books") == []
    assert captured.count == 0


async def test_self_reference_and_two_keys_to_one_table(engine: AsyncEngine) -> None:
    await insert(
        engine,
        employees,
        [
            {"id": 1, "name": "boss", "manager_id": None},
            {"id": 2, "name": "ann", "manager_id": 1},
            {"id": 3, "name": "ben", "manager_id": 1},
        ],
    )
    await insert(
        engine,
        messages,
        [
            {"id": 1, "sender_id": 2, "recipient_id": 1, "body": "hi boss"},
            {"id": 2, "sender_id": 1, "recipient_id": 3, "body": "hi ben"},
        ],
    )
    orm = await relations_orm(engine)
    staff = orm.repository(employees)
    found = await staff.find(
        order_by="id", include={"manager": {}, "reports": {}, "sent": {}, "received": {}}
    )
    assert [row["manager"]["name"] if row["manager"] else None for row in found] == [
        None,
        "boss",
        "boss",
    ]
    assert [[r["name"] for r in row["reports"]] for row in found] == [["ann", "ben"], [], []]
    assert [[m["body"] for m in row["sent"]] for row in found] == [["hi ben"], ["hi boss"], []]
    assert [[m["body"] for m in row["received"]] for row in found] == [["hi boss"], [], ["hi ben"]]
    await insert(
        engine,
        follows,
        [
            {"follower_id": 2, "followee_id": 1},
            {"follower_id": 3, "followee_id": 1},
            {"follower_id": 1, "followee_id": 3},
        ],
    )
    social = await staff.find(order_by="id", include=["following", "followers"])
    assert [[r["name"] for r in row["following"]] for row in social] == [
        ["ben"],
        ["boss"],
        ["boss"],
    ]
    assert [[r["name"] for r in row["followers"]] for row in social] == [
        ["ann", "ben"],
        [],
        ["boss"],
    ]
    mail = await orm.repository(messages).find(order_by="id", include=["sender", "recipient"])
    assert [(m["sender"]["name"], m["recipient"]["name"]) for m in mail] == [
        ("ann", "boss"),
        ("boss", "ben"),
    ]


async def test_composite_keys(engine: AsyncEngine) -> None:
    await insert(
        engine,
        shops,
        [
            {"region": "north", "code": 1, "name": "n1"},
            {"region": "south", "code": 1, "name": "s1"},
            {"region": "north", "code": 2, "name": "n2"},
        ],
    )
    await insert(
        engine,
        sales,
        [
            {"region": "north", "shop_code": 1, "amount": 5},
            {"region": "south", "shop_code": 1, "amount": 7},
            {"region": "north", "shop_code": 1, "amount": 9},
        ],
    )
    orm = await relations_orm(engine)
    with capture_queries(engine) as captured:
        found = await orm.repository(shops).find(
            order_by=["region", "code"], include={"sales": {"order_by": "amount"}}
        )
    assert captured.count == 2
    assert [[s["amount"] for s in row["sales"]] for row in found] == [[5, 9], [], [7]]
    limited = await orm.repository(shops).find(
        order_by=["region", "code"], include={"sales": {"order_by": "-amount", "limit": 1}}
    )
    assert [[s["amount"] for s in row["sales"]] for row in limited] == [[9], [], [7]]
    counted = await orm.repository(shops).find(
        order_by=["region", "code"], include={"sales": {"count": True}}
    )
    assert [row["sales_count"] for row in counted] == [2, 0, 1]
    back = await orm.repository(sales).find(order_by="id", include="shop")
    assert [row["shop"]["name"] for row in back] == ["n1", "s1", "n1"]


# --- plugins --------------------------------------------------------------------------------


async def test_soft_deleted_children_are_hidden_unless_include_deleted(
    engine: AsyncEngine,
) -> None:
    await seed_library(engine)
    orm = await relations_orm(engine, plugins=[SoftDeletePlugin()])
    repo = orm.repository(authors, entity=Author)

    found = await repo.find(order_by="id", include={"books": {"include": "tags"}, "profile": {}})
    assert [[b.title for b in a.books] for a in found] == [["A1", "A2", "A3"], ["B1"], []]
    assert [t.label for t in found[0].books[1].tags] == ["classic"]
    limited = await repo.find(order_by="id", include={"books": {"order_by": "-year", "limit": 1}})
    assert [[b.title for b in a.books] for a in limited] == [["A3"], ["B1"], []]
    counted = await repo.find(order_by="id", include={"books": {"count": True}})
    assert [a.books_count for a in counted] == [3, 1, 0]

    everything = await repo.find(
        order_by="id", include={"books": {"include": "tags"}}, include_deleted=True
    )
    assert [[b.title for b in a.books] for a in everything] == [
        ["A1", "A2", "A3", "A4"],
        ["B1"],
        [],
    ]
    assert [t.label for t in everything[0].books[1].tags] == ["classic", "gone"]
    loaded = await repo.load(
        await repo.find(order_by="id"), {"books": {"count": True}}, include_deleted=True
    )
    assert [a.books_count for a in loaded] == [4, 1, 0]

    book_repo = orm.repository(books, entity=Book)
    await book_repo.soft_delete(13)  # type: ignore[attr-defined]
    found = await repo.find(order_by="id", include="books")
    assert [[b.title for b in a.books] for a in found] == [["A1", "A2", "A3"], [], []]


# --- validation -----------------------------------------------------------------------------


async def test_bad_include_specs_are_invalid_query_errors(engine: AsyncEngine) -> None:
    orm = await relations_orm(engine)
    repo = orm.repository(authors, entity=Author)

    class Bare(BaseModel):
        id: int
        name: str
        country: str

    bare = orm.repository(authors, entity=Bare)
    bad: list[tuple[Any, str]] = [
        ({"bookz": {}}, r"unknown relation 'bookz'.*\['books', 'profile'\]"),
        ({"books": {"limt": 2}}, r"unknown option.*'limt'.*options are"),
        ({"books": {"limit": -1}}, "non-negative"),
        ({"books": {"limit": True}}, "non-negative"),
        ({"books": {"count": "yes"}}, "count must be"),
        ({"books": {"count": True, "limit": 2}}, "count takes only where"),
        ({"profile": {"limit": 2}}, "limit applies to lists"),
        ({"books": {"where": {"nope": 1}}}, "nope"),
        ({"books": {"order_by": "-nope"}}, "nope"),
        ({"books": {"include": {"tagz": {}}}}, r"include\.books\.include: unknown relation 'tagz'"),
        ({"books": 3}, "options are a dict"),
        ({1: {}}, "relation names are strings"),
        (42, "include takes"),
        ([None], "relation names"),
    ]
    for spec, message in bad:
        with pytest.raises(InvalidQueryError, match=message):
            await repo.find(include=spec)
    with pytest.raises(InvalidQueryError, match=r"Bare has no field 'books'.*books: list"):
        await bare.find(include="books")
    with pytest.raises(InvalidQueryError, match=r"no relations; declare them with orm\.relate"):
        await create_repository(engine, authors).find(include="books")
    deep: dict[str, Any] = {}
    spec = deep
    for _ in range(40):
        spec["books"] = {"include": {"author": {"include": {}}}}
        spec = spec["books"]["include"]["author"]["include"]
    with pytest.raises(InvalidQueryError, match="nest deeper"):
        await repo.find(include=deep)


async def test_create_orm_with_foreign_key_relations(engine: AsyncEngine) -> None:
    await seed_library(engine)
    orm = await create_orm(engine, relations="foreign_keys")
    found = await orm.repository(authors).find(
        order_by="id", include={"rl_books": {"include": ["author"]}}
    )
    assert [len(row["rl_books"]) for row in found] == [4, 1, 0]
    assert found[0]["rl_books"][0]["author"]["name"] == "Ada"
    orm.relate(has_many(authors, "rl_books", books, foreign_key="author_id"))
    with pytest.raises(ValueError, match="foreign_keys"):
        await create_orm(engine, relations="everything")  # type: ignore[arg-type]


# --- size -----------------------------------------------------------------------------------


async def test_forty_thousand_parents_load_in_one_statement_per_bind_limit(
    engine: AsyncEngine,
) -> None:
    parents = 40_000
    await insert(engine, authors, [{"id": n, "name": f"a{n}"} for n in range(1, parents + 1)])
    await insert(
        engine,
        books,
        [{"author_id": n, "title": f"b{n}", "year": 2000} for n in range(1, parents + 1, 1000)],
    )
    orm = await relations_orm(engine)
    repo = orm.repository(authors)
    with capture_queries(engine) as captured:
        found = await repo.find(include={"books": {}, "profile": {}})
    assert len(found) == parents
    assert sum(len(row["books"]) for row in found) == parents // 1000
    assert all(row["profile"] is None for row in found)
    # One statement for the authors, then per relation: PostgreSQL one (an array), MySQL /
    # MariaDB one (65,535 binds), SQLite two (32,766 binds).
    per_relation = 2 if engine.dialect.name == "sqlite" else 1
    assert captured.count == 1 + 2 * per_relation
    if engine.dialect.name == "postgresql":
        assert all(len(query.params) == 1 for query in captured.queries[1:])  # type: ignore[arg-type]


async def test_a_tenancy_plugin_scopes_related_rows(engine: AsyncEngine) -> None:
    await insert(
        engine,
        teams,
        [{"id": 1, "tenant_id": 1, "name": "red"}, {"id": 2, "tenant_id": 1, "name": "blue"}],
    )
    # A member of tenant 2 pointing at tenant 1's team: scoping must hide it.
    await insert(
        engine,
        members,
        [
            {"id": 1, "tenant_id": 1, "team_id": 1, "name": "ann"},
            {"id": 2, "tenant_id": 2, "team_id": 1, "name": "intruder"},
            {"id": 3, "tenant_id": 1, "team_id": 2, "name": "ben"},
        ],
    )
    orm = await relations_orm(engine, plugins=[TenantPlugin()])
    repo = orm.repository(teams)
    with tenant_scope(1):
        found = await repo.find(order_by="id", include={"members": {}})
        counted = await repo.find(order_by="id", include={"members": {"count": True}})
        limited = await repo.find(order_by="id", include={"members": {"limit": 5}})
    assert [[m["name"] for m in row["members"]] for row in found] == [["ann"], ["ben"]]
    assert [row["members_count"] for row in counted] == [1, 1]
    assert [[m["name"] for m in row["members"]] for row in limited] == [["ann"], ["ben"]]
    everyone = await repo.find(order_by="id", include="members", all_tenants=True)
    assert [[m["name"] for m in row["members"]] for row in everyone] == [
        ["ann", "intruder"],
        ["ben"],
    ]
    with pytest.raises(TenantError):
        await repo.load([{"id": 1}], "members")  # no tenant: refused, not unscoped


async def test_audit_timestamps_and_soft_delete_keep_working_with_relations(
    engine: AsyncEngine,
) -> None:
    audit_table = await create_audit_table(engine, "rl_audit_logs")
    async with engine.begin() as connection:
        await connection.execute(sa.delete(audit_table))
    orm = await relations_orm(
        engine,
        plugins=[SoftDeletePlugin(), TimestampsPlugin(), AuditPlugin(table="rl_audit_logs")],
    )
    author_repo = orm.repository(authors, entity=Author)
    ada = await author_repo.create({"name": "Ada"})
    book_repo = orm.repository(books, entity=Book)
    first = await book_repo.create({"author_id": ada.id, "title": "one", "year": 2000})
    await book_repo.create({"author_id": ada.id, "title": "two", "year": 2001})
    profile_repo = orm.repository(profiles)
    profile = await profile_repo.create({"author_id": ada.id, "bio": "b"})
    assert profile["created_at"] is not None
    await book_repo.soft_delete(first.id)  # type: ignore[attr-defined]

    found = await author_repo.find_by_id(ada.id, include={"books": {}, "profile": {}})
    assert found is not None
    assert [b.title for b in found.books] == ["two"]
    assert found.profile is not None
    assert found.profile.bio == "b"
    async with engine.connect() as connection:
        logged = (
            await connection.execute(sa.select(sa.func.count()).select_from(audit_table))
        ).scalar_one()
    assert logged == 5  # four inserts and one soft delete


async def test_keys_matched_by_the_database_collation_land_on_their_parent(
    engine: AsyncEngine,
) -> None:
    await insert(
        engine,
        countries,
        [{"code": "nl", "name": "Netherlands"}, {"code": "be", "name": "Belgium"}],
    )
    await insert(
        engine,
        cities,
        [
            {"id": 1, "country_code": "NL", "name": "Delft"},
            {"id": 2, "country_code": "nl", "name": "Utrecht"},
            {"id": 3, "country_code": "be", "name": "Gent"},
        ],
    )
    orm = await relations_orm(engine)
    repo = orm.repository(countries)
    found = await repo.find(order_by="code", include="cities")
    counted = await repo.find(order_by="code", include={"cities": {"count": True}})
    # Whatever the database matched (MySQL/MariaDB: case-insensitively) reaches the parent.
    folds_case = engine.dialect.name == "mysql"
    expected = [["Gent"], ["Delft", "Utrecht"] if folds_case else ["Utrecht"]]
    assert [[c["name"] for c in row["cities"]] for row in found] == expected
    assert [row["cities_count"] for row in counted] == [len(names) for names in expected]


async def test_trusted_rows_fill_relation_fields_too(engine: AsyncEngine) -> None:
    await seed_library(engine)
    orm = await relations_orm(engine)
    repo = orm.repository(authors, entity=Author, validate_results=False)
    found = await repo.find(order_by="id", include={"books": {"include": ["tags", "author"]}})
    assert [[b.title for b in a.books] for a in found] == [["A1", "A2", "A3", "A4"], ["B1"], []]
    assert isinstance(found[0].books[0], Book)
    assert [t.label for t in found[0].books[0].tags] == ["sf", "classic"]
    assert found[1].books[0].author is not None
    assert found[1].books[0].author.name == "Bo"


async def test_has_one_takes_the_first_row_in_its_order(engine: AsyncEngine) -> None:
    await seed_library(engine)
    orm = await relations_orm(engine)
    orm.relate(has_one(authors, "latest", books))
    repo = orm.repository(authors)
    newest = await repo.find(order_by="id", include={"latest": {"order_by": "-year"}})
    assert [row["latest"]["title"] if row["latest"] else None for row in newest] == [
        "A4",
        "B1",
        None,
    ]
    oldest = await repo.find(order_by="id", include="latest")  # default: primary key order
    assert [row["latest"]["title"] if row["latest"] else None for row in oldest] == [
        "A1",
        "B1",
        None,
    ]
