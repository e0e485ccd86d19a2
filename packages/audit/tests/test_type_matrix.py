"""The round-trip matrix (SPEC §7, "one value, one meaning"): for every value type, on every
database and driver, a value goes through create → find_by_id → where equality → keyset
cursor → audit log → restore_from_audit and comes back as itself.

What a dialect or driver cannot do is asserted as such, not skipped: aiomysql refuses
``bytes`` with a `DatabaseError` naming asyncmy, and nothing is written.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from audit_support import AUDIT_TABLE
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.audit import AuditPlugin
from kysera.audit._encoding import RowCodec
from kysera.core import DatabaseError
from kysera.repository import create_orm

UTC = dt.UTC
BERLIN = dt.timezone(dt.timedelta(hours=2))
# Six fraction digits on MariaDB too (its plain DATETIME/TIME drop the fraction).
PRECISE = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")
PRECISE_ZONED = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql")
PRECISE_TIME = sa.Time().with_variant(mysql.TIME(fsp=6), "mysql")


class Size(enum.Enum):
    SMALL = "s"
    LARGE = "l"


def same(value: Any) -> Any:
    return value


def utc_reading(value: Any) -> Any:
    """An instant as the naive UTC reading a plain DATETIME column holds."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


@dataclass(frozen=True)
class Case:
    """One value type: its column type, values to write, and what the matrix checks.

    ``raw`` values are written by raw SQL (as other programs write them) instead of
    ``create``; ``read`` maps a value (written or read) to what must compare equal.
    """

    name: str
    column_type: sa.types.TypeEngine[Any]
    values: tuple[Any, ...]
    dialects: tuple[str, ...] = ("sqlite", "postgresql", "mysql")
    comparable: bool = True
    orderable: bool = True
    read: Callable[[Any], Any] = same
    raw: tuple[str, ...] = ()
    raw_values: tuple[Any, ...] = field(default=())


CASES = [
    Case("int", sa.Integer(), (0, -(2**31), 2**31 - 1)),
    Case("bigint", sa.BigInteger(), (2**63 - 1, -(2**63), 7)),
    Case("decimal", sa.Numeric(20, 6), (Decimal("1234567.125"), Decimal("-0.000001"))),
    # More significant digits than a double holds: SQLite stores NUMERIC as REAL.
    Case(
        "decimal_wide",
        sa.Numeric(20, 6),
        (Decimal("12345678901234.123456"),),
        dialects=("postgresql", "mysql"),
    ),
    Case("double", sa.Double(), (1.5, -2.25e10, 0.1)),
    Case("accents", sa.String(100), ("Crème brûlée ünïcödé", "中文 🙂 ß")),
    Case("text_30k", sa.Text(), ("é" * 15_000, "x" * 30_000), orderable=False),
    Case("bytes_30k", sa.LargeBinary(70_000), (bytes(range(256)) * 120, b""), orderable=False),
    Case("bool", sa.Boolean(), (True, False)),
    Case("date", sa.Date(), (dt.date(2024, 2, 29), dt.date(1970, 1, 1))),
    Case(
        "datetime",
        PRECISE,
        (dt.datetime(2024, 2, 29, 23, 59, 58, 123456), dt.datetime(2005, 5, 24, 22, 53, 30)),
        raw=("2005-05-24 22:53:31", "2005-05-24 22:53:29.500"),
        raw_values=(
            dt.datetime(2005, 5, 24, 22, 53, 31),
            dt.datetime(2005, 5, 24, 22, 53, 29, 500000),
        ),
    ),
    Case(
        "aware_on_naive",
        PRECISE,
        (
            dt.datetime(2024, 6, 1, 14, 0, 0, 250000, tzinfo=BERLIN),
            dt.datetime(2024, 6, 1, 13, 0, tzinfo=UTC),
        ),
        read=utc_reading,
    ),
    Case(
        "aware_on_zoned",
        PRECISE_ZONED,
        (dt.datetime(2024, 6, 1, 14, 0, tzinfo=BERLIN), dt.datetime(2024, 6, 1, 11, 0, tzinfo=UTC)),
        read=utc_reading,
    ),
    Case(
        "time",
        PRECISE_TIME,
        (dt.time(23, 59, 58, 123456), dt.time(0, 0)),
        raw=("12:30:00",),
        raw_values=(dt.time(12, 30),),
    ),
    Case("uuid", sa.Uuid(), (uuid.UUID("12345678-1234-5678-1234-567812345678"), uuid.UUID(int=1))),
    Case(
        "json",
        sa.JSON(),
        ({"a": [1, 2.5, {"b": None}], "é": "x"}, [1, "two"]),
        comparable=False,
        orderable=False,
    ),
    Case(
        "enum_native",
        sa.Enum("small", "medium", "large", name="tm_size"),
        ("medium", "large"),
    ),
    Case(
        "enum_string",
        sa.Enum("small", "medium", "large", native_enum=False),
        ("small", "large"),
    ),
    Case(
        "enum_class",
        sa.Enum(Size, name="tm_size_class"),
        (Size.SMALL, Size.LARGE),
    ),
    Case(
        "mysql_set",
        mysql.SET("red", "green", "blue"),
        ({"red", "blue"}, set(), {"green"}),
        dialects=("mysql",),
        orderable=False,
    ),
    Case(
        "pg_text_array",
        postgresql.ARRAY(sa.Text()),
        (["a", "b é"], []),
        dialects=("postgresql",),
        orderable=False,
    ),
    Case(
        "pg_int_range",
        postgresql.INT4RANGE(),
        (postgresql.Range(1, 5), postgresql.Range(None, 3, bounds="(]")),
        dialects=("postgresql",),
        orderable=False,
    ),
    Case(
        "pg_ts_range",
        postgresql.TSRANGE(),
        (postgresql.Range(dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2, 12, 30)),),
        dialects=("postgresql",),
        orderable=False,
    ),
    Case(
        "pg_inet",
        postgresql.INET(),
        (ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("2001:db8::1")),
        dialects=("postgresql",),
        orderable=False,
    ),
    Case(
        "pg_date_array",
        postgresql.ARRAY(sa.Date()),
        ([dt.date(2024, 1, 1), dt.date(2024, 12, 31)],),
        dialects=("postgresql",),
        orderable=False,
    ),
]

