"""`UTCDateTime`: aware UTC values read back equal to what was written, on every
configured database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
import pytest_asyncio
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from timestamps_support import posts

from kysera.core.testing import snapshot_table
from kysera.repository import create_orm
from kysera.timestamps import InvalidTimestampError, TimestampsPlugin, UTCDateTime

instants_metadata = sa.MetaData()
instants = sa.Table(
    "ts_instants",
    instants_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", UTCDateTime, nullable=True),
)

aware_datetimes = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2200, 12, 31),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=-11, minutes=-30)), timezone(timedelta(hours=14))]
    ),
)


@pytest_asyncio.fixture(loop_scope="session")
async def instants_table(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    async with engine.begin() as connection:
        await connection.run_sync(instants_metadata.drop_all)
        await connection.run_sync(instants_metadata.create_all)
    yield engine
    async with engine.begin() as connection:
        await connection.run_sync(instants_metadata.drop_all)


def test_the_column_type_on_each_database() -> None:
    column = sa.Column("at", UTCDateTime)
    table = sa.Table("t", sa.MetaData(), column)

    def ddl(dialect: sa.Dialect) -> str:
        return str(sa.schema.CreateTable(table).compile(dialect=dialect))

    assert "TIMESTAMP WITH TIME ZONE" in ddl(postgresql.dialect())
    assert "DATETIME(6)" in ddl(mysql.dialect())
    assert "DATETIME" in ddl(sqlite.dialect())


async def test_aware_values_round_trip_exactly(instants_table: AsyncEngine) -> None:
    engine = instants_table
    written: dict[int, datetime] = {}

    @settings(max_examples=40, deadline=None)
    @given(value=aware_datetimes)
    def remember(value: datetime) -> None:
        written[len(written)] = value

    remember()
    async with engine.begin() as connection:
        await connection.execute(
            sa.insert(instants), [{"id": key, "at": value} for key, value in written.items()]
        )
        await connection.execute(sa.insert(instants).values(id=len(written), at=None))
    rows = {row["id"]: row["at"] for row in await snapshot_table(engine, instants)}

    for key, value in written.items():
        assert rows[key] == value  # the same instant, microseconds included
        assert rows[key].tzinfo == UTC
    assert rows[len(written)] is None


async def test_comparisons_are_by_instant(instants_table: AsyncEngine) -> None:
    engine = instants_table
    base = datetime(2024, 6, 1, 12, 0, 0, 500000, tzinfo=UTC)
    async with engine.begin() as connection:
        await connection.execute(
            sa.insert(instants),
            [{"id": i, "at": base + timedelta(microseconds=i)} for i in range(3)],
        )
        newyork = timezone(timedelta(hours=-4))
        found = await connection.execute(
            sa.select(instants.c.id)
            .where(instants.c.at > (base + timedelta(microseconds=1)).astimezone(newyork))
            .order_by(instants.c.at.desc())
        )
        assert found.scalars().all() == [2]


async def test_naive_values_are_refused_and_nothing_is_written(engine: AsyncEngine) -> None:
    orm = await create_orm(engine, plugins=[TimestampsPlugin()])
    repo = orm.repository(posts)

    with pytest.raises(InvalidTimestampError, match="has no time zone") as raised:
        await repo.create({"slug": "a", "title": "A", "created_at": datetime(2024, 1, 1)})
    assert raised.value.to_dict()["code"] == "INVALID_TIMESTAMP"
    with pytest.raises(InvalidTimestampError, match="got str"):
        await repo.create({"slug": "b", "title": "B", "created_at": "2024-01-01"})
    assert await snapshot_table(engine, posts) == []
