"""Keyset positions compare values the way the database orders them (MySQL/MariaDB ENUM by
index, collations folding case), and no cursor is handed out that would be refused
(SPEC §7, issue 14 cases 4 and 5)."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import (
    Column,
    Enum,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import InvalidCursorError, InvalidQueryError, encode_cursor, paginate_cursor
from kysera.core._keyset import plan_keyset
from kysera.core.cursors import MAX_CURSOR_LENGTH, decode_cursor

LABELS = ("zeta", "alpha", "Mid", "beta")


class Color(enum.Enum):
    """Stored by name, declared out of alphabetical order."""

    red = "R"
    green = "G"
    blue = "B"


metadata = MetaData()
things = Table(
    "ks_val_things",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    # Declared out of alphabetical order: MySQL/MariaDB and PostgreSQL sort by declaration.
    Column("kind", Enum(*LABELS, name="ks_val_kind"), nullable=True),
    Column("name", String(20), nullable=False),
    Column("note", Text, nullable=True),
    Column("blob", LargeBinary, nullable=True),
    Column("wide", String(4000), nullable=True),
    Column("color", Enum(Color, name="ks_val_color"), nullable=True),
)
NAMES = ["a", "A", "b", "B", "á", "a ", "Zed", "zed", "", "ß", "ss"]
ROWS = [
    {
        "id": i,
        "kind": None if i % 9 == 4 else LABELS[(i * 7) % len(LABELS)],
        "name": NAMES[(i * 5) % len(NAMES)],
        "note": "x" * (i % 3),
        "color": None if i % 7 == 3 else list(Color)[(i * 5) % 3],
    }
    for i in range(1, 301)
]


@pytest_asyncio.fixture
async def engine(kysera_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
        await connection.execute(insert(things), ROWS)
    yield kysera_engine
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)


async def walk_ids(
    engine: AsyncEngine, statement: Any, order_by: list[Any], limit: int
) -> tuple[list[int], list[int]]:
    forward: list[int] = []
    page = await paginate_cursor(engine, statement, order_by=order_by, limit=limit)
    forward += [row["id"] for row in page.items]
    while page.next_cursor is not None:
        page = await paginate_cursor(
            engine, statement, order_by=order_by, limit=limit, after=page.next_cursor
        )
        forward += [row["id"] for row in page.items]
    backward = [row["id"] for row in page.items]
    while page.prev_cursor is not None:
        page = await paginate_cursor(
            engine, statement, order_by=order_by, limit=limit, before=page.prev_cursor
        )
        backward = [row["id"] for row in page.items] + backward
    return forward, backward


async def database_order(engine: AsyncEngine, *terms: Any) -> list[int]:
    """The ids in the order the database itself sorts them (NULLs last, then id)."""
    async with engine.connect() as connection:
        result = await connection.execute(select(things.c.id).order_by(*terms))
        return list(result.scalars())


@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
async def test_an_enum_walk_follows_the_database_order(
    engine: AsyncEngine, descending: bool
) -> None:
    # Issue 14 case 4: MySQL/MariaDB sort an ENUM by index but compared it as text.
    kind = things.c.kind
    term = kind.desc() if descending else kind.asc()
    id_term = things.c.id.desc() if descending else things.c.id.asc()

    forward, backward = await walk_ids(engine, select(things.c.id), [term], limit=7)

    assert forward == await database_order(engine, kind.is_(None), term, id_term)
    assert backward == forward


@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
async def test_a_python_enum_key_pages_by_its_stored_value(
    engine: AsyncEngine, descending: bool
) -> None:
    # Rows hold Color members; the cursor carries the stored name and binds it back.
    color = things.c.color
    term = color.desc() if descending else color.asc()
    id_term = things.c.id.desc() if descending else things.c.id.asc()

    forward, backward = await walk_ids(engine, select(things.c.id), [term], limit=9)

    assert forward == await database_order(engine, color.is_(None), term, id_term)
    assert backward == forward


async def test_an_enum_in_a_mixed_ordering_walks_every_row(engine: AsyncEngine) -> None:
    order_by = [things.c.kind.desc().nulls_first(), things.c.name, things.c.id.desc()]

    forward, backward = await walk_ids(engine, select(things.c.id), order_by, limit=11)

    assert sorted(forward) == list(range(1, 301))
    assert backward == forward


async def test_a_forged_enum_label_is_an_invalid_cursor(engine: AsyncEngine) -> None:
    plan = plan_keyset(select(things.c.id), [things.c.kind])
    forged = encode_cursor(["omega", 3], ordering=plan.fingerprint)

    with pytest.raises(InvalidCursorError):
        await paginate_cursor(engine, select(things.c.id), order_by=[things.c.kind], after=forged)


@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
async def test_a_string_walk_follows_the_column_collation(
    engine: AsyncEngine, descending: bool
) -> None:
    # Case, accents and trailing spaces: equal or not as the collation says, compared in SQL.
    name = things.c.name
    term = name.desc() if descending else name.asc()
    id_term = things.c.id.desc() if descending else things.c.id.asc()

    forward, backward = await walk_ids(engine, select(things.c.id), [term], limit=6)

    assert forward == await database_order(engine, term, id_term)
    assert backward == forward


@pytest.mark.parametrize("column", ["blob", "wide"])
async def test_a_key_that_cannot_make_a_cursor_is_refused_up_front(
    engine: AsyncEngine, column: str
) -> None:
    with pytest.raises(InvalidQueryError, match="cannot make a keyset cursor"):
        await paginate_cursor(engine, select(things), order_by=[things.c[column]])


async def test_a_row_too_long_for_a_cursor_raises_instead_of_handing_it_out(
    engine: AsyncEngine,
) -> None:
    # Issue 14 case 5: an unbounded text key with a long value.
    async with engine.begin() as connection:
        await connection.execute(
            things.update().where(things.c.id == 2).values(note="z" + "é" * 5000)
        )
    statement = select(things.c.id).where(things.c.id <= 3)

    with pytest.raises(InvalidQueryError, match="cursor"):
        await paginate_cursor(engine, statement, order_by=[things.c.note.desc()], limit=1)
    # Shorter values page as usual.
    page = await paginate_cursor(engine, statement, order_by=[things.c.note], limit=1)
    assert page.next_cursor is not None


def test_every_cursor_encode_hands_out_decodes() -> None:
    for length in (100, 3000, 6000, 6100, 6200, 7000):
        for secret in (None, "k"):
            try:
                cursor = encode_cursor(["x" * length, 1], ordering="o", secret=secret)
            except InvalidQueryError:
                continue
            assert len(cursor) <= MAX_CURSOR_LENGTH
            assert decode_cursor(cursor, ordering="o", secret=secret) == ("x" * length, 1)
