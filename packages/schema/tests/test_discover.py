"""`discover` on a sample schema nobody here designed (Sakila), on every database."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pydantic
import pytest
import sqlalchemy as sa
from sakila import NAMES, TABLES
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import ValidationError
from kysera.core.testing import snapshot_table
from kysera.schema import ReadOnlyError, UnknownTableError, ViewRepository, discover


async def test_discover_finds_the_tables_the_view_and_their_keys(engine: AsyncEngine) -> None:
    schema = await discover(engine, include=NAMES)
    assert sorted(schema.tables) == sorted(NAMES)
    assert schema.views == {"film_list"}
    film = schema.tables["film"]
    assert [c.name for c in film.primary_key.columns] == ["film_id"]
    assert [c.name for c in schema.tables["film_actor"].primary_key.columns] == [
        "actor_id",
        "film_id",
    ]
    assert {fk.parent.name for fk in film.foreign_keys} == {"language_id", "original_language_id"}


async def test_models_follow_the_column_types_defaults_and_nullability(
    engine: AsyncEngine,
) -> None:
    schema = await discover(engine, include=TABLES)
    film = schema.models["film"]
    # What an insert must give: the columns without a default that may not be NULL.
    required = {name for name, field in film.Create.model_fields.items() if field.is_required()}
    assert required == {"title", "language_id"}
    # Read: every column, and an (empty until loaded) field per relation.
    columns = {c.name for c in schema.tables["film"].columns}
    relations = {r.name for r in schema.relations if r.source.name == "film"}
    assert set(film.Read.model_fields) == columns | relations
    row = film.Create.model_validate({"title": "NEW FILM", "language_id": 1})
    assert row.model_dump(exclude_unset=True) == {"title": "NEW FILM", "language_id": 1}
    with pytest.raises(pydantic.ValidationError, match=r"at most \d+ characters"):
        film.Create.model_validate({"title": "x" * 300, "language_id": 1})
    # Every field of Update may be left out.
    assert not any(field.is_required() for field in film.Update.model_fields.values())
    staff = schema.models["staff"].Create
    assert staff.model_validate({"first_name": "a", "last_name": "b", "email": None})
    with pytest.raises(pydantic.ValidationError, match="at most 50"):
        staff.model_validate({"first_name": "a", "last_name": "b", "email": "x" * 51})
    assert schema.models["staff"].Read.model_fields["picture"].annotation == bytes | None
    assert schema.models["film"].Read.model_fields["rental_rate"].annotation is decimal.Decimal
    last_update = schema.models["actor"].Read.model_fields["last_update"].annotation
    assert last_update is dt.datetime


async def test_relations_come_from_the_foreign_keys_and_the_join_tables(
    engine: AsyncEngine,
) -> None:
    schema = await discover(engine, include=TABLES)
    found = {(r.kind, r.source.name, r.name, r.target.name) for r in schema.relations}
    assert {
        ("belongs_to", "film", "language", "language"),
        ("belongs_to", "film", "original_language", "language"),
        ("has_many", "language", "film_by_language", "film"),
        ("has_many", "language", "film_by_original_language", "film"),
        ("many_to_many", "film", "actor", "actor"),
        ("many_to_many", "actor", "film", "film"),
        ("many_to_many", "film", "category", "category"),
        ("many_to_many", "category", "film", "film"),
        ("belongs_to", "staff", "staff", "staff"),
        ("has_many", "staff", "staff_by_reports_to", "staff"),
    } <= found


async def test_repositories_read_write_and_load_relations(engine: AsyncEngine) -> None:
    schema = await discover(engine, include=NAMES)
    repos = schema.repositories(await schema.create_orm(engine))
    films = await repos.film.find(order_by="film_id", include=["actor", "language"])
    assert [f.title for f in films] == ["ACADEMY DINOSAUR", "ACE GOLDFINGER"]
    assert isinstance(films[0], schema.models["film"].Read)
    assert sorted(a.last_name for a in films[0].actor) == ["GUINESS", "WAHLBERG"]  # type: ignore[attr-defined]
    assert films[0].language.name.strip() == "English"  # type: ignore[attr-defined]

    made = await repos.film.create({"title": "NEW FILM", "language_id": 2})
    assert made.film_id > 2  # type: ignore[attr-defined]
    assert made.rental_duration == 3  # the server default, read back  # type: ignore[attr-defined]
    updated = await repos.film.update(made.film_id, {"length": 90})  # type: ignore[attr-defined]
    assert updated.length == 90  # type: ignore[attr-defined]

    boss = await repos.staff.create({"first_name": "Mike", "last_name": "Hillyer"})
    clerk = await repos.staff.create(
        {"first_name": "Jon", "last_name": "Stephens", "reports_to": boss.staff_id}  # type: ignore[attr-defined]
    )
    loaded = await repos.staff.get(clerk.staff_id, include="staff")  # type: ignore[attr-defined]
    assert loaded.staff.last_name == "Hillyer"  # type: ignore[attr-defined]
    manager = await repos.staff.get(boss.staff_id, include="staff_by_reports_to")  # type: ignore[attr-defined]
    assert [s.first_name for s in manager.staff_by_reports_to] == ["Jon"]  # type: ignore[attr-defined]


async def test_bad_input_is_refused_before_anything_is_written(engine: AsyncEngine) -> None:
    schema = await discover(engine, include=TABLES)
    repos = schema.repositories(await schema.create_orm(engine))
    before = await snapshot_table(engine, schema.tables["film"])
    with pytest.raises(ValidationError):
        await repos.film.create({"title": "x" * 300, "language_id": 1})
    with pytest.raises(ValidationError):
        await repos.film.create({"language_id": 1})  # no title
    with pytest.raises(ValidationError):
        await repos.film.update(1, {"title": None})
    assert await snapshot_table(engine, schema.tables["film"]) == before


async def test_a_view_is_read_only(engine: AsyncEngine) -> None:
    schema = await discover(engine, include=NAMES)
    repos = schema.repositories(await schema.create_orm(engine))
    assert isinstance(repos.film_list, ViewRepository)
    rows = await repos.film_list.find(order_by="fid")
    assert [(r.title, r.category) for r in rows] == [  # type: ignore[attr-defined]
        ("ACADEMY DINOSAUR", "Action"),
        ("ACE GOLDFINGER", "Comedy"),
    ]
    with pytest.raises(ReadOnlyError) as raised:
        await repos.film_list.create({"title": "x"})
    assert raised.value.code == "SCHEMA_READ_ONLY"
    with pytest.raises(ReadOnlyError):
        await repos["film_list"].delete_many([1])


async def test_a_view_with_a_json_column_is_keyed_by_its_scalar_columns_and_pages(
    kysera_engine: AsyncEngine,
) -> None:
    metadata = sa.MetaData()
    documents = sa.Table(
        "document",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.String(20), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("scan", sa.LargeBinary),
    )
    async with kysera_engine.begin() as connection:
        await connection.execute(sa.text("DROP VIEW IF EXISTS document_list"))
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
        rows = [{"id": n, "title": f"t{n}", "body": {"n": n}, "scan": b"\xff"} for n in range(1, 6)]
        await connection.execute(documents.insert(), rows)
        await connection.execute(
            sa.text("CREATE VIEW document_list AS SELECT id, title, body, scan FROM document")
        )
    try:
        schema = await discover(kysera_engine, include="document_list")
        view = schema.tables["document_list"]
        key = view.primary_key.columns.keys()
        # MariaDB's JSON is LONGTEXT, which reads back as text: a scalar a cursor carries.
        json_is_text = kysera_engine.dialect.name == "mysql"
        assert key == (["id", "title", "body"] if json_is_text else ["id", "title"])
        repos = schema.repositories(await schema.create_orm(kysera_engine))
        page = await repos.document_list.paginate_cursor(limit=3)
        seen = [row.id for row in page.items]  # type: ignore[attr-defined]
        page = await repos.document_list.paginate_cursor(limit=3, after=page.next_cursor)
        seen += [row.id for row in page.items]  # type: ignore[attr-defined]
        assert sorted(seen) == [1, 2, 3, 4, 5]
    finally:
        async with kysera_engine.begin() as connection:
            await connection.execute(sa.text("DROP VIEW document_list"))
            await connection.run_sync(metadata.drop_all)


@pytest.mark.kysera_databases("postgresql")
async def test_a_materialized_view_is_discovered_as_a_read_only_view(
    kysera_engine: AsyncEngine,
) -> None:
    async with kysera_engine.begin() as connection:
        await connection.execute(sa.text("DROP MATERIALIZED VIEW IF EXISTS sales_by_day"))
        await connection.execute(
            sa.text(
                "CREATE MATERIALIZED VIEW sales_by_day AS "
                "SELECT n AS day, n * 10 AS total FROM generate_series(1, 3) AS n"
            )
        )
    try:
        schema = await discover(kysera_engine, include=["sales_by_day"])
        assert schema.views == frozenset({"sales_by_day"})
        repos = schema.repositories(await schema.create_orm(kysera_engine))
        assert isinstance(repos.sales_by_day, ViewRepository)
        rows = await repos.sales_by_day.find(order_by="day")
        assert [row.total for row in rows] == [10, 20, 30]  # type: ignore[attr-defined]
        with pytest.raises(ReadOnlyError):
            await repos.sales_by_day.create({"day": 4, "total": 40})
    finally:
        async with kysera_engine.begin() as connection:
            await connection.execute(sa.text("DROP MATERIALIZED VIEW sales_by_day"))


async def test_include_and_exclude_choose_what_is_discovered(engine: AsyncEngine) -> None:
    only = await discover(engine, include=["film", "language"])
    assert sorted(only.tables) == ["film", "language"]
    # Relations only between what was discovered.
    assert {r.target.name for r in only.relations} <= {"film", "language"}
    without = await discover(engine, include=NAMES, exclude="film_list")
    assert "film_list" not in without.tables
    with pytest.raises(UnknownTableError) as raised:
        await discover(engine, include=["film", "no_such_table"])
    assert raised.value.names == ["no_such_table"]
    with pytest.raises(TypeError):
        await discover(engine, include=[1])  # type: ignore[list-item]


async def test_reflection_queries_do_not_grow_with_the_tables_on_postgresql(
    kysera_engine: AsyncEngine,
) -> None:
    """Bulk reflection: the same number of catalog queries for 5 tables as for 50."""
    from kysera.core.capture import capture_queries

    if kysera_engine.dialect.name != "postgresql":
        pytest.skip("the catalog query count is PostgreSQL's property (SQLite reads per table)")
    metadata = sa.MetaData()
    names = [f"discovery_bulk_{i}" for i in range(50)]
    for index, name in enumerate(names):
        columns: list[Any] = [sa.Column("id", sa.Integer, primary_key=True)]
        if index:
            columns.append(sa.Column("parent_id", sa.ForeignKey(f"{names[index - 1]}.id")))
        sa.Table(name, metadata, *columns, sa.Column("label", sa.String(20)))
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    try:
        counts = []
        for size in (5, 50):
            with capture_queries(kysera_engine) as captured:
                found = await discover(kysera_engine, include=names[:size])
            assert len(found.tables) == size
            counts.append(captured.count)
        assert counts[0] == counts[1], counts
    finally:
        async with kysera_engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)


async def test_enums_and_arrays_become_typed_fields(engine: AsyncEngine) -> None:
    schema = await discover(engine, include=TABLES)
    create = schema.models["film"].Create
    base = {"title": "T", "language_id": 1}
    assert create.model_validate({**base, "rating": "PG-13"})
    if engine.dialect.name in ("postgresql", "mysql"):
        # A native enum (PostgreSQL's mpaa_rating type, MySQL's ENUM): only its labels.
        with pytest.raises(pydantic.ValidationError, match="PG-13"):
            create.model_validate({**base, "rating": "X"})
    if engine.dialect.name == "postgresql":
        row = create.model_validate({**base, "special_features": ["Trailers"]})
        assert row.special_features == ["Trailers"]  # type: ignore[attr-defined]
        with pytest.raises(pydantic.ValidationError, match="list"):
            create.model_validate({**base, "special_features": "Trailers"})
