"""Keyset pagination walks every row exactly once, forwards and backwards, on every database."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Uuid,
    bindparam,
    delete,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import (
    CursorPage,
    DatabaseError,
    InvalidCursorError,
    InvalidQueryError,
    encode_cursor,
    paginate,
    paginate_cursor,
)

metadata = MetaData()
items = Table(
    "pg_keyset_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("a", Integer, nullable=True),
    Column("s", String(8), nullable=True),
    Column("n", Integer, nullable=False),
    Column("d", Date, nullable=True),
    Column("m", Numeric(6, 2), nullable=True),
)
owners = Table(
    "pg_keyset_owners",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(20), nullable=False),
)
kinds = Table(
    "pg_keyset_kinds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("text", String(20), nullable=False),
    Column("number", Numeric(8, 3)),
    Column("moment", DateTime),
    Column("moment_tz", DateTime(timezone=True)),
    Column("day", Date),
    Column("token", Uuid),
    Column("blob", LargeBinary(16)),
)
lines = Table(
    "pg_keyset_lines",
    metadata,
    Column("order_no", Integer, primary_key=True, autoincrement=False),
    Column("line_no", Integer, primary_key=True, autoincrement=False),
    Column("sku", String(10), nullable=False),
)
pets = Table(
    "pg_keyset_pets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("owner_id", ForeignKey("pg_keyset_owners.id"), nullable=False),
    Column("age", Integer, nullable=False),
)

ORDERABLE = ["a", "s", "n", "d", "m", "id"]
row_values = st.fixed_dictionaries(
    {
        "a": st.none() | st.integers(0, 3),
        "s": st.none() | st.sampled_from(["", "a", "ab", "b", "ba"]),
        "n": st.integers(0, 3),
        "d": st.none() | st.sampled_from([dt.date(2024, 1, 1), dt.date(2024, 2, 29)]),
        "m": st.none() | st.sampled_from([decimal.Decimal(v) for v in ("-1.50", "0.00", "2.25")]),
    }
)
orderings = st.lists(
    st.tuples(st.sampled_from(ORDERABLE), st.booleans(), st.integers(0, 4)),
    min_size=1,
    max_size=3,
    unique_by=lambda term: term[0],
)
examples = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest_asyncio.fixture
async def engine(kysera_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield kysera_engine
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)


async def replace_rows(engine: AsyncEngine, rows: list[dict[str, Any]]) -> None:
    async with engine.begin() as connection:
        await connection.execute(delete(items))
        if rows:
            await connection.execute(insert(items), rows)


def order_terms(ordering: list[tuple[str, bool, int]]) -> list[Any]:
    """Column expressions for (name, descending, nulls choice: 0 = first, 1 = last, else none)."""
    terms: list[Any] = []
    for name, descending, nulls in ordering:
        term = items.c[name].desc() if descending else items.c[name].asc()
        terms.append(
            term.nulls_first() if nulls == 0 else term.nulls_last() if nulls == 1 else term
        )
    return terms


def expected_ids(rows: list[dict[str, Any]], ordering: list[tuple[str, bool, int]]) -> list[int]:
    """The order a unique keyset ordering defines: the terms, then the primary key in the
    direction of the last term."""
    result = sorted(rows, key=lambda row: row["id"], reverse=ordering[-1][1])
    for name, descending, nulls in reversed(ordering):
        placeholder = (
            next(row[name] for row in rows if row[name] is not None)
            if any(row[name] is not None for row in rows)
            else 0
        )
        result.sort(
            key=lambda row: placeholder if row[name] is None else row[name], reverse=descending
        )
        result.sort(key=lambda row: (row[name] is None) != (nulls == 0))
    return [row["id"] for row in result]


async def walk(
    engine: AsyncEngine, statement: Any, order_by: list[Any], limit: int, **options: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every page forwards with after=, then every page backwards from the end with before=."""
    forward: list[dict[str, Any]] = []
    page = await paginate_cursor(engine, statement, order_by=order_by, limit=limit, **options)
    assert not page.has_prev
    assert page.prev_cursor is None
    forward += page.items
    while page.has_next:
        assert page.next_cursor is not None
        assert len(page.items) == limit
        page = await paginate_cursor(
            engine, statement, order_by=order_by, limit=limit, after=page.next_cursor, **options
        )
        forward += page.items
    assert page.next_cursor is None

    backward = list(page.items)
    while page.has_prev:
        assert page.prev_cursor is not None
        page = await paginate_cursor(
            engine, statement, order_by=order_by, limit=limit, before=page.prev_cursor, **options
        )
        assert page.has_next
        assert page.items
        backward = page.items + backward
    return forward, backward


