"""Every hot read next to raw asyncpg (issue 23): the same shape called with new values.

Each read method of a repository is timed against the hand-written floor: raw asyncpg on a
held connection, the SQL written out, prepared by asyncpg's statement cache, and the rows
turned into validated pydantic entities with one list-level ``TypeAdapter`` call (the
fastest way to validate many rows by hand). The records-only time of the floor is reported
too. Kysera runs the same call shape with a new value per call, as a service does, with and
without the soft-delete and timestamps plugins installed; the floor sends the SQL of the
plain repository, so the plugins' extra ``deleted_at IS NULL`` counts against them.

Implementations take turns batch by batch (see scenarios.Scenario); the ratios are
medians of wall time per operation. Target: every read at most 1.5x the floor.

Run: ``nox -s bench -- -k hot_reads`` (needs ``KYSERA_BENCH_POSTGRES_URL`` or
``KYSERA_TEST_POSTGRES_URL``). Results go to benchmarks/RESULTS.md by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from pydantic import BaseModel, TypeAdapter
from scenarios import Scenario
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from kysera.repository import Repository, create_orm, create_repository
from kysera.soft_delete import SoftDeletePlugin
from kysera.timestamps import TimestampsPlugin

ROWS = 1000
BATCH = 100
TARGET = 1.5

metadata = sa.MetaData()
hot_users = sa.Table(
    "bench_hot_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(100), nullable=False, unique=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("age", sa.Integer, nullable=True, index=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
)
COLUMNS = "id, email, name, age, status, created_at, updated_at, deleted_at"


class User(BaseModel):
    id: int
    email: str
    name: str
    age: int | None
    status: str
    created_at: Any
    updated_at: Any
    deleted_at: Any


USERS = TypeAdapter(list[User])


def entities(records: list[Any]) -> list[User]:
    """What a hand-written service does with its records: validated entities."""
    return USERS.validate_python([dict(record) for record in records])


@dataclass
class Setup:
    engine: AsyncEngine
    connection: AsyncConnection
    raw: Any
    plain: Repository[User]
    plugins: Repository[User]


@pytest.fixture(scope="module")
def setup(postgres_url: str, asyncpg_dsn: str, runner: asyncio.Runner) -> Iterator[Setup]:
    engine = create_async_engine(postgres_url, pool_size=2)

    async def start() -> Setup:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
            await connection.run_sync(metadata.create_all)
            await connection.execute(
                hot_users.insert(),
                [
                    {
                        "email": f"hot{n}@example.com",
                        "name": f"Hot {n}",
                        "age": n % 90,
                        "status": "active" if n % 4 else "away",
                    }
                    for n in range(ROWS)
                ],
            )
        connection = await engine.connect()
        orm = await create_orm(connection, plugins=[SoftDeletePlugin(), TimestampsPlugin()])
        return Setup(
            engine=engine,
            connection=connection,
            raw=await asyncpg.connect(asyncpg_dsn),
            plain=create_repository(connection, hot_users, entity=User),
            plugins=orm.repository(hot_users, entity=User),
        )

    state = runner.run(start())
    yield state

    async def stop() -> None:
        await state.raw.close()
        await state.connection.close()
        async with engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
        await engine.dispose()

    runner.run(stop())


Operation = Callable[[int], Awaitable[Any]]
Read = Callable[[Repository[User], int], Awaitable[Any]]


def compare(
    benchmark: Any,
    runner: asyncio.Runner,
    setup: Setup,
    title: str,
    *,
    records: Operation,
    to_entities: Callable[[Any], Any],
    read: Read,
) -> None:
    """Time one read in turns: the floor (``records`` then ``to_entities``, what hand-written
    code does with them), the records alone, and ``read`` on the plain and the plugged
    repository; report and store the ratios to the floor."""

    async def floor(n: int) -> Any:
        return to_entities(await records(n))

    def batch(operation: Operation) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            for n in range(BATCH):
                await operation(n)

        return run

    def on(repo: Repository[User]) -> Operation:
        return lambda n: read(repo, n)

    scenario = Scenario(runner, BATCH)
    scenario.add("asyncpg + pydantic (floor)", batch(floor))
    scenario.add("asyncpg, records only", batch(records))
    scenario.add("kysera", batch(on(setup.plain)))
    scenario.add("kysera + soft delete + timestamps", batch(on(setup.plugins)))
    scenario.turn()  # warm-up: statement caches, prepared statements, read shapes
    scenario.reset()
    benchmark.pedantic(scenario.turn, rounds=25, iterations=1)
    ratios = scenario.report(benchmark, title, baseline="asyncpg + pydantic (floor)")
    for name in ("kysera", "kysera + soft delete + timestamps"):
        met = "met" if ratios[name] <= TARGET else "MISSED"
        print(f"  {name}: {ratios[name]:.2f}x the floor (target {TARGET}x: {met})")


def age_of(n: int) -> int:
    return (n * 7) % 80


def email_of(n: int) -> str:
    return f"hot{(n * 7919) % ROWS}@example.com"


FIND = f"SELECT {COLUMNS} FROM bench_hot_users WHERE age >= $1 AND status = $2 ORDER BY id LIMIT 10"
FIND_ONE = f"SELECT {COLUMNS} FROM bench_hot_users WHERE email = $1 LIMIT 1"
COUNT = "SELECT count(*) FROM bench_hot_users WHERE age >= $1 AND status = $2"
EXISTS = "SELECT EXISTS (SELECT id FROM bench_hot_users WHERE email = $1)"
PAGE = f"SELECT {COLUMNS} FROM bench_hot_users WHERE status = $1 ORDER BY id LIMIT 20 OFFSET $2"
PAGE_COUNT = "SELECT count(*) FROM bench_hot_users WHERE status = $1"
FIRST_PAGE = f"SELECT {COLUMNS} FROM bench_hot_users WHERE status = $1 ORDER BY id LIMIT 21"
NEXT_PAGE = (
    f"SELECT {COLUMNS} FROM bench_hot_users WHERE status = $1 AND id > $2 ORDER BY id LIMIT 21"
)
BY_IDS = f"SELECT {COLUMNS} FROM bench_hot_users WHERE id = ANY($1)"
FIND_IN = f"SELECT {COLUMNS} FROM bench_hot_users WHERE age = ANY($1) ORDER BY id LIMIT 10"


def page_of(n: int) -> int:
    return n % 30 + 1  # every offset page is full: each one counts as well


def keys_of(n: int) -> list[int]:
    return [(n * 7919 + k * 101) % ROWS + 1 for k in range(10)]


def ages_in(n: int) -> list[int]:
    """One to five ages: one shape, whatever the list's length."""
    return [(n * 7 + k * 13) % 90 for k in range(n % 5 + 1)]


