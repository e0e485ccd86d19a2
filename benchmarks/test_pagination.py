"""Pagination on PostgreSQL, 100k rows: Kysera next to raw asyncpg and hand-written Core.

Every implementation runs on one held connection, a batch of pages per timed round. The
pytest-benchmark table gives each scenario on its own; ``test_interleaved_ratios`` then lets
the scenarios take turns, round after round, and prints the ratios of their medians (run
with ``-s``), which load changes on a shared machine cannot skew. Ratios that matter:

* keyset page at depth ~95,000 / first page (target <= 1.1x; OFFSET costs ~24x there),
* mixed-direction ``age DESC, id ASC`` at depth / its first page (target <= 1.5x),
* paginate_cursor / the same keyset query written by hand in Core (target <= 1.15x).

The seeded table ``bench_pagination_people`` is created once and reused by later runs.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    Table,
    Text,
    and_,
    or_,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from kysera.core import paginate, paginate_cursor

ROWS = 100_000
DEPTH = 95_000
PAGE = 50
BATCH = 10
ROUNDS = 15
INTERLEAVED_ROUNDS = 80

metadata = MetaData()
people = Table(
    "bench_pagination_people",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("age", Integer, nullable=False),
    Column("name", Text, nullable=False),
    Column("score", Integer, nullable=False),
)
COLUMNS = "id, age, name, score"
Scenario = Callable[[], Awaitable[Any]]


async def _seed(dsn: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        exists = await connection.fetchval("SELECT to_regclass('bench_pagination_people')")
        if (
            exists
            and await connection.fetchval("SELECT count(*) FROM bench_pagination_people") == ROWS
        ):
            return
        await connection.execute(
            """
            DROP TABLE IF EXISTS bench_pagination_people;
            CREATE TABLE bench_pagination_people (
                id bigint PRIMARY KEY, age integer NOT NULL, name text NOT NULL,
                score integer NOT NULL
            );
            INSERT INTO bench_pagination_people
            SELECT i, (i * 7919) % 90, 'person ' || i, (i * 104729::bigint) % 1000
            FROM generate_series(1, 100000) AS i;
            CREATE INDEX bench_pagination_people_age_id ON bench_pagination_people (age, id);
            CREATE INDEX bench_pagination_people_age_desc_id
                ON bench_pagination_people (age DESC, id ASC);
            ANALYZE bench_pagination_people;
            """
        )
    finally:
        await connection.close()


class Connections:
    """One raw asyncpg connection and one SQLAlchemy connection, held for the whole run."""

    def __init__(self, runner: asyncio.Runner, postgres_url: str, dsn: str) -> None:
        self.runner = runner
        self.engine = create_async_engine(postgres_url)
        self.core: AsyncConnection = runner.run(self.engine.connect().start())
        # A second connection whose keyset statements first ran on shallow pages.
        self.warmed: AsyncConnection = runner.run(self.engine.connect().start())
        self.raw: Any = runner.run(asyncpg.connect(dsn))

    def close(self) -> None:
        for connection in (self.core, self.warmed):
            self.runner.run(connection.close())
        self.runner.run(self.raw.close())
        self.runner.run(self.engine.dispose())

    def fetchrow(self, sql: str) -> Any:
        return self.runner.run(self.raw.fetchrow(sql))

    def prepare(self, sql: str) -> Any:
        return self.runner.run(self.raw.prepare(sql))

    def cursor_at_depth(self, order_by: list[Any]) -> str:
        page = self.runner.run(
            paginate_cursor(
                self.core, select(people), order_by=order_by, limit=DEPTH, max_limit=ROWS
            )
        )
        assert page.next_cursor is not None
        return page.next_cursor


def _scenarios(db: Connections) -> dict[str, Scenario]:
    by_id = [people.c.id]
    by_age_id = [people.c.age, people.c.id]
    mixed = [people.c.age.desc(), people.c.id]
    id_cursor = db.cursor_at_depth(by_id)
    age_id_cursor = db.cursor_at_depth(by_age_id)
    mixed_cursor = db.cursor_at_depth(mixed)
    age_id_last = db.fetchrow(
        f"SELECT age, id FROM bench_pagination_people ORDER BY age, id OFFSET {DEPTH - 1}"
    )
    mixed_last = db.fetchrow(
        f"SELECT age, id FROM bench_pagination_people ORDER BY age DESC, id OFFSET {DEPTH - 1}"
    )
    raw_first = db.prepare(f"SELECT {COLUMNS} FROM bench_pagination_people ORDER BY id LIMIT 51")
    raw_deep = db.prepare(
        f"SELECT {COLUMNS} FROM bench_pagination_people WHERE id > $1 ORDER BY id LIMIT 51"
    )
    raw_mixed = db.prepare(
        f"SELECT {COLUMNS} FROM bench_pagination_people "
        "WHERE age <= $1 AND (age < $1 OR (age = $1 AND id > $2)) "
        "ORDER BY age DESC, id LIMIT 51"
    )

    async def core_id_deep() -> Any:
        statement = select(people).where(people.c.id > DEPTH).order_by(people.c.id).limit(51)
        return (await db.core.execute(statement)).mappings().all()

    async def core_age_id_deep() -> Any:
        age, id_ = age_id_last["age"], age_id_last["id"]
        statement = (
            select(people)
            .where(tuple_(people.c.age, people.c.id) > tuple_(age, id_))
            .order_by(people.c.age, people.c.id)
            .limit(51)
        )
        return (await db.core.execute(statement)).mappings().all()

    async def core_mixed_deep() -> Any:
        age, id_ = mixed_last["age"], mixed_last["id"]
        statement = (
            select(people)
            .where(
                and_(
                    people.c.age <= age,
                    or_(people.c.age < age, and_(people.c.age == age, people.c.id > id_)),
                )
            )
            .order_by(people.c.age.desc(), people.c.id)
            .limit(51)
        )
        return (await db.core.execute(statement)).mappings().all()

    def kysera(order_by: list[Any], after: str | None, connection: Any = None) -> Scenario:
        return lambda: paginate_cursor(
            connection or db.core, select(people), order_by=order_by, limit=PAGE, after=after
        )

    by_id_statement = select(people).order_by(people.c.id)
    second_id = db.runner.run(kysera(by_id, None)()).next_cursor
    shallow_mixed = db.runner.run(kysera(mixed, None)()).next_cursor

    async def warm() -> None:
        for _ in range(20):
            await kysera(mixed, shallow_mixed, db.warmed)()

    db.runner.run(warm())
    return {
        "id: raw first": raw_first.fetch,
        "id: raw deep": lambda: raw_deep.fetch(DEPTH),
        "id: core deep": core_id_deep,
        "id: kysera first": kysera(by_id, None),
        "id: kysera second": kysera(by_id, second_id),
        "id: kysera deep": kysera(by_id, id_cursor),
        "id: offset first": lambda: paginate(db.core, by_id_statement, page=1, limit=PAGE),
        "id: offset deep": lambda: paginate(
            db.core, by_id_statement, page=DEPTH // PAGE + 1, limit=PAGE
        ),
        "age-id: core deep": core_age_id_deep,
        "age-id: kysera first": kysera(by_age_id, None),
        "age-id: kysera deep": kysera(by_age_id, age_id_cursor),
        "mixed: raw deep": lambda: raw_mixed.fetch(mixed_last["age"], mixed_last["id"]),
        "mixed: core deep": core_mixed_deep,
        "mixed: kysera first": kysera(mixed, None),
        "mixed: kysera second": kysera(mixed, shallow_mixed),
        "mixed: kysera deep": kysera(mixed, mixed_cursor),
        "mixed: kysera deep after shallow": kysera(mixed, mixed_cursor, db.warmed),
    }


@pytest.fixture(scope="module")
def db(runner: asyncio.Runner, postgres_url: str, asyncpg_dsn: str) -> Iterator[Connections]:
    runner.run(_seed(asyncpg_dsn))
    connections = Connections(runner, postgres_url, asyncpg_dsn)
    yield connections
    connections.close()


@pytest.fixture(scope="module")
def scenarios(db: Connections) -> dict[str, Scenario]:
    return _scenarios(db)


SCENARIOS = [
    "id: raw first",
    "id: raw deep",
    "id: core deep",
    "id: kysera first",
    "id: kysera second",
    "id: kysera deep",
    "id: offset first",
    "id: offset deep",
    "age-id: core deep",
    "age-id: kysera first",
    "age-id: kysera deep",
    "mixed: raw deep",
    "mixed: core deep",
    "mixed: kysera first",
    "mixed: kysera second",
    "mixed: kysera deep",
    "mixed: kysera deep after shallow",
]


async def _batch(scenario: Scenario) -> tuple[float, float]:
    """Wall-clock and this process's CPU time per page, over a batch of pages."""
    started, started_cpu = time.perf_counter(), time.process_time()
    for _ in range(BATCH):
        await scenario()
    return (
        (time.perf_counter() - started) / BATCH,
        (time.process_time() - started_cpu) / BATCH,
    )


