"""Keyset walks over generated statements (SPEC §7, issue 14): random WHERE filters, 1-3
ordering columns of every kind (int, text, date, datetime, decimal, enum; nullable and
not), random directions and NULL placement, joins written each of the five ways (inner and
outer, aliases), a GROUP BY subquery, a view paged with ``unique=True``.

Walking forwards to the end and backwards to the start (signed or not) yields exactly the
statement's full result in the ordering's order, so no row outside the WHERE ever comes
back; with rows inserted and deleted between pages no row is repeated or lost.

One table set is loaded per database; the statements, not the tables, are generated.
``KYSERA_KEYSET_EXAMPLES`` sets how many statements each test tries (default 300, what CI
runs on every database; fewer locally, e.g. ``KYSERA_KEYSET_EXAMPLES=40``).
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Enum,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    and_,
    func,
    insert,
    not_,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.core import paginate_cursor
from kysera.core._keyset import plan_keyset

EXAMPLES = int(os.environ.get("KYSERA_KEYSET_EXAMPLES", "300"))
# The "profile" of these tests: EXAMPLES generated statements per database.
walks = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

KINDS = ("zeta", "alpha", "Mid")
TEXTS = ["", "a", "A", "ab", "b", "Zed", "zed "]
metadata = MetaData()
a = Table(
    "ks_prop_a",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("n", Integer, nullable=False),
    Column("i", Integer, nullable=True),
    Column("t", String(8), nullable=True),
    Column("t2", String(8), nullable=False),
    Column("d", Date, nullable=True),
    Column("ts", DateTime, nullable=False),
    Column("m", Numeric(6, 2), nullable=True),
    Column("e", Enum(*KINDS, name="ks_prop_kind"), nullable=True),
    Column("b_id", Integer, nullable=True),
)
b = Table(
    "ks_prop_b",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("grp", Integer, nullable=False),
    Column("label", String(8), nullable=True),
    Column("k", Enum(*KINDS, name="ks_prop_kind_b"), nullable=False),
)
# The view as reflection shows it: no primary key.
a_view = Table(
    "ks_prop_a_view",
    MetaData(),
    *(Column(column.name, column.type, nullable=column.nullable) for column in a.columns),
)
DATES = [dt.date(2024, 1, 1), dt.date(2024, 2, 29), dt.date(1999, 12, 31)]
MOMENTS = [dt.datetime(2024, 1, 1, 9, 30), dt.datetime(2024, 1, 1, 9, 31), dt.datetime(2001, 5, 6)]
MONEY = [decimal.Decimal(v) for v in ("-1.50", "0.00", "2.25", "10.10")]
VALUES: dict[str, list[Any]] = {
    "id": list(range(0, 70, 7)),
    "n": [0, 1, 2, 3],
    "i": [0, 1, 2, 5],
    "t": TEXTS,
    "t2": TEXTS,
    "d": DATES,
    "ts": MOMENTS,
    "m": MONEY,
    "e": list(KINDS),
    "b_id": [1, 3, 5],
    "grp": [0, 1, 2],
    "label": TEXTS,
    "k": list(KINDS),
}


def a_row(number: int, chooser: random.Random) -> dict[str, Any]:
    def maybe(values: list[Any]) -> Any:
        return None if chooser.random() < 0.25 else chooser.choice(values)

    return {
        "id": number,
        "n": chooser.choice(VALUES["n"]),
        "i": maybe(VALUES["i"]),
        "t": maybe(TEXTS),
        "t2": chooser.choice(TEXTS),
        "d": maybe(DATES),
        "ts": chooser.choice(MOMENTS),
        "m": maybe(MONEY),
        "e": maybe(list(KINDS)),
        # b has ids 1..10: some rows point nowhere, some at nothing.
        "b_id": maybe(list(range(1, 13))),
    }


def b_rows() -> list[dict[str, Any]]:
    chooser = random.Random(1414)
    return [
        {
            "id": number,
            "grp": chooser.choice(VALUES["grp"]),
            "label": None if number % 4 == 0 else chooser.choice(TEXTS),
            "k": chooser.choice(KINDS),
        }
        for number in range(1, 11)
    ]


def a_rows() -> list[dict[str, Any]]:
    chooser = random.Random(14)
    return [a_row(number, chooser) for number in range(1, 61)]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def loaded(kysera_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The tables and the view, loaded once per database for every example."""
    async with kysera_engine.begin() as connection:
        await connection.execute(text("DROP VIEW IF EXISTS ks_prop_a_view"))
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
        await connection.execute(insert(a), a_rows())
        await connection.execute(insert(b), b_rows())
        await connection.execute(text("CREATE VIEW ks_prop_a_view AS SELECT * FROM ks_prop_a"))
    yield kysera_engine
    async with kysera_engine.begin() as connection:
        await connection.execute(text("DROP VIEW IF EXISTS ks_prop_a_view"))
        await connection.run_sync(metadata.drop_all)