@examples
@given(
    rows=st.lists(row_values, max_size=24),
    ordering=orderings,
    limit=st.integers(1, 26),
    narrow=st.booleans(),
)
async def test_walking_pages_yields_every_row_once_in_order(
    engine: AsyncEngine,
    rows: list[dict[str, Any]],
    ordering: list[tuple[str, bool, int]],
    limit: int,
    narrow: bool,
) -> None:
    rows = [{"id": number, **row} for number, row in enumerate(rows, start=1)]
    await replace_rows(engine, rows)
    # A narrow select does not return the ordering columns: they are fetched and dropped.
    statement = select(items.c.id) if narrow else select(items)

    forward, backward = await walk(engine, statement, order_terms(ordering), limit)

    expected = expected_ids(rows, ordering)
    assert [item["id"] for item in forward] == expected
    assert [item["id"] for item in backward] == expected
    assert all(list(item) == (["id"] if narrow else list(items.c.keys())) for item in forward)


async def test_nulls_sort_last_in_both_directions(engine: AsyncEngine) -> None:
    await replace_rows(
        engine,
        [{"id": i, "a": a, "n": 0} for i, a in enumerate([None, 2, None, 1, 3], start=1)],
    )

    ascending = await paginate_cursor(engine, select(items), order_by=[items.c.a], limit=10)
    descending = await paginate_cursor(engine, select(items), order_by=[items.c.a.desc()], limit=10)

    assert [(i["a"], i["id"]) for i in ascending.items] == [
        (1, 4),
        (2, 2),
        (3, 5),
        (None, 1),
        (None, 3),
    ]
    assert [(i["a"], i["id"]) for i in descending.items] == [
        (3, 5),
        (2, 2),
        (1, 4),
        (None, 3),
        (None, 1),
    ]


async def test_the_primary_key_breaks_ties_in_the_last_key_direction(engine: AsyncEngine) -> None:
    await replace_rows(engine, [{"id": i, "n": 1} for i in (5, 3, 9, 1)])
    order_by = [items.c.n.desc()]

    first = await paginate_cursor(engine, select(items.c.id), order_by=order_by, limit=2)
    second = await paginate_cursor(
        engine, select(items.c.id), order_by=order_by, limit=2, after=first.next_cursor
    )

    assert first.items + second.items == [{"id": 9}, {"id": 5}, {"id": 3}, {"id": 1}]
    assert not second.has_next


def capture_statements(engine: AsyncEngine) -> tuple[list[str], Callable[[], None]]:
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    return statements, lambda: event.remove(engine.sync_engine, "before_cursor_execute", record)


@pytest.mark.kysera_databases("sqlite", "postgresql")
async def test_same_direction_not_null_orderings_compare_row_values(engine: AsyncEngine) -> None:
    await replace_rows(engine, [{"id": i, "n": i % 2} for i in range(1, 6)])
    statements, stop = capture_statements(engine)
    try:
        for order_by in ([items.c.n], [items.c.n.desc()]):
            first = await paginate_cursor(engine, select(items), order_by=order_by, limit=2)
            await paginate_cursor(
                engine, select(items), order_by=order_by, limit=2, after=first.next_cursor
            )
    finally:
        stop()

    assert "WHERE ((pg_keyset_items.n, pg_keyset_items.id) >" in statements[1]
    assert "ORDER BY pg_keyset_items.n ASC, pg_keyset_items.id ASC" in statements[1]
    assert "WHERE ((pg_keyset_items.n, pg_keyset_items.id) <" in statements[3]
    assert "ORDER BY pg_keyset_items.n DESC, pg_keyset_items.id DESC" in statements[3]