def first_twenty(records: list[Any]) -> list[User]:
    """A keyset page's entities: the floor fetches one row more, as the repository does."""
    return entities(records[:20])


def entities_and_total(found: tuple[list[Any], int]) -> tuple[list[User], int]:
    return entities(found[0]), int(found[1])


@pytest.mark.benchmark(group="hot reads: find(where, order_by, limit=10)")
def test_find(benchmark: Any, runner: asyncio.Runner, setup: Setup) -> None:
    raw = setup.raw
    compare(
        benchmark,
        runner,
        setup,
        "find(where, order_by, limit=10) → 10 entities",
        records=lambda n: raw.fetch(FIND, age_of(n), "active"),
        to_entities=entities,
        read=lambda repo, n: repo.find(
            {"age": {"$gte": age_of(n)}, "status": "active"}, order_by="id", limit=10
        ),
    )


@pytest.mark.benchmark(group="hot reads: find_one(where)")
def test_find_one(benchmark: Any, runner: asyncio.Runner, setup: Setup) -> None:
    raw = setup.raw
    compare(
        benchmark,
        runner,
        setup,
        "find_one(where) → 1 entity",
        records=lambda n: raw.fetchrow(FIND_ONE, email_of(n)),
        to_entities=lambda record: User.model_validate(dict(record)),
        read=lambda repo, n: repo.find_one({"email": email_of(n)}),
    )


@pytest.mark.benchmark(group="hot reads: count(where)")
def test_count(benchmark: Any, runner: asyncio.Runner, setup: Setup) -> None:
    raw = setup.raw
    compare(
        benchmark,
        runner,
        setup,
        "count(where)",
        records=lambda n: raw.fetchval(COUNT, age_of(n), "active"),
        to_entities=int,
        read=lambda repo, n: repo.count({"age": {"$gte": age_of(n)}, "status": "active"}),
    )


@pytest.mark.benchmark(group="hot reads: exists(where)")
def test_exists(benchmark: Any, runner: asyncio.Runner, setup: Setup) -> None:
    raw = setup.raw
    compare(
        benchmark,
        runner,
        setup,
        "exists(where)",
        records=lambda n: raw.fetchval(EXISTS, email_of(n)),
        to_entities=bool,
        read=lambda repo, n: repo.exists({"email": email_of(n)}),
    )