@pytest.mark.parametrize("name", SCENARIOS)
def test_page(
    benchmark: Any, runner: asyncio.Runner, scenarios: dict[str, Scenario], name: str
) -> None:
    scenario = scenarios[name]
    runner.run(_batch(scenario))  # warm caches and prepared statements
    benchmark.group = name.partition(":")[0]
    benchmark.pedantic(runner.run, setup=lambda: ((_batch(scenario),), {}), rounds=ROUNDS)
    benchmark.extra_info["pages_per_round"] = BATCH


RATIOS = [
    ("keyset by id, depth 95k / first page (<= 1.1)", "id: kysera deep", "id: kysera first"),
    (
        "keyset by id, depth 95k / second page (both with a cursor)",
        "id: kysera deep",
        "id: kysera second",
    ),
    ("keyset by age,id, depth / first (<= 1.1)", "age-id: kysera deep", "age-id: kysera first"),
    ("keyset age DESC,id, depth / first (<= 1.5)", "mixed: kysera deep", "mixed: kysera first"),
    (
        "keyset age DESC,id, depth / second page",
        "mixed: kysera deep",
        "mixed: kysera second",
    ),
    (
        "same, statement first used on shallow pages / first",
        "mixed: kysera deep after shallow",
        "mixed: kysera first",
    ),
    ("offset page 1901 / page 1 (count included)", "id: offset deep", "id: offset first"),
    ("paginate_cursor / hand-written Core, id (<= 1.15)", "id: kysera deep", "id: core deep"),
    (
        "paginate_cursor / hand-written Core, age,id (<= 1.15)",
        "age-id: kysera deep",
        "age-id: core deep",
    ),
    (
        "paginate_cursor / hand-written Core, mixed (<= 1.15)",
        "mixed: kysera deep",
        "mixed: core deep",
    ),
    ("hand-written Core / raw asyncpg, id deep", "id: core deep", "id: raw deep"),
    ("paginate_cursor / raw asyncpg, id deep", "id: kysera deep", "id: raw deep"),
    ("paginate_cursor / raw asyncpg, mixed deep", "mixed: kysera deep", "mixed: raw deep"),
]