metadata = sa.MetaData()
TABLES = {
    case.name: sa.Table(
        f"tm_{case.name}",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("v", case.column_type, nullable=True),
    )
    for case in CASES
}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def matrix_tables(kysera_engine: AsyncEngine) -> AsyncIterator[None]:
    dialect = kysera_engine.dialect.name
    chosen = [TABLES[case.name] for case in CASES if dialect in case.dialects]
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all, tables=chosen)
        await connection.run_sync(metadata.create_all, tables=chosen)
    yield
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all, tables=chosen)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_a_value_round_trips_through_everything(
    engine: AsyncEngine, matrix_tables: None, case: Case
) -> None:
    dialect = engine.dialect.name
    if dialect not in case.dialects:
        pytest.skip(f"{dialect} has no {case.name} type")  # the type exists elsewhere only
    table = TABLES[case.name]
    orm = await create_orm(engine, plugins=[AuditPlugin(table=AUDIT_TABLE)])
    repo = orm.repository(table)
    read = case.read
    async with engine.begin() as connection:
        await connection.execute(table.delete())

    if case.name == "bytes_30k" and engine.dialect.driver == "aiomysql":
        # aiomysql 0.3 with PyMySQL >= 1.1 cannot send bytes: refused, naming asyncmy.
        with pytest.raises(DatabaseError, match="use the asyncmy driver"):
            await repo.create({"id": 1, "v": case.values[0]})
        assert await repo.count() == 0
        return

    # create, and what create returns
    expected: dict[int, Any] = {}
    for key, value in enumerate(case.values, start=1):
        created = await repo.create({"id": key, "v": value})
        assert read(created["v"]) == read(value), (key, created["v"])
        expected[key] = read(value)
    # rows written by raw SQL, in the text form other programs use
    for key, (text, value) in enumerate(zip(case.raw, case.raw_values, strict=True), start=100):
        async with engine.begin() as connection:
            await connection.execute(
                sa.text(f"INSERT INTO {table.name} (id, v) VALUES ({key}, '{text}')")
            )
        expected[key] = read(value)

    # find_by_id
    for key, value in expected.items():
        found = await repo.find_by_id(key)
        assert found is not None
        assert read(found["v"]) == value, key

    # where equality: each value finds its row, and only it
    if case.comparable:
        for key, value in enumerate(case.values, start=1):
            assert [row["id"] for row in await repo.find({"v": value})] == [key], value
        for key, value in enumerate(case.raw_values, start=100):
            assert [row["id"] for row in await repo.find({"v": value})] == [key], value

    # keyset cursor: a walk forward and back yields the ordered table
    if case.orderable:
        await assert_keyset_walks(repo)

    # the audit log holds the values as written, and restore_from_audit puts them back
    for key, value in expected.items():
        history = await repo.get_audit_history(key)
        if key < 100:
            assert [entry.operation for entry in history] == ["INSERT"]
            assert read(history[0].new_values["v"]) == value
        assert await repo.delete(key)
        deleted = (await repo.get_audit_history(key))[0]
        assert deleted.operation == "DELETE"
        assert read(deleted.old_values["v"]) == value
        restored = await repo.restore_from_audit(deleted.id)
        assert read(restored["v"]) == value
        stored = await repo.find_by_id(key)
        assert stored is not None
        assert read(stored["v"]) == value


