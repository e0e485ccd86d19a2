"""Per-test isolation cost on PostgreSQL: a rolled-back connection against cleaning tables.

Every "test" writes one row into each table of a 10-table foreign-key chain, then the
strategy under measurement restores the database:

* ``rollback``: the `kysera_connection` fixture's way, `rollback_transaction` (BEGIN,
  SAVEPOINT, the test's writes, ROLLBACK);
* ``delete`` / ``truncate``: the writes are committed, then ``clean_database`` empties the 10
  tables with that strategy;
* ``commit_only``: the writes committed and nothing cleaned, the baseline that the cleaning
  strategies add their cost to.

Each timed call runs a batch of tests inside one ``runner.run(...)``. Isolation cost per test
= (strategy − commit_only) for delete/truncate; for rollback it is the whole fixture cost
minus the same writes (measured as ``writes_only`` on a held connection). The ``*_only``
variants time the isolation step alone: entering and leaving `rollback_transaction` with an
empty test, and ``clean_database`` on the 10 (already empty) tables.
Run: ``nox -s bench -- benchmarks/test_testing_isolation.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from kysera.core.testing import clean_database, rollback_transaction

TABLES = 10
BATCH = 20

metadata = sa.MetaData()
chain = [
    sa.Table(
        f"bench_iso_{index}",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("label", sa.String(40), nullable=False),
        *(
            [sa.Column("parent_id", sa.ForeignKey(f"bench_iso_{index - 1}.id"), nullable=False)]
            if index
            else []
        ),
    )
    for index in range(TABLES)
]
NAMES = [table.name for table in chain]


async def write_one_row_per_table(conn: AsyncConnection) -> None:
    parent_id = None
    for index, table in enumerate(chain):
        values: dict[str, object] = {"label": f"row in {table.name}"}
        if index:
            values["parent_id"] = parent_id
        parent_id = (await conn.execute(table.insert().returning(table.c.id), values)).scalar_one()


@pytest.fixture(scope="module")
def engine(runner: asyncio.Runner, postgres_url: str) -> Iterator[AsyncEngine]:
    engine = create_async_engine(postgres_url, pool_size=2)

    async def create() -> None:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
            await conn.run_sync(metadata.create_all)

    async def drop() -> None:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
        await engine.dispose()

    runner.run(create())
    yield engine
    runner.run(drop())


def strategies(engine: AsyncEngine) -> dict[str, Callable[[], Awaitable[None]]]:
    async def rollback() -> None:
        async with rollback_transaction(engine) as conn:
            await write_one_row_per_table(conn)

    async def commit_only() -> None:
        async with engine.begin() as conn:
            await write_one_row_per_table(conn)

    async def delete() -> None:
        await commit_only()
        await clean_database(engine, "delete", tables=NAMES)

    async def truncate() -> None:
        await commit_only()
        await clean_database(engine, "truncate", tables=NAMES)

    async def fixture_only() -> None:
        async with rollback_transaction(engine):
            pass

    async def delete_only() -> None:
        await clean_database(engine, "delete", tables=NAMES)

    async def truncate_only() -> None:
        await clean_database(engine, "truncate", tables=NAMES)

    return {
        "rollback_fixture_only": fixture_only,
        "delete_only": delete_only,
        "truncate_only": truncate_only,
        "rollback": rollback,
        "commit_only": commit_only,
        "delete": delete,
        "truncate": truncate,
    }


STRATEGIES = [
    "rollback_fixture_only",
    "delete_only",
    "truncate_only",
    "writes_only",
    "rollback",
    "commit_only",
    "delete",
    "truncate",
]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_isolation_cost(
    benchmark: pytest.FixtureRequest, runner: asyncio.Runner, engine: AsyncEngine, strategy: str
) -> None:
    if strategy == "writes_only":
        held: list[AsyncConnection] = []

        async def open_held() -> None:
            conn = await engine.connect()
            await conn.begin()
            held.append(conn)

        runner.run(open_held())

        async def batch() -> None:
            for _ in range(BATCH):
                await write_one_row_per_table(held[0])

        try:
            benchmark.pedantic(lambda: runner.run(batch()), rounds=15, warmup_rounds=2)  # type: ignore[attr-defined]
        finally:
            runner.run(held[0].close())
        return

    run_one = strategies(engine)[strategy]

    async def batch() -> None:
        for _ in range(BATCH):
            await run_one()

    benchmark.pedantic(lambda: runner.run(batch()), rounds=15, warmup_rounds=2)  # type: ignore[attr-defined]
    runner.run(clean_database(engine, "truncate", tables=NAMES))
