"""Pagination on PostgreSQL, 100k rows: Kysera next to raw asyncpg and hand-written Core.

Every implementation runs on one held connection, a batch of pages per timed round. Ratios
that matter (printed at the end of the run, recorded in RESULTS.md):

* keyset page at depth ~95,000 / first page (target <= 1.1x; OFFSET costs ~24x there),
* mixed-direction ``age DESC, id ASC`` at depth / its first page (target <= 1.5x),
* paginate_cursor / the same keyset query written by hand in Core (target <= 1.15x).

The seeded table ``bench_pagination_people`` is created once and reused by later runs.
"""

from __future__ import annotations

import asyncio
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
BATCH = 40
ROUNDS = 15

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
MEDIANS: dict[str, float] = {}


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
        self.raw: Any = runner.run(asyncpg.connect(dsn))

    def close(self) -> None:
        self.runner.run(self.core.close())
        self.runner.run(self.raw.close())
        self.runner.run(self.engine.dispose())


@pytest.fixture(scope="module")
def db(runner: asyncio.Runner, postgres_url: str, asyncpg_dsn: str) -> Iterator[Connections]:
    runner.run(_seed(asyncpg_dsn))
    connections = Connections(runner, postgres_url, asyncpg_dsn)
    yield connections
    connections.close()


def timed(
    benchmark: Any, runner: asyncio.Runner, name: str, page: Callable[[], Awaitable[Any]]
) -> None:
    async def batch() -> None:
        for _ in range(BATCH):
            await page()

    runner.run(batch())  # warm caches and prepared statements
    benchmark.group = name.split(":")[0]
    benchmark.pedantic(runner.run, setup=lambda: ((batch(),), {}), rounds=ROUNDS)
    MEDIANS[name] = benchmark.stats.stats.median / BATCH


def row_at(db: Connections, sql: str) -> Any:
    return db.runner.run(db.raw.fetchrow(sql))


# --- ORDER BY id -----------------------------------------------------------------------------


def test_id_first_page_raw(benchmark: Any, db: Connections) -> None:
    statement = db.runner.run(
        db.raw.prepare(f"SELECT {COLUMNS} FROM bench_pagination_people ORDER BY id LIMIT 51")
    )
    timed(benchmark, db.runner, "id:raw first", statement.fetch)


def test_id_deep_page_raw(benchmark: Any, db: Connections) -> None:
    statement = db.runner.run(
        db.raw.prepare(
            f"SELECT {COLUMNS} FROM bench_pagination_people WHERE id > $1 ORDER BY id LIMIT 51"
        )
    )
    timed(benchmark, db.runner, "id:raw deep", lambda: statement.fetch(DEPTH))


def test_id_deep_page_core(benchmark: Any, db: Connections) -> None:
    async def page() -> list[Any]:
        statement = select(people).where(people.c.id > DEPTH).order_by(people.c.id).limit(51)
        return list((await db.core.execute(statement)).mappings().all())

    timed(benchmark, db.runner, "id:core deep", page)


def _cursor_at(db: Connections, order_by: list[Any]) -> str:
    page = db.runner.run(
        paginate_cursor(db.core, select(people), order_by=order_by, limit=DEPTH, max_limit=ROWS)
    )
    assert page.next_cursor is not None
    return page.next_cursor


def test_id_first_page_kysera(benchmark: Any, db: Connections) -> None:
    timed(
        benchmark,
        db.runner,
        "id:kysera first",
        lambda: paginate_cursor(db.core, select(people), order_by=[people.c.id], limit=PAGE),
    )


def test_id_deep_page_kysera(benchmark: Any, db: Connections) -> None:
    cursor = _cursor_at(db, [people.c.id])
    timed(
        benchmark,
        db.runner,
        "id:kysera deep",
        lambda: paginate_cursor(
            db.core, select(people), order_by=[people.c.id], limit=PAGE, after=cursor
        ),
    )


