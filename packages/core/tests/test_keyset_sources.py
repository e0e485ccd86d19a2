"""Keyset tiebreakers for every source in the FROM, however the join is written, with the
optional side of an outer join nullable; sources without a provable key are refused unless
``unique=True`` (SPEC §7, issue 14 cases 2 and 3)."""

from __future__ import annotations

from collections import Counter
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
    column,
    event,
    func,
    insert,
    select,
    table,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import InvalidQueryError, paginate_cursor

metadata = MetaData()
owners = Table(
    "ks_src_owners",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(10), nullable=False),
)
pets = Table(
    "ks_src_pets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("owner_id", ForeignKey("ks_src_owners.id"), nullable=True),
    Column("age", Integer, nullable=False),
)
# The view as a reflected view looks: no primary key.
pet_view = Table(
    "ks_src_pet_view",
    MetaData(),
    Column("id", Integer),
    Column("owner_id", Integer),
    Column("age", Integer),
)
OWNERS = [{"id": i, "name": "same"} for i in (1, 2, 3, 4)]
# Owner 4 has no pet; pet 19 has no owner; ages repeat.
PETS = [{"id": 10 + i, "owner_id": 1 + i % 3, "age": i % 3} for i in range(9)] + [
    {"id": 19, "owner_id": None, "age": 1}
]


