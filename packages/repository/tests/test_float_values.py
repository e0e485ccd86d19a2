"""A number written to a float column is found by itself, whatever precision the database
stores the column in (SPEC §7, one value, one meaning).

PostgreSQL's ``real`` and MySQL/MariaDB's ``FLOAT`` keep 4 bytes: ``1.1`` is stored as
1.10000002384..., which the 8-byte ``1.1`` never equals. Hypothesis draws the values (any
finite float a request could carry, not only those single precision holds exactly); each row
must match ``=``, ``$in``, ``$gte`` and ``$lte`` of the value it was written with, and neither
``$gt`` nor ``$lt``, through the read shapes and through `compile_where`.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.repository import Repository, compile_where, create_repository

metadata = sa.MetaData()
measures = sa.Table(
    "fv_measures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("real", sa.REAL, nullable=False),  # 4 bytes on PostgreSQL
    sa.Column("plain", sa.Float, nullable=False),  # 4 bytes on MySQL/MariaDB
    sa.Column("single", sa.Float(precision=24), nullable=False),  # 4 bytes on both
    sa.Column("double", sa.Double, nullable=False),  # 8 bytes everywhere
)
COLUMNS = ["real", "plain", "single", "double"]
# Finite values single precision can hold without overflow or denormals.
VALUES = st.one_of(
    st.just(0.0),
    st.floats(min_value=1e-30, max_value=1e30),
    st.floats(min_value=-1e30, max_value=-1e-30),
    st.sampled_from([1.1, 0.1, 123456789.0, 16777217.0, 3.3333333333, -2.5e-7]),
    st.integers(-(2**40), 2**40),  # beyond 2**24, single precision rounds integers too
)
_IDS = itertools.count(1)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def repo(kysera_engine: AsyncEngine) -> AsyncIterator[Repository[Any]]:
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
    yield create_repository(kysera_engine, measures)
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(value=VALUES)
async def test_a_float_finds_the_row_it_was_written_to(repo: Repository[Any], value: float) -> None:
    row_id = next(_IDS)
    await repo.create({"id": row_id, **dict.fromkeys(COLUMNS, value)})
    for column in COLUMNS:
        matching = [{column: value}, {column: {"$in": [value]}}]
        matching += [{column: {"$gte": value}}, {column: {"$lte": value}}]
        for where in matching:
            found = {"id": row_id, **where}
            assert await repo.count(found) == 1, found  # a read shape
            assert await repo.count(compile_where(measures, found)) == 1, found  # per call
        for where in ({column: {"$gt": value}}, {column: {"$lt": value}}):
            assert await repo.count({"id": row_id, **where}) == 0, where