# --- generated statements --------------------------------------------------------------------

SHAPES = [
    "table",
    "alias",
    "select_from(join)",
    "select_from(outerjoin)",
    "join_from",
    "outerjoin_from",
    "join",
    "outerjoin",
    "where-implied join",
    "aliases outerjoin_from",
    "grouped subquery",
    "keyed subquery of a join",
    "view, unique=True",
]


def source_of(shape: str) -> tuple[Any, dict[str, Any], bool]:
    """(statement without WHERE, columns by name that filters and orderings may use,
    whether the caller passes unique=True)."""
    if shape in ("table", "alias", "view, unique=True"):
        source = {"table": a, "alias": a.alias("ka"), "view, unique=True": a_view}[shape]
        columns = {name: source.c[name] for name in VALUES if name in source.c}
        return select(source), columns, shape == "view, unique=True"
    if shape == "grouped subquery":
        grouped = (
            select(
                a.c.n,
                a.c.e,
                func.count().label("rows"),
                func.max(a.c.i).label("top"),
                func.sum(a.c.m).label("total"),
            )
            .group_by(a.c.n, a.c.e)
            .subquery("grouped")
        )
        columns = {
            "n": grouped.c.n,
            "e": grouped.c.e,
            "i": grouped.c.top,
            "id": grouped.c.rows,
            "m": grouped.c.total,
        }
        return select(grouped), columns, False
    left, right = (a.alias("la"), b.alias("rb")) if shape.startswith("aliases") else (a, b)
    on = left.c.b_id == right.c.id
    both = [left.c.id.label("a_id"), right.c.id.label("b_id2"), left.c.t, right.c.k]
    if shape == "keyed subquery of a join":
        inner = (
            select(left.c.id, right.c.id.label("rid"), left.c.n, left.c.d, right.c.label)
            .outerjoin_from(left, right, on)
            .subquery("inner")
        )
        columns = {
            "id": inner.c.id,
            "n": inner.c.n,
            "d": inner.c.d,
            "label": inner.c.label,
            "grp": inner.c.rid,
        }
        return select(inner), columns, False
    statement = {
        "select_from(join)": lambda: select(*both).select_from(left.join(right, on)),
        "select_from(outerjoin)": lambda: select(*both).select_from(left.outerjoin(right, on)),
        "join_from": lambda: select(*both).join_from(left, right, on),
        "outerjoin_from": lambda: select(*both).outerjoin_from(left, right, on),
        "join": lambda: select(*both).join(right, on),
        "outerjoin": lambda: select(*both).outerjoin(right, on),
        "where-implied join": lambda: select(*both).where(on),
        "aliases outerjoin_from": lambda: select(*both).outerjoin_from(left, right, on),
    }[shape]()
    columns = {name: left.c[name] for name in ("id", "n", "i", "t", "d", "ts", "m", "e")}
    columns |= {"grp": right.c.grp, "label": right.c.label, "k": right.c.k, "b_id": right.c.id}
    return statement, columns, False


def predicates(columns: dict[str, Any]) -> st.SearchStrategy[Any]:
    def atom(name: str) -> st.SearchStrategy[Any]:
        column = columns[name]
        value = st.sampled_from(VALUES.get(name, VALUES["i"]))
        return st.one_of(
            value.map(lambda v: column == v),
            value.map(lambda v: column != v),
            value.map(lambda v: column > v),
            value.map(lambda v: column <= v),
            st.just(column.is_(None)),
            st.just(column.is_not(None)),
            st.lists(value, min_size=1, max_size=3).map(lambda vs: column.in_(vs)),
        )

    atoms = st.sampled_from(sorted(columns)).flatmap(atom)
    return st.recursive(
        atoms,
        lambda inner: st.one_of(
            st.lists(inner, min_size=2, max_size=3).map(lambda ps: or_(*ps)),
            st.lists(inner, min_size=2, max_size=3).map(lambda ps: and_(*ps)),
            inner.map(not_),
        ),
        max_leaves=4,
    )


def orderings(columns: dict[str, Any]) -> st.SearchStrategy[list[Any]]:
    def term(name: str, descending: bool, nulls: int) -> Any:
        expression = columns[name].desc() if descending else columns[name].asc()
        return [expression.nulls_first(), expression.nulls_last(), expression][nulls]

    return st.lists(
        st.tuples(st.sampled_from(sorted(columns)), st.booleans(), st.integers(0, 2)),
        min_size=1,
        max_size=3,
        unique_by=lambda item: item[0],
    ).map(lambda items: [term(*item) for item in items])