@pytest.mark.benchmark(group="hot reads: find_and_count(where, order_by, limit=10)")
def test_find_and_count(benchmark: Any, runner: asyncio.Runner, setup: Setup) -> None:
    raw = setup.raw

    async def records(n: int) -> Any:
        found = await raw.fetch(FIND, age_of(n), "active")
        return found, await raw.fetchval(COUNT, age_of(n), "active")

    compare(
        benchmark,
        runner,
        setup,
        "find_and_count(where, order_by, limit=10) → 10 entities + total",
        records=records,
        to_entities=entities_and_total,
        read=lambda repo, n: repo.find_and_count(
            {"age": {"$gte": age_of(n)}, "status": "active"}, order_by="id", limit=10
        ),
    )


@pytest.mark.benchmark(group="hot reads: paginate(page, limit=20, where)")
def test_paginate(benchmark: Any, runner: asyncio.Runner, setup: Setup) -> None:
    raw = setup.raw

    async def records(n: int) -> Any:
        found = await raw.fetch(PAGE, "active", (page_of(n) - 1) * 20)
        return found, await raw.fetchval(PAGE_COUNT, "active")

    compare(
        benchmark,
        runner,
        setup,
        "paginate(page, limit=20, where) → 20 entities + total",
        records=records,
        to_entities=entities_and_total,
        read=lambda repo, n: repo.paginate(page_of(n), 20, where={"status": "active"}),
    )


@pytest.mark.benchmark(group="hot reads: paginate_cursor, first page")
def test_paginate_cursor_first_page(benchmark: Any, runner: asyncio.Runner, setup: Setup) -> None:
    raw = setup.raw
    statuses = ("active", "away")
    compare(
        benchmark,
        runner,
        setup,
        "paginate_cursor(limit=20, where), first page → 20 entities + cursor",
        records=lambda n: raw.fetch(FIRST_PAGE, statuses[n % 2]),
        to_entities=first_twenty,
        read=lambda repo, n: repo.paginate_cursor(20, where={"status": statuses[n % 2]}),
    )


@pytest.mark.benchmark(group="hot reads: paginate_cursor, a later page")
def test_paginate_cursor_later_page(benchmark: Any, runner: asyncio.Runner, setup: Setup) -> None:
    raw = setup.raw
    positions = [(n * 37) % 700 for n in range(BATCH)]

    async def cursors_of(repo: Repository[User]) -> list[str]:
        # A real next_cursor per position: the one of a one-row page ending there (cursors
        # carry the table's ordering, not the where-dict: both repositories take them).
        found = []
        for position in positions:
            page = await repo.paginate_cursor(1, where={"id": {"$gte": position + 1}})
            assert page.next_cursor is not None
            found.append(page.next_cursor)
        return found

    cursors = runner.run(cursors_of(setup.plain))
    compare(
        benchmark,
        runner,
        setup,
        "paginate_cursor(limit=20, after=cursor, where) → 20 entities + cursors",
        records=lambda n: raw.fetch(NEXT_PAGE, "active", positions[n] + 1),
        to_entities=first_twenty,
        read=lambda repo, n: repo.paginate_cursor(20, after=cursors[n], where={"status": "active"}),
    )


@pytest.mark.benchmark(group="hot reads: find_by_ids(10 keys)")
def test_find_by_ids(benchmark: Any, runner: asyncio.Runner, setup: Setup) -> None:
    raw = setup.raw
    compare(
        benchmark,
        runner,
        setup,
        "find_by_ids(10 keys) → 10 entities",
        records=lambda n: raw.fetch(BY_IDS, keys_of(n)),
        to_entities=entities,
        read=lambda repo, n: repo.find_by_ids(keys_of(n)),
    )


@pytest.mark.benchmark(group="hot reads: find({column: {$in: list}}, order_by, limit=10)")
def test_find_in(benchmark: Any, runner: asyncio.Runner, setup: Setup) -> None:
    raw = setup.raw
    compare(
        benchmark,
        runner,
        setup,
        "find({age: {$in: 1-5 ages}}, order_by, limit=10) → 10 entities",
        records=lambda n: raw.fetch(FIND_IN, ages_in(n)),
        to_entities=entities,
        read=lambda repo, n: repo.find({"age": {"$in": ages_in(n)}}, order_by="id", limit=10),
    )
