"""One value, one meaning for datetimes and times (SPEC §7).

SQLite stores a datetime as text, in whichever form the writer chose: ``CURRENT_TIMESTAMP``
writes ``'2005-05-24 22:53:30'``, SQLAlchemy ``'2005-05-24 22:53:30.000000'``. Every
comparison a where-dict or a cursor makes must treat those as the one instant they are, as
PostgreSQL and MariaDB do. Aware datetimes bound to plain columns mean their UTC instant on
every dialect.
"""

from __future__ import annotations

import datetime as dt
import itertools
import operator
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.core._stored_time import full_time_text, shortest_time_text
from kysera.repository import create_repository

metadata = sa.MetaData()
# Six fraction digits on MariaDB too (a plain DATETIME there drops the fraction).
PRECISE = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
PRECISE_TIME = sa.Time().with_variant(mysql.TIME(fsp=6), "mysql", "mariadb")
readings = sa.Table(  # keyed by (sensor, moment), as time series are
    "sd_readings",
    metadata,
    sa.Column("sensor", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", PRECISE, primary_key=True),
    sa.Column("value", sa.Integer, nullable=False),
)
days = sa.Table(  # keyed by a datetime alone
    "sd_days",
    metadata,
    sa.Column("at", PRECISE, primary_key=True),
    sa.Column("note", sa.String(20), nullable=False),
)
moments = sa.Table(
    "sd_moments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", PRECISE, nullable=False),
    sa.Column("clock", PRECISE_TIME, nullable=True),
    sa.Column("zoned", sa.DateTime(timezone=True), nullable=True),
)

SECOND = dt.datetime(2005, 5, 24, 22, 53, 30)
HALF = SECOND + dt.timedelta(microseconds=500_000)
MIDNIGHT = dt.datetime(2005, 5, 25)
# Every text form an instant is written in by SQLite, its functions, other programs and
# SQLAlchemy: no fraction, trimmed, milliseconds, microseconds.
STORED = [
    (1, "2005-05-24 22:53:30", SECOND),
    (2, "2005-05-24 22:53:30.000000", SECOND),
    (3, "2005-05-24 22:53:30.000", SECOND),
    (4, "2005-05-24 22:53:30.5", HALF),
    (5, "2005-05-24 22:53:30.500", HALF),
    (6, "2005-05-24 22:53:30.500000", HALF),
    (7, "2005-05-24 22:53:29.999999", SECOND - dt.timedelta(microseconds=1)),
    (8, "2005-05-24 22:53:31", SECOND + dt.timedelta(seconds=1)),
    (9, "2005-05-24 22:53:30.000001", SECOND + dt.timedelta(microseconds=1)),
    (10, "2005-05-24 22:53:30", SECOND),
    # Midnight, as DATE('now') writes it into a datetime column, and as SQLAlchemy does.
    (11, "2005-05-25", MIDNIGHT),
    (12, "2005-05-25 00:00:00.000000", MIDNIGHT),
    (13, "2005-05-25 00:00:00", MIDNIGHT),
]
PROBES = sorted({instant for _, _, instant in STORED} | {SECOND + dt.timedelta(seconds=2)})
COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": operator.eq,
    "$ne": operator.ne,
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tables(kysera_engine: AsyncEngine) -> AsyncIterator[None]:
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
    yield
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)


@pytest_asyncio.fixture(loop_scope="session")
async def stored(tables: None, kysera_connection: AsyncConnection) -> AsyncConnection:
    """The STORED rows, written by raw SQL in their text forms."""
    for key, text, _ in STORED:
        await write_raw(kysera_connection, key, text, text.partition(" ")[2] or None)
    return kysera_connection


async def write_raw(
    connection: AsyncConnection, key: int, at: str, clock: str | None = None
) -> None:
    """INSERT with the texts as SQL literals, as another program writes them (the test's
    own constants: asyncpg would refuse text parameters for these columns)."""
    clock_sql = "NULL" if clock is None else f"'{clock}'"
    await connection.execute(
        sa.text(f"INSERT INTO sd_moments (id, at, clock) VALUES ({key}, '{at}', {clock_sql})")
    )


async def ids_where(connection: AsyncConnection, where: dict[str, Any]) -> set[int]:
    repo = create_repository(connection, moments)
    return {row["id"] for row in await repo.find(where=where)}