async def assert_keyset_walks(repo: Any) -> None:
    """Walking by ``v`` forward and back, a row a page, yields the table ordered by v, id."""
    ordered = [row["id"] for row in await repo.find(order_by=["v", "id"])]
    walked: list[int] = []
    page = await repo.paginate_cursor(limit=1, order_by=["v"])
    walked += [row["id"] for row in page.items]
    while page.has_next:
        page = await repo.paginate_cursor(limit=1, after=page.next_cursor, order_by=["v"])
        walked += [row["id"] for row in page.items]
    assert walked == ordered
    backwards = [row["id"] for row in page.items]
    while page.has_prev:
        page = await repo.paginate_cursor(limit=1, before=page.prev_cursor, order_by=["v"])
        backwards = [row["id"] for row in page.items] + backwards
    assert backwards == ordered


@pytest.mark.kysera_databases("mysql")
async def test_keyset_walks_by_a_native_enum_on_mysql(
    engine: AsyncEngine, matrix_tables: None
) -> None:
    table = TABLES["enum_native"]
    repo = (await create_orm(engine)).repository(table)
    async with engine.begin() as connection:
        await connection.execute(table.delete())
    await repo.create_many(
        [{"id": 1, "v": "medium"}, {"id": 2, "v": "large"}, {"id": 3, "v": "small"}]
    )
    await assert_keyset_walks(repo)


# -- the audit codec, for any value of these types (no database) ----------------------------

CODEC_TYPES: dict[str, tuple[sa.types.TypeEngine[Any], st.SearchStrategy[Any]]] = {
    "int": (sa.BigInteger(), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    "decimal": (sa.Numeric(30, 10), st.decimals(allow_nan=False, allow_infinity=False)),
    "double": (sa.Double(), st.floats(allow_nan=False, allow_infinity=False)),
    "text": (sa.Text(), st.text()),
    "bytes": (sa.LargeBinary(), st.binary()),
    "bool": (sa.Boolean(), st.booleans()),
    "date": (sa.Date(), st.dates()),
    "datetime": (sa.DateTime(), st.datetimes()),
    "zoned": (sa.DateTime(timezone=True), st.datetimes(timezones=st.just(UTC))),
    "time": (sa.Time(), st.times()),
    "uuid": (sa.Uuid(), st.uuids()),
    "interval": (
        sa.Interval(),
        st.timedeltas(min_value=dt.timedelta(days=-999), max_value=dt.timedelta(days=999)),
    ),
    "enum": (sa.Enum(Size), st.sampled_from(Size)),
    "set": (mysql.SET("red", "green", "blue"), st.sets(st.sampled_from(["red", "green", "blue"]))),
    "json": (
        sa.JSON(),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(),
            lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
            max_leaves=10,
        ),
    ),
    "dates": (postgresql.ARRAY(sa.Date()), st.lists(st.dates() | st.none())),
    "range": (
        postgresql.TSRANGE(),
        st.builds(
            postgresql.Range,
            st.none() | st.datetimes(),
            st.none() | st.datetimes(),
            bounds=st.sampled_from(["[)", "(]", "[]", "()"]),
        ),
    ),
    "inet": (postgresql.INET(), st.ip_addresses()),
    "matrix": (
        postgresql.ARRAY(sa.Numeric(), dimensions=2),
        st.lists(
            st.lists(st.decimals(allow_nan=False, allow_infinity=False), min_size=2, max_size=2)
        ),
    ),
}
codec_table = sa.Table(
    "tm_codec",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    *(sa.Column(name, column_type) for name, (column_type, _) in CODEC_TYPES.items()),
)


@settings(max_examples=100, deadline=None)
@given(st.fixed_dictionaries({name: strategy for name, (_, strategy) in CODEC_TYPES.items()}))
def test_the_audit_codec_gives_back_every_value_through_json(row: dict[str, Any]) -> None:
    codec = RowCodec(codec_table)
    stored = json.loads(json.dumps(codec.encode_row(row)))
    assert codec.decode(stored) == row