def test_interleaved_ratios(runner: asyncio.Runner, scenarios: dict[str, Scenario]) -> None:
    """The scenarios take turns in random order each round; prints medians and ratios.

    Wall-clock time includes the server's work (what depth changes); client CPU time is
    this process's own work (what Kysera adds over hand-written Core), and is far less
    disturbed by other load on a shared machine.
    """
    wall: dict[str, list[float]] = {name: [] for name in SCENARIOS}
    cpu: dict[str, list[float]] = {name: [] for name in SCENARIOS}
    order = list(SCENARIOS)
    shuffle = random.Random(4).shuffle
    for _ in range(INTERLEAVED_ROUNDS):
        shuffle(order)
        for name in order:
            wall_time, cpu_time = runner.run(_batch(scenarios[name]))
            wall[name].append(wall_time)
            cpu[name].append(cpu_time)
    wall_median = {name: statistics.median(times) for name, times in wall.items()}
    cpu_median = {name: statistics.median(times) for name, times in cpu.items()}
    lines = [f"{'scenario':36s} {'wall':>10s} {'client CPU':>12s}"]
    lines += [
        f"{name:36s} {wall_median[name] * 1e6:7.1f} us {cpu_median[name] * 1e6:9.1f} us"
        for name in SCENARIOS
    ]
    lines += [f"{'ratio':56s} {'wall':>6s} {'CPU':>6s}"]
    lines += [
        f"{label:56s} {wall_median[top] / wall_median[bottom]:5.2f}x "
        f"{cpu_median[top] / cpu_median[bottom]:5.2f}x"
        for label, top, bottom in RATIOS
    ]
    print("\n" + "\n".join(lines))