def ids_matching(test: Callable[[dt.datetime, Any], bool], operand: Any) -> set[int]:
    return {key for key, _, instant in STORED if test(instant, operand)}


async def test_every_comparison_matches_every_stored_form(stored: AsyncConnection) -> None:
    for (name, compare), probe in itertools.product(COMPARISONS.items(), PROBES):
        found = await ids_where(stored, {"at": {name: probe}})
        assert found == ids_matching(compare, probe), (name, probe)
    # A bare value is $eq.
    assert await ids_where(stored, {"at": SECOND}) == {1, 2, 3, 10}


async def test_between_and_in_match_every_stored_form(stored: AsyncConnection) -> None:
    for low, high in itertools.combinations_with_replacement(PROBES, 2):
        found = await ids_where(stored, {"at": {"$between": [low, high]}})
        assert found == ids_matching(
            lambda instant, pair: pair[0] <= instant <= pair[1], (low, high)
        ), (low, high)
    for chosen in itertools.combinations(PROBES, 2):
        found = await ids_where(stored, {"at": {"$in": list(chosen)}})
        assert found == ids_matching(lambda instant, listed: instant in listed, chosen), chosen
        excluded = await ids_where(stored, {"at": {"$nin": list(chosen)}})
        assert excluded == ids_matching(lambda instant, listed: instant not in listed, chosen), (
            chosen
        )


async def test_times_match_every_stored_form(stored: AsyncConnection) -> None:
    clock = SECOND.time()
    assert await ids_where(stored, {"clock": clock}) == {1, 2, 3, 10}
    assert await ids_where(stored, {"clock": {"$gte": clock, "$lt": HALF.time()}}) == {
        1,
        2,
        3,
        9,
        10,
    }


async def test_count_and_find_one_see_a_current_timestamp_row(stored: AsyncConnection) -> None:
    repo = create_repository(stored, moments)
    assert await repo.count({"at": SECOND}) == 4
    assert await repo.exists({"at": {"$lte": SECOND, "$gte": SECOND}})