async def test_mixed_directions_bound_the_leading_column(engine: AsyncEngine) -> None:
    await replace_rows(engine, [{"id": i, "n": i % 3} for i in range(1, 8)])
    order_by = [items.c.n.desc(), items.c.id]
    first = await paginate_cursor(engine, select(items), order_by=order_by, limit=2)
    statements, stop = capture_statements(engine)
    try:
        second = await paginate_cursor(
            engine, select(items), order_by=order_by, limit=2, after=first.next_cursor
        )
    finally:
        stop()

    assert "pg_keyset_items.n <=" in statements[-1]
    assert [i["id"] for i in first.items + second.items] == [2, 5, 1, 4]


async def test_outer_joined_columns_may_be_null(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(insert(owners), [{"id": i, "name": f"o{i}"} for i in (1, 2, 3)])
        await connection.execute(
            insert(pets), [{"id": 10, "owner_id": 1, "age": 4}, {"id": 11, "owner_id": 3, "age": 2}]
        )
    statement = select(owners.c.name, pets.c.age).select_from(owners.outerjoin(pets))

    forward, backward = await walk(engine, statement, [pets.c.age], limit=1)

    expected = [{"name": "o3", "age": 2}, {"name": "o1", "age": 4}, {"name": "o2", "age": None}]
    assert forward == expected
    assert backward == expected


async def test_each_page_takes_its_own_cursor_and_where_values(engine: AsyncEngine) -> None:
    # The same compiled statement serves every page below: the cursor's values and the
    # statement's own literal values must come from the page asked for.
    rows = sorted((i % 4, i) for i in range(1, 13))
    await replace_rows(engine, [{"id": i, "n": n} for n, i in rows])
    order_by = [items.c.n, items.c.id]
    cursors: list[tuple[tuple[int, int], str]] = []
    page = await paginate_cursor(engine, select(items), order_by=order_by, limit=4)
    while page.next_cursor is not None:
        cursors.append(((page.items[-1]["n"], page.items[-1]["id"]), page.next_cursor))
        page = await paginate_cursor(
            engine, select(items), order_by=order_by, limit=4, after=page.next_cursor
        )

    for low in (0, 2, 3):
        statement = select(items.c.id).where(items.c.n >= low)
        for position, cursor in cursors:
            page = await paginate_cursor(engine, statement, order_by=order_by, after=cursor)

            expected = [i for n, i in rows if n >= low and (n, i) > position]
            assert [item["id"] for item in page.items] == expected


async def test_map_row_shapes_items(engine: AsyncEngine) -> None:
    await replace_rows(engine, [{"id": i, "n": i} for i in (1, 2)])

    page: CursorPage[int] = await paginate_cursor(
        engine, select(items), order_by=["n"], map_row=lambda row: row["n"] * 10
    )

    assert page.items == [10, 20]


async def test_signed_cursors_refuse_tampering(engine: AsyncEngine) -> None:
    await replace_rows(engine, [{"id": i, "n": i} for i in range(1, 5)])
    order_by = [items.c.n]
    page = await paginate_cursor(engine, select(items), order_by=order_by, limit=2, secret="k")
    assert page.next_cursor is not None
    body, _, signature = page.next_cursor.partition(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload[2][0] = 0
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")

    with pytest.raises(InvalidCursorError):
        await paginate_cursor(
            engine, select(items), order_by=order_by, after=f"{forged}.{signature}", secret="k"
        )
    with pytest.raises(InvalidCursorError):
        await paginate_cursor(engine, select(items), order_by=order_by, after=body, secret="k")
    following = await paginate_cursor(
        engine, select(items), order_by=order_by, limit=2, after=page.next_cursor, secret="k"
    )
    assert [i["n"] for i in following.items] == [3, 4]


async def test_a_cursor_from_another_ordering_is_refused(engine: AsyncEngine) -> None:
    await replace_rows(engine, [{"id": i, "n": i} for i in range(1, 4)])
    page = await paginate_cursor(engine, select(items), order_by=[items.c.n], limit=1)

    with pytest.raises(InvalidCursorError, match="different ordering"):
        await paginate_cursor(
            engine, select(items), order_by=[items.c.n.desc()], after=page.next_cursor
        )


cursor_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=20),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.floats(),
    st.datetimes(),
    st.dates(),
    st.uuids(),
    st.binary(max_size=8),
)


