"""The keyset condition only ever narrows the statement's WHERE (SPEC §7, issue 14 case 1):
whatever cursor comes in, signed or forged, no row outside the WHERE comes back."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, or_, select, text
from sqlalchemy.dialects.postgresql import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import DatabaseError, InvalidCursorError, paginate_cursor
from kysera.core._keyset import plan_keyset
from kysera.core.cursors import encode_cursor

metadata = MetaData()
scores = Table(
    "ks_filter_scores",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("tenant", Integer, nullable=False),
    Column("score", Integer, nullable=True),
    Column("label", String(4), nullable=True),
)
ROWS = [
    {"id": 1, "tenant": 1, "score": 5, "label": "a"},
    {"id": 2, "tenant": 1, "score": None, "label": None},
    {"id": 3, "tenant": 1, "score": None, "label": "b"},
    {"id": 4, "tenant": 2, "score": None, "label": "a"},
    {"id": 5, "tenant": 2, "score": 7, "label": None},
    {"id": 6, "tenant": 1, "score": 7, "label": "c"},
    {"id": 7, "tenant": 3, "score": 5, "label": "b"},
]


@pytest_asyncio.fixture
async def engine(kysera_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
        await connection.execute(insert(scores), ROWS)
    yield kysera_engine
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)


async def test_the_issue_minimal_case_stays_in_its_tenant(engine: AsyncEngine) -> None:
    # Issue 14 case 1: a cursor on a NULL score, walked back with before=.
    async with engine.begin() as connection:
        await connection.execute(scores.delete().where(scores.c.id > 4))
    statement = select(scores).where(scores.c.tenant == 1)
    order_by = [scores.c.score.desc()]

    first = await paginate_cursor(engine, statement, order_by=order_by, limit=2)
    second = await paginate_cursor(
        engine, statement, order_by=order_by, limit=2, after=first.next_cursor
    )
    back = await paginate_cursor(
        engine, statement, order_by=order_by, limit=2, before=second.prev_cursor
    )

    assert [row["id"] for row in first.items] == [1, 3]
    assert [row["id"] for row in second.items] == [2]
    assert [row["id"] for row in back.items] == [1, 3]
    assert all(row["tenant"] == 1 for row in first.items + second.items + back.items)


async def test_nulls_first_walks_stay_in_the_where(engine: AsyncEngine) -> None:
    statement = select(scores).where(scores.c.tenant == 1)
    order_by = [scores.c.score.asc().nulls_first()]
    seen: list[int] = []
    page = await paginate_cursor(engine, statement, order_by=order_by, limit=1)
    seen += [row["id"] for row in page.items]
    while page.next_cursor is not None:
        page = await paginate_cursor(
            engine, statement, order_by=order_by, limit=1, after=page.next_cursor
        )
        seen += [row["id"] for row in page.items]

    assert seen == [2, 3, 1, 6]


async def test_a_textual_where_holding_an_or_keeps_the_position(engine: AsyncEngine) -> None:
    # text() is opaque to SQLAlchemy's precedence rules: it is parenthesised before the
    # keyset condition is added, or `a OR b AND (position)` would repeat the a-rows.
    statement = select(scores).where(text("tenant = 1 OR tenant = 3"))
    order_by = [scores.c.score.desc()]
    seen: list[int] = []
    page = await paginate_cursor(engine, statement, order_by=order_by, limit=2)
    seen += [row["id"] for row in page.items]
    while page.next_cursor is not None:
        page = await paginate_cursor(
            engine, statement, order_by=order_by, limit=2, after=page.next_cursor
        )
        seen += [row["id"] for row in page.items]

    assert seen == [6, 7, 1, 3, 2]


def test_the_keyset_condition_is_one_parenthesised_conjunct() -> None:
    dialect = asyncpg.dialect()
    statement = select(scores).where(or_(scores.c.tenant == 1, scores.c.label == "a"))
    plan = plan_keyset(statement, [scores.c.score.desc(), scores.c.label])
    page, _ = plan.statement(statement, dialect, (None, "a", 1), backwards=True, limit=3)
    sql = " ".join(str(page.compile(dialect=dialect)).split())

    where = sql.split(" WHERE ", 1)[1].split(" ORDER BY ")[0]
    user, _, position = where.partition(") AND (")
    assert user.startswith("(")
    assert position.endswith(")")
    depth = 0
    for character in position[:-1]:
        depth += {"(": 1, ")": -1}.get(character, 0)
        assert depth >= 0, where


forged_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.text(max_size=6),
    st.floats(allow_nan=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
)
small_ints = st.integers(-1, 8)
ORDERINGS: list[list[Any]] = [
    [scores.c.score.desc()],
    [scores.c.score.asc().nulls_first()],
    [scores.c.label, scores.c.score.desc().nulls_first()],
    [scores.c.label.desc().nulls_last(), scores.c.id.desc()],
]
WHERES: list[Any] = [
    (scores.c.tenant == 1, lambda row: row["tenant"] == 1),
    (
        or_(scores.c.tenant == 2, scores.c.label.is_(None)),
        lambda row: row["tenant"] == 2 or row["label"] is None,
    ),
    (text("tenant <> 1"), lambda row: row["tenant"] != 1),
]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ordering=st.sampled_from(range(len(ORDERINGS))),
    where=st.sampled_from(range(len(WHERES))),
    data=st.data(),
    backwards=st.booleans(),
    limit=st.integers(1, 8),
)
async def test_forged_unsigned_cursors_never_return_a_row_outside_the_where(
    engine: AsyncEngine,
    ordering: int,
    where: int,
    data: st.DataObject,
    backwards: bool,
    limit: int,
) -> None:
    order_by = ORDERINGS[ordering]
    condition, holds = WHERES[where]
    statement = select(scores).where(condition)
    plan = plan_keyset(statement, order_by)
    fingerprint = plan.fingerprint
    # Any JSON the decoder accepts: the real fingerprint, and values of any supported type,
    # or (mostly) values shaped like a real position, NULLs where no NULL can be included.
    shaped = st.tuples(
        *(
            st.none() | (st.text(max_size=3) if key.expression.key == "label" else small_ints)
            for key in plan.keys
        )
    ).map(list)
    values = data.draw(shaped | st.lists(forged_values, max_size=4))
    cursor = encode_cursor(values, ordering=fingerprint)
    direction = "before" if backwards else "after"

    with contextlib.suppress(InvalidCursorError, DatabaseError):
        page = await paginate_cursor(
            engine, statement, order_by=order_by, limit=limit, **{direction: cursor}
        )
        rows = {row["id"]: row for row in ROWS}
        assert all(holds(rows[item["id"]]) for item in page.items), page.items