async def test_keyset_walks_over_seconds_written_without_fraction(
    tables: None, kysera_connection: AsyncConnection
) -> None:
    # Rows as a dump or CURRENT_TIMESTAMP writes them: whole seconds, several per second.
    for key in range(1, 13):
        instant = SECOND + dt.timedelta(seconds=key // 3)
        await write_raw(kysera_connection, key, instant.strftime("%Y-%m-%d %H:%M:%S"))
    repo = create_repository(kysera_connection, moments)
    for order in (["at"], ["-at"]):
        tiebreak = order[0].replace("at", "id")  # tiebreakers run in the last key's direction
        expected = [row["id"] for row in await repo.find(order_by=[*order, tiebreak])]
        walked: list[int] = []
        page = await repo.paginate_cursor(limit=2, order_by=order)
        walked += [row["id"] for row in page.items]
        while page.has_next:
            page = await repo.paginate_cursor(limit=2, after=page.next_cursor, order_by=order)
            walked += [row["id"] for row in page.items]
        assert walked == expected, order
        # And back from the last page to the first.
        backwards = [row["id"] for row in page.items]
        while page.has_prev:
            page = await repo.paginate_cursor(limit=2, before=page.prev_cursor, order_by=order)
            backwards = [row["id"] for row in page.items] + backwards
        assert backwards == expected, order


async def test_aware_datetimes_mean_their_utc_instant_everywhere(
    tables: None, kysera_connection: AsyncConnection
) -> None:
    repo = create_repository(kysera_connection, moments)
    berlin = dt.timezone(dt.timedelta(hours=2))
    aware = dt.datetime(2024, 6, 1, 14, 0, tzinfo=berlin)
    created = await repo.create({"id": 1, "at": aware, "zoned": aware})
    # A plain (naive) column stores the UTC reading, on every dialect.
    assert created["at"] == dt.datetime(2024, 6, 1, 12, 0)
    assert created["zoned"].replace(tzinfo=None) == dt.datetime(2024, 6, 1, 12, 0)
    for probe in (aware, aware.astimezone(dt.UTC), dt.datetime(2024, 6, 1, 12, 0)):
        assert await repo.count({"at": probe}) == 1, probe
    assert await repo.count({"at": {"$gt": aware}}) == 0
    assert await repo.count({"zoned": {"$lte": aware}}) == 1
    updated = await repo.update(1, {"at": dt.datetime(2024, 6, 1, 9, 0, tzinfo=dt.UTC)})
    assert updated["at"] == dt.datetime(2024, 6, 1, 9, 0)


async def test_a_datetime_key_finds_rows_written_without_fraction(
    tables: None, kysera_connection: AsyncConnection
) -> None:
    for sensor, text in ((1, "2005-05-24 22:53:30"), (2, "2005-05-25")):
        await kysera_connection.execute(
            sa.text(f"INSERT INTO sd_readings (sensor, at, value) VALUES ({sensor}, '{text}', 1)")
        )
    repo = create_repository(kysera_connection, readings)
    for key in ((1, SECOND), {"sensor": 2, "at": MIDNIGHT}):
        found = await repo.find_by_id(key)
        assert found is not None, key
        assert (await repo.update(key, {"value": 2}))["value"] == 2
        assert await repo.delete(key)
    assert await repo.count() == 0


async def test_several_datetime_keys_find_rows_written_without_fraction(
    tables: None, kysera_connection: AsyncConnection
) -> None:
    texts = ["2005-05-24 22:53:30", "2005-05-25", "2005-05-24 22:53:30.500"]
    for text in texts:
        await kysera_connection.execute(
            sa.text(f"INSERT INTO sd_days (at, note) VALUES ('{text}', 'raw')")
        )
    keys = [SECOND, MIDNIGHT, HALF]
    repo = create_repository(kysera_connection, days)
    assert len(await repo.find_by_ids(keys)) == 3
    changed = await repo.bulk_update([(key, {"note": "seen"}) for key in keys])
    assert [row["note"] for row in changed] == ["seen"] * 3
    assert await repo.delete_many(keys) == 3


# -- the text forms themselves, on SQLite, for any instant ---------------------------------


FORMS: list[Callable[[dt.datetime], str]] = [
    full_time_text,
    shortest_time_text,
    lambda value: full_time_text(value)[:-3] if value.microsecond % 1000 == 0 else "",
    lambda value: full_time_text(value)[:-7] if value.microsecond == 0 else "",
    lambda value: full_time_text(value)[:10] if value.time() == dt.time(0) else "",
]
instants = st.datetimes(
    min_value=dt.datetime(1000, 1, 1), max_value=dt.datetime(9999, 1, 1)
).flatmap(
    lambda value: st.sampled_from(
        [
            value,
            value.replace(microsecond=0),
            value.replace(microsecond=value.microsecond // 1000 * 1000),
            value.replace(hour=0, minute=0, second=0, microsecond=0),
        ]
    )
)
# Probes next to the stored instant (the edges where text forms go wrong), or anywhere.
NEAR = [dt.timedelta(0), dt.timedelta(microseconds=1), dt.timedelta(seconds=1)]
probes = st.one_of(
    st.tuples(st.sampled_from(NEAR), st.sampled_from([1, -1])),
    instants,
)


@pytest.mark.kysera_databases("sqlite")
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    stored_value=instants,
    form=st.sampled_from(FORMS),
    near=probes,
    name=st.sampled_from([*sorted(COMPARISONS), "$in", "$between"]),
)
async def test_sqlite_compares_any_text_form_as_its_instant(
    tables: None,
    kysera_connection: AsyncConnection,
    stored_value: dt.datetime,
    form: Callable[[dt.datetime], str],
    near: Any,
    name: str,
) -> None:
    text = form(stored_value) or full_time_text(stored_value)
    probe = stored_value + near[0] * near[1] if isinstance(near, tuple) else near
    await kysera_connection.execute(sa.delete(moments))
    await write_raw(kysera_connection, 1, text)
    if name == "$in":
        where, holds = {"$in": [probe]}, stored_value == probe
    elif name == "$between":
        # The stored instant at one edge (or both, when the probe equals it).
        low, high = sorted([probe, stored_value])
        assert await ids_where(kysera_connection, {"at": {"$between": [low, high]}}) == {1}
        where, holds = {"$between": [probe, probe]}, stored_value == probe
    else:
        where, holds = {name: probe}, COMPARISONS[name](stored_value, probe)
    found = await ids_where(kysera_connection, {"at": where})
    assert found == ({1} if holds else set()), (text, where)