def fingerprint_of(cursor: str) -> str:
    """The ordering fingerprint inside a cursor: what a forger would copy."""
    payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return str(payload[1])


@examples
@given(values=st.lists(cursor_values, min_size=3, max_size=5), garbage=st.text(max_size=40))
async def test_no_cursor_lets_anything_but_invalid_cursor_escape(
    engine: AsyncEngine, values: list[Any], garbage: str
) -> None:
    await replace_rows(engine, [{"id": i, "n": i} for i in (1, 2)])
    order_by = [items.c.a, items.c.d.desc(), items.c.m]
    first = await paginate_cursor(engine, select(items), order_by=order_by, limit=1)
    assert first.next_cursor is not None
    forged = encode_cursor(values, ordering=fingerprint_of(first.next_cursor))

    for cursor in (garbage, forged):
        for direction in ("after", "before"):
            with contextlib.suppress(InvalidCursorError):
                await paginate_cursor(
                    engine, select(items), order_by=order_by, **{direction: cursor}
                )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"order_by": []}, "order_by"),
        ({"order_by": [42]}, "column expressions"),
        ({"order_by": ["nope"]}, "nope"),
        ({"after": "x", "before": "y"}, "not both"),
        ({"secret": 42}, "secret"),
        ({"secret": ""}, "secret"),
    ],
)
async def test_bad_arguments_are_query_errors(
    engine: AsyncEngine, options: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {"order_by": [items.c.n], **options}

    with pytest.raises(InvalidQueryError, match=message):
        await paginate_cursor(engine, select(items), **arguments)


async def test_statements_keyset_cannot_page_are_query_errors(engine: AsyncEngine) -> None:
    with pytest.raises(InvalidQueryError, match="LIMIT"):
        await paginate_cursor(engine, select(items).limit(3), order_by=[items.c.n])
    with pytest.raises(InvalidQueryError, match="GROUP BY"):
        await paginate_cursor(engine, select(items.c.n).group_by(items.c.n), order_by=[items.c.n])
    with pytest.raises(InvalidQueryError, match="SELECT"):
        await paginate_cursor(engine, delete(items), order_by=[items.c.n])  # type: ignore[arg-type]
    with pytest.raises(InvalidQueryError, match="executor"):
        await paginate_cursor("engine", select(items), order_by=[items.c.n])  # type: ignore[arg-type]


async def test_a_grouped_statement_pages_as_a_subquery(engine: AsyncEngine) -> None:
    await replace_rows(engine, [{"id": i, "n": i % 3} for i in range(1, 8)])
    counts = select(items.c.n, func.count().label("rows")).group_by(items.c.n).subquery()

    forward, backward = await walk(engine, select(counts), [counts.c.n.desc()], limit=2)

    assert forward == backward == [{"n": 2, "rows": 2}, {"n": 1, "rows": 3}, {"n": 0, "rows": 2}]


async def test_a_connection_runs_inside_its_transaction(engine: AsyncEngine) -> None:
    await replace_rows(engine, [])
    async with engine.connect() as connection:
        await connection.execute(insert(items), [{"id": 1, "n": 1}])

        page = await paginate_cursor(connection, select(items), order_by=[items.c.n])

        assert [i["id"] for i in page.items] == [1]
        await connection.rollback()


@pytest.mark.kysera_databases("mysql")
async def test_mysql_uses_the_bounded_or_expansion_and_emulates_nulls_last(
    engine: AsyncEngine,
) -> None:
    # MariaDB scans the whole index for `(n, id) > (...)`; the bounded OR gives it a range.
    await replace_rows(
        engine, [{"id": i, "n": i % 2, "a": None if i % 2 else i} for i in (1, 2, 3)]
    )
    first = await paginate_cursor(engine, select(items), order_by=[items.c.n], limit=1)
    statements, stop = capture_statements(engine)
    try:
        await paginate_cursor(engine, select(items), order_by=[items.c.n], after=first.next_cursor)
        await paginate_cursor(engine, select(items), order_by=[items.c.a])
    finally:
        stop()

    assert "pg_keyset_items.n >= %s AND" in statements[0]
    assert "ORDER BY pg_keyset_items.a IS NULL ASC, pg_keyset_items.a ASC" in statements[1]


async def test_tables_named_only_in_the_where_clause_get_a_tiebreaker(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as connection:
        await connection.execute(insert(owners), [{"id": i, "name": "same"} for i in (1, 2)])
        await connection.execute(
            insert(pets),
            [{"id": i, "owner_id": 1 + i % 2, "age": 1} for i in range(10, 16)],
        )
    # An implicit join: two owners with the same name, three pets each.
    statement = select(owners.c.name, pets.c.age).where(pets.c.owner_id == owners.c.id)

    forward, backward = await walk(engine, statement, [owners.c.name], limit=2)

    assert len(forward) == len(backward) == 6


async def test_cursors_carry_every_kind_of_key_value_exactly(engine: AsyncEngine) -> None:
    columns = ["id", "text", "number", "moment", "day", "token", "blob"]
    moment = dt.datetime(2024, 1, 1, 9, 30, 1)
    values = [
        (1, "Zoë", "1.500", moment.replace(microsecond=250000), dt.date(2024, 1, 1), 3, b"\0\xff"),
        (2, "zoe", "-2.125", moment, dt.date(1999, 12, 31), 1, b"\0"),
        (3, "日本", "1.5", None, None, None, None),
        (4, "a b", None, dt.datetime(1970, 1, 1), dt.date(2024, 1, 1), 2**128 - 1, b"\xff"),
        (5, "Ω", "1.500", moment, dt.date(2024, 2, 29), 1 << 64, b"\0\xff"),
    ]
    rows = [dict(zip(columns, row, strict=True)) for row in values]
    for row in rows:
        row["number"] = row["number"] and decimal.Decimal(row["number"])
        row["token"] = None if row["token"] is None else uuid.UUID(int=row["token"])
    await insert_kinds(engine, rows)

    for name in columns[1:]:
        for order_by in ([kinds.c[name]], [kinds.c[name].desc()]):
            forward, backward = await walk(engine, select(kinds.c.id), order_by, limit=2)

            assert forward == backward, name
            assert sorted(item["id"] for item in forward) == [1, 2, 3, 4, 5], name


async def insert_kinds(engine: AsyncEngine, rows: list[dict[str, Any]]) -> None:
    """Insert rows into ``kinds``; on MySQL/MariaDB their ``blob`` values as UNHEX() of hex
    text, since aiomysql cannot send bytes."""
    mysql = engine.dialect.name == "mysql"
    async with engine.begin() as connection:
        for row in rows:
            blob = row["blob"]
            if mysql and blob is not None:
                row = {**row, "blob": func.unhex(blob.hex(), type_=LargeBinary)}
            await connection.execute(insert(kinds).values(**row))


async def test_a_binary_key_pages_on_every_database(engine: AsyncEngine) -> None:
    # Binary values that sort differently as bytes than as text, and a quote and backslash.
    blobs = [b"\xff", b"\x00", b"\x00\xff", b"'", b"\\", b"\x7f\x80", b"a", b"A"]
    rows = [{"id": i, "text": "x", "blob": blob} for i, blob in enumerate(blobs)]
    await insert_kinds(engine, rows)
    statement = select(kinds.c.id, kinds.c.blob)

    for descending in (False, True):
        order_by = [kinds.c.blob.desc() if descending else kinds.c.blob]
        forward, backward = await walk(engine, statement, order_by, limit=3)

        assert [item["blob"] for item in forward] == sorted(blobs, reverse=descending)
        assert forward == backward


@pytest.mark.kysera_databases("mysql")
async def test_a_bytes_parameter_aiomysql_cannot_send_is_a_database_error(
    engine: AsyncEngine,
) -> None:
    await insert_kinds(engine, [{"id": 1, "text": "x", "blob": b"\x00"}])
    statement = select(kinds.c.id).where(kinds.c.blob == b"\x00")

    # aiomysql 0.3 with PyMySQL 1.1+ cannot send bytes; a driver that can finds the row.
    failure: DatabaseError | None = None
    try:
        page = await paginate(engine, statement)
    except DatabaseError as error:
        failure = error

    if failure is None:
        assert [item["id"] for item in page.items] == [1]
    else:
        assert "aiomysql cannot send a bytes parameter" in failure.message
        assert failure.dialect == "mysql"
        assert not failure.transient
        assert isinstance(failure.__cause__, TypeError)


@pytest.mark.kysera_databases("postgresql")
async def test_aware_datetimes_page_exactly(engine: AsyncEngine) -> None:
    zone = dt.timezone(dt.timedelta(hours=5, minutes=30))
    # Two instants, each in several rows, which the cursor must carry with their offset.
    moments = [dt.datetime(2024, 1, 1, 12, tzinfo=zone), dt.datetime(2024, 1, 1, 7, tzinfo=zone)]
    rows = [{"id": i, "text": str(i), "moment_tz": moments[i % 2]} for i in range(6)]
    async with engine.begin() as connection:
        await connection.execute(insert(kinds), rows)

    forward, backward = await walk(engine, select(kinds.c.id), [kinds.c.moment_tz.desc()], limit=1)

    assert forward == backward
    assert [item["id"] for item in forward] == [4, 2, 0, 5, 3, 1]


async def test_database_errors_are_classified(engine: AsyncEngine) -> None:
    missing = Table("pg_keyset_missing", MetaData(), Column("id", Integer, primary_key=True))

    with pytest.raises(DatabaseError) as caught:
        await paginate_cursor(engine, select(missing), order_by=[missing.c.id])

    assert caught.value.dialect == engine.dialect.name
    assert caught.value.__cause__ is not None


async def test_every_column_of_a_composite_primary_key_breaks_ties(engine: AsyncEngine) -> None:
    rows = [{"order_no": o, "line_no": n, "sku": "same"} for o in (2, 1) for n in (2, 1, 3)]
    async with engine.begin() as connection:
        await connection.execute(insert(lines), rows)

    forward, backward = await walk(engine, select(lines), [lines.c.sku.desc()], limit=2)

    expected = [(o, n) for o in (2, 1) for n in (3, 2, 1)]
    assert [(i["order_no"], i["line_no"]) for i in forward] == expected
    assert forward == backward


@pytest.mark.parametrize(
    "value",
    [decimal.Decimal("sNaN"), decimal.Decimal("NaN"), decimal.Decimal("-Infinity"), 10**30],
    ids=["snan", "nan", "-infinity", "huge-int"],
)
async def test_a_forged_value_the_database_refuses_is_still_a_kysera_error(
    engine: AsyncEngine, value: Any
) -> None:
    await replace_rows(engine, [{"id": i, "n": i, "m": decimal.Decimal(i)} for i in (1, 2)])
    first = await paginate_cursor(engine, select(items), order_by=[items.c.m], limit=1)
    assert first.next_cursor is not None
    forged = encode_cursor([value, 1], ordering=fingerprint_of(first.next_cursor))

    try:
        page = await paginate_cursor(engine, select(items), order_by=[items.c.m], after=forged)
    except (InvalidCursorError, DatabaseError):
        return
    assert all(isinstance(item["id"], int) for item in page.items)


async def test_a_statement_built_once_is_paged_with_new_parameters(engine: AsyncEngine) -> None:
    # One statement object, paged by each request with its own values: the cursor's values
    # and the statement's own parameters both come from the page asked for, NULL keys too.
    await replace_rows(
        engine,
        [{"id": i, "a": None if i % 3 == 0 else i % 5, "n": i % 2} for i in range(1, 13)],
    )
    statement = select(items.c.id, items.c.a).where(items.c.n == bindparam("n"))
    order_by = [items.c.a.desc()]

    for n in (0, 1, 0):
        seen: list[int] = []
        page = await paginate_cursor(
            engine, statement, order_by=order_by, limit=2, parameters={"n": n}
        )
        while True:
            seen += [item["id"] for item in page.items]
            if page.next_cursor is None:
                break
            page = await paginate_cursor(
                engine,
                statement,
                order_by=order_by,
                limit=2,
                after=page.next_cursor,
                parameters={"n": n},
            )
        rows = [(None if i % 3 == 0 else i % 5, i) for i in range(1, 13) if i % 2 == n]
        not_null = sorted((row for row in rows if row[0] is not None), reverse=True)
        nulls = sorted((row for row in rows if row[0] is None), reverse=True)
        assert seen == [i for _, i in not_null + nulls]