def test_id_deep_page_offset(benchmark: Any, db: Connections) -> None:
    statement = select(people).order_by(people.c.id)
    timed(
        benchmark,
        db.runner,
        "id:offset deep",
        lambda: paginate(db.core, statement, page=DEPTH // PAGE + 1, limit=PAGE),
    )


def test_id_first_page_offset(benchmark: Any, db: Connections) -> None:
    statement = select(people).order_by(people.c.id)
    timed(
        benchmark,
        db.runner,
        "id:offset first",
        lambda: paginate(db.core, statement, page=1, limit=PAGE),
    )


# --- ORDER BY age, id (same direction: row-value comparison) -------------------------------


def test_age_id_deep_page_core(benchmark: Any, db: Connections) -> None:
    last = row_at(
        db, f"SELECT age, id FROM bench_pagination_people ORDER BY age, id OFFSET {DEPTH}"
    )

    async def page() -> list[Any]:
        statement = (
            select(people)
            .where(tuple_(people.c.age, people.c.id) > tuple_(last["age"], last["id"]))
            .order_by(people.c.age, people.c.id)
            .limit(51)
        )
        return list((await db.core.execute(statement)).mappings().all())

    timed(benchmark, db.runner, "age-id:core deep", page)


def test_age_id_first_page_kysera(benchmark: Any, db: Connections) -> None:
    order_by = [people.c.age, people.c.id]
    timed(
        benchmark,
        db.runner,
        "age-id:kysera first",
        lambda: paginate_cursor(db.core, select(people), order_by=order_by, limit=PAGE),
    )


def test_age_id_deep_page_kysera(benchmark: Any, db: Connections) -> None:
    order_by = [people.c.age, people.c.id]
    cursor = _cursor_at(db, order_by)
    timed(
        benchmark,
        db.runner,
        "age-id:kysera deep",
        lambda: paginate_cursor(
            db.core, select(people), order_by=order_by, limit=PAGE, after=cursor
        ),
    )


# --- ORDER BY age DESC, id ASC (mixed: bounded OR expansion) -------------------------------


def test_mixed_deep_page_raw(benchmark: Any, db: Connections) -> None:
    last = row_at(
        db, f"SELECT age, id FROM bench_pagination_people ORDER BY age DESC, id OFFSET {DEPTH}"
    )
    statement = db.runner.run(
        db.raw.prepare(
            f"SELECT {COLUMNS} FROM bench_pagination_people "
            "WHERE age <= $1 AND (age < $1 OR (age = $1 AND id > $2)) "
            "ORDER BY age DESC, id LIMIT 51"
        )
    )
    timed(benchmark, db.runner, "mixed:raw deep", lambda: statement.fetch(last["age"], last["id"]))


def test_mixed_deep_page_core(benchmark: Any, db: Connections) -> None:
    last = row_at(
        db, f"SELECT age, id FROM bench_pagination_people ORDER BY age DESC, id OFFSET {DEPTH}"
    )
    age, id_ = last["age"], last["id"]

    async def page() -> list[Any]:
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
        return list((await db.core.execute(statement)).mappings().all())

    timed(benchmark, db.runner, "mixed:core deep", page)


def test_mixed_first_page_kysera(benchmark: Any, db: Connections) -> None:
    order_by = [people.c.age.desc(), people.c.id]
    timed(
        benchmark,
        db.runner,
        "mixed:kysera first",
        lambda: paginate_cursor(db.core, select(people), order_by=order_by, limit=PAGE),
    )


def test_mixed_deep_page_kysera(benchmark: Any, db: Connections) -> None:
    order_by = [people.c.age.desc(), people.c.id]
    cursor = _cursor_at(db, order_by)
    timed(
        benchmark,
        db.runner,
        "mixed:kysera deep",
        lambda: paginate_cursor(
            db.core, select(people), order_by=order_by, limit=PAGE, after=cursor
        ),
    )


def test_mixed_deep_after_shallow_pages_kysera(benchmark: Any, db: Connections) -> None:
    """The same prepared statement used on shallow pages first (PostgreSQL's generic plans)."""
    order_by = [people.c.age.desc(), people.c.id]
    engine = create_async_engine(str(db.engine.url.render_as_string(hide_password=False)))
    connection: AsyncConnection = db.runner.run(engine.connect().start())
    try:
        shallow = db.runner.run(
            paginate_cursor(connection, select(people), order_by=order_by, limit=PAGE)
        ).next_cursor

        async def warm() -> None:
            for _ in range(20):
                await paginate_cursor(
                    connection, select(people), order_by=order_by, limit=PAGE, after=shallow
                )

        db.runner.run(warm())
        cursor = _cursor_at(db, order_by)
        timed(
            benchmark,
            db.runner,
            "mixed:kysera deep after shallow",
            lambda: paginate_cursor(
                connection, select(people), order_by=order_by, limit=PAGE, after=cursor
            ),
        )
    finally:
        db.runner.run(connection.close())
        db.runner.run(engine.dispose())


def test_zz_print_ratios() -> None:
    """Not a benchmark: prints the ratios RESULTS.md records (run with -s to see them)."""

    def ratio(numerator: str, denominator: str) -> str:
        if numerator not in MEDIANS or denominator not in MEDIANS:
            return "n/a"
        return f"{MEDIANS[numerator] / MEDIANS[denominator]:.2f}x"

    lines = [f"{name:36s} {seconds * 1e6:9.1f} us" for name, seconds in sorted(MEDIANS.items())]
    lines += [
        f"keyset id deep / first:            {ratio('id:kysera deep', 'id:kysera first')}",
        f"offset id deep / first:            {ratio('id:offset deep', 'id:offset first')}",
        f"keyset age,id deep / first:        {ratio('age-id:kysera deep', 'age-id:kysera first')}",
        f"keyset mixed deep / first:         {ratio('mixed:kysera deep', 'mixed:kysera first')}",
        "keyset mixed deep after shallow / first: "
        + ratio("mixed:kysera deep after shallow", "mixed:kysera first"),
        f"kysera / core, id deep:            {ratio('id:kysera deep', 'id:core deep')}",
        f"kysera / core, age,id deep:        {ratio('age-id:kysera deep', 'age-id:core deep')}",
        f"kysera / core, mixed deep:         {ratio('mixed:kysera deep', 'mixed:core deep')}",
        f"core / raw, id deep:               {ratio('id:core deep', 'id:raw deep')}",
        f"kysera / raw, id deep:             {ratio('id:kysera deep', 'id:raw deep')}",
        f"kysera / raw, mixed deep:          {ratio('mixed:kysera deep', 'mixed:raw deep')}",
    ]
    print("\n" + "\n".join(lines))