@st.composite
def statements(draw: st.DrawFn) -> tuple[Any, list[Any], bool]:
    statement, columns, unique = source_of(draw(st.sampled_from(SHAPES)))
    for _ in range(draw(st.integers(0, 2))):
        statement = statement.where(draw(predicates(columns)))
    order_by = draw(orderings(columns))
    if unique:
        # What makes the view's ordering unique, by construction: its rows' ids.
        order_by = [*order_by, columns["id"].desc()]
    return statement, order_by, unique


# --- walking -----------------------------------------------------------------------------------


async def full_result(
    executor: AsyncEngine | AsyncConnection, statement: Any, order_by: list[Any], unique: bool
) -> list[dict[str, Any]]:
    """The statement's rows in the unique ordering keyset pages by, in one query."""
    plan = plan_keyset(statement, order_by, unique=unique)
    dialect = executor.dialect
    terms = list(plan._build_parts(dialect, False, None)[1])
    if isinstance(executor, AsyncEngine):
        async with executor.connect() as connection:
            result = await connection.execute(statement.order_by(None).order_by(*terms))
            return [dict(row) for row in result.mappings()]
    result = await executor.execute(statement.order_by(None).order_by(*terms))
    return [dict(row) for row in result.mappings()]


async def walk(
    executor: AsyncEngine | AsyncConnection,
    statement: Any,
    order_by: list[Any],
    limit: int,
    **options: Any,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    forward: list[dict[str, Any]] = []
    page = await paginate_cursor(executor, statement, order_by=order_by, limit=limit, **options)
    forward += page.items
    while page.next_cursor is not None:
        assert len(page.items) == limit
        page = await paginate_cursor(
            executor, statement, order_by=order_by, limit=limit, after=page.next_cursor, **options
        )
        forward += page.items
    backward = list(page.items)
    while page.prev_cursor is not None:
        page = await paginate_cursor(
            executor, statement, order_by=order_by, limit=limit, before=page.prev_cursor, **options
        )
        backward = page.items + backward
    return forward, backward


@walks
@given(
    generated=statements(),
    limit=st.integers(1, 9),
    secret=st.sampled_from([None, "walk-secret"]),
)
async def test_a_walk_yields_the_full_ordered_result_of_any_statement(
    loaded: AsyncEngine,
    generated: tuple[Any, list[Any], bool],
    limit: int,
    secret: str | None,
) -> None:
    statement, order_by, unique = generated
    expected = await full_result(loaded, statement, order_by, unique)

    forward, backward = await walk(loaded, statement, order_by, limit, secret=secret, unique=unique)

    # Equal lists: no row skipped, repeated, out of order, or outside the WHERE.
    assert forward == expected
    assert backward == expected


@walks
@given(
    where=predicates({name: a.c[name] for name in ("n", "i", "t", "d", "m", "e")}),
    order_by=orderings({name: a.c[name] for name in ("n", "i", "t", "t2", "d", "ts", "m", "e")}),
    limit=st.integers(1, 6),
    changes=st.lists(st.tuples(st.booleans(), st.integers(0, 10**6)), min_size=1, max_size=12),
)
async def test_rows_inserted_and_deleted_between_pages_are_never_repeated(
    loaded: AsyncEngine,
    where: Any,
    order_by: list[Any],
    limit: int,
    changes: list[tuple[bool, int]],
) -> None:
    statement = select(a).where(where)
    async with loaded.connect() as connection:
        await connection.begin()
        before = {row["id"] for row in await full_result(connection, statement, order_by, False)}
        seen: list[int] = []
        deleted: set[int] = set()
        next_id = 1000
        page = await paginate_cursor(connection, statement, order_by=order_by, limit=limit)
        seen += [row["id"] for row in page.items]
        step = 0
        while page.next_cursor is not None:
            # One change per page while they last (endless inserts ahead would never end).
            insert_row, seed = changes[step] if step < len(changes) else (False, -1)
            step += 1
            if seed < 0:
                pass
            elif insert_row:
                await connection.execute(insert(a), [a_row(next_id, random.Random(seed))])
                next_id += 1
            elif before - deleted:
                victim = sorted(before - deleted)[seed % len(before - deleted)]
                await connection.execute(a.delete().where(a.c.id == victim))
                deleted.add(victim)
            page = await paginate_cursor(
                connection, statement, order_by=order_by, limit=limit, after=page.next_cursor
            )
            seen += [row["id"] for row in page.items]
        await connection.rollback()

    assert len(seen) == len(set(seen))
    # Every row there from start to end and inside the WHERE came, whatever moved around it.
    assert before - deleted <= set(seen)
    # Nothing outside the WHERE: only rows matching it at the start, or inserted since.
    assert set(seen) <= before | set(range(1000, next_id))