@pytest_asyncio.fixture
async def engine(kysera_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    async with kysera_engine.begin() as connection:
        await connection.execute(text("DROP VIEW IF EXISTS ks_src_pet_view"))
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
        await connection.execute(insert(owners), OWNERS)
        await connection.execute(insert(pets), PETS)
        await connection.execute(
            text("CREATE VIEW ks_src_pet_view AS SELECT id, owner_id, age FROM ks_src_pets")
        )
    yield kysera_engine
    async with kysera_engine.begin() as connection:
        await connection.execute(text("DROP VIEW IF EXISTS ks_src_pet_view"))
        await connection.run_sync(metadata.drop_all)


async def walk(
    engine: AsyncEngine, statement: Any, order_by: list[Any], limit: int, **options: Any
) -> list[dict[str, Any]]:
    """Every page forwards, then every page backwards; both must agree."""
    forward: list[dict[str, Any]] = []
    page = await paginate_cursor(engine, statement, order_by=order_by, limit=limit, **options)
    forward += page.items
    while page.next_cursor is not None:
        page = await paginate_cursor(
            engine, statement, order_by=order_by, limit=limit, after=page.next_cursor, **options
        )
        forward += page.items
    backward = list(page.items)
    while page.prev_cursor is not None:
        page = await paginate_cursor(
            engine, statement, order_by=order_by, limit=limit, before=page.prev_cursor, **options
        )
        backward = page.items + backward
    assert forward == backward
    return forward


async def all_rows(engine: AsyncEngine, statement: Any) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        return [dict(row) for row in (await connection.execute(statement)).mappings()]


def multiset(rows: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    return Counter(tuple(sorted(row.items())) for row in rows)


o2 = owners.alias("o2")
p2 = pets.alias("p2")
on = pets.c.owner_id == owners.c.id
JOINS: dict[str, Any] = {
    "select_from(join)": select(owners.c.name, pets.c.age).select_from(owners.join(pets)),
    "select_from(outerjoin)": select(owners.c.name, pets.c.age).select_from(owners.outerjoin(pets)),
    "join_from": select(owners.c.name, pets.c.age).join_from(owners, pets),
    "join": select(owners.c.name, pets.c.age).join(pets, on),
    "outerjoin": select(owners.c.name, pets.c.age).outerjoin(pets, on),
    "outerjoin_from": select(owners.c.name, pets.c.age).outerjoin_from(owners, pets),
    "outerjoin_from pets first": select(owners.c.name, pets.c.age).outerjoin_from(pets, owners),
    "aliases": select(o2.c.name, p2.c.age).outerjoin_from(o2, p2, p2.c.owner_id == o2.c.id),
    "alias joined to itself": select(p2.c.age, pets.c.age.label("age2")).join_from(
        pets, p2, pets.c.owner_id == p2.c.owner_id
    ),
    "where-implied join": select(owners.c.name, pets.c.age).where(on),
}


@pytest.mark.parametrize("statement", JOINS.values(), ids=list(JOINS))
@pytest.mark.parametrize("ordering", ["first column", "second column desc"])
async def test_every_join_form_walks_its_whole_result(
    engine: AsyncEngine, statement: Any, ordering: str
) -> None:
    # The selected columns repeat across rows: only keys of both sources tell them apart.
    columns = list(statement.selected_columns)
    order_by = [columns[0]] if ordering == "first column" else [columns[1].desc()]

    for limit in (1, 3):
        walked = await walk(engine, statement, order_by, limit)

        assert multiset(walked) == multiset(await all_rows(engine, statement))


async def test_a_column_from_the_optional_side_is_nullable(engine: AsyncEngine) -> None:
    # Issue 14 case 3: owner 4 has no pet; ordered by pets.age the NULL comes last.
    statement = select(owners.c.id, pets.c.age).outerjoin_from(owners, pets)

    walked = await walk(engine, statement, [pets.c.age.desc(), owners.c.id], limit=1)

    assert walked[-1] == {"id": 4, "age": None}
    assert len(walked) == 10


async def test_a_grouped_subquery_is_told_apart_by_its_group_columns(engine: AsyncEngine) -> None:
    # Issue 14 case 2: the counts repeat, the GROUP BY column makes the order unique.
    counts = (
        select(pets.c.owner_id, func.count().label("pets"))
        .group_by(pets.c.owner_id)
        .subquery("counts")
    )

    walked = await walk(engine, select(counts), [counts.c.pets.desc()], limit=1)

    assert sorted((row["owner_id"] or 0, row["pets"]) for row in walked) == [
        (0, 1),
        (1, 3),
        (2, 3),
        (3, 3),
    ]


async def test_a_subquery_of_a_join_selecting_both_keys_is_keyed(engine: AsyncEngine) -> None:
    joined = (
        select(owners.c.id, pets.c.id.label("pet_id"), pets.c.age)
        .outerjoin_from(owners, pets)
        .subquery("joined")
    )

    walked = await walk(engine, select(joined.c.age), [joined.c.age], limit=2)

    assert sorted(row["age"] for row in walked if row["age"] is not None) == sorted(
        pet["age"] for pet in PETS if pet["owner_id"] is not None
    )
    assert len(walked) == 10


UNKEYED: dict[str, Any] = {
    "view": (select(pet_view), [pet_view.c.age]),
    "subquery of some columns of a join": (
        lambda s: (select(s), [s.c.age]),
        select(owners.c.name, pets.c.age).join_from(owners, pets).subquery("some"),
    ),
    "distinct subquery": (
        lambda s: (select(s), [s.c.age]),
        select(pets.c.age).distinct().subquery("ages"),
    ),
    "lightweight table()": (
        select(table("ks_src_pets", column("id"), column("age"))),
        [column("age")],
    ),
}


def unkeyed(name: str) -> tuple[Any, list[Any]]:
    first, second = UNKEYED[name]
    return first(second) if callable(first) else (first, second)


@pytest.mark.parametrize("name", list(UNKEYED))
async def test_a_source_without_a_provable_key_is_refused_naming_the_fix(
    engine: AsyncEngine, name: str
) -> None:
    statement, order_by = unkeyed(name)

    with pytest.raises(InvalidQueryError, match=r"unique=True") as caught:
        await paginate_cursor(engine, statement, order_by=order_by)
    assert "order_by" in caught.value.message


async def test_unique_true_pages_a_view_by_the_ordering_given(engine: AsyncEngine) -> None:
    order_by = [pet_view.c.age.desc(), pet_view.c.id]

    walked = await walk(engine, select(pet_view), order_by, limit=3, unique=True)

    expected = sorted(PETS, key=lambda pet: (-pet["age"], pet["id"]))
    assert walked == expected


async def test_unique_true_appends_no_tiebreaker(engine: AsyncEngine) -> None:
    statements: list[str] = []
    sync_engine = engine.sync_engine

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(sync_engine, "before_cursor_execute", record)
    try:
        await paginate_cursor(engine, select(pets), order_by=[pets.c.age], unique=True)
        await paginate_cursor(engine, select(pets), order_by=[pets.c.age])
    finally:
        event.remove(sync_engine, "before_cursor_execute", record)

    assert statements[0].split(" ORDER BY ")[1].startswith("ks_src_pets.age ASC LIMIT")
    assert "ks_src_pets.id ASC" in statements[1].split(" ORDER BY ")[1]


async def test_unique_must_be_a_bool(engine: AsyncEngine) -> None:
    with pytest.raises(InvalidQueryError, match="unique"):
        await paginate_cursor(engine, select(pets), order_by=[pets.c.age], unique="yes")  # type: ignore[call-overload]
