"""Repository benchmarks on PostgreSQL: Kysera next to raw asyncpg, hand-written SQLAlchemy
Core and advanced-alchemy's async repository, in one process, on the same data.

Each scenario runs its implementations in turns (round 1: every implementation once, round 2:
again, ...), so machine noise hits them alike; a turn times a batch of awaits inside one
``runner.run(...)``. pytest-benchmark times the whole turn; the per-implementation medians and
the ratios to raw asyncpg are printed and stored in ``benchmark.extra_info``.

Run: ``nox -s bench -- -k repository`` (needs ``KYSERA_BENCH_POSTGRES_URL`` or
``KYSERA_TEST_POSTGRES_URL``). Results go to benchmarks/RESULTS.md by hand.
"""

from __future__ import annotations

import asyncio
import timeit
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from pydantic import BaseModel, TypeAdapter
from scenarios import Scenario
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from kysera.repository import QueryContext, Repository, create_orm, create_repository, hookimpl
from kysera.soft_delete import SoftDeletePlugin
from kysera.timestamps import TimestampsPlugin

ROWS = 1000
metadata = sa.MetaData()
bench_users = sa.Table(
    "bench_repo_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(100), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("age", sa.Integer, nullable=True),
    sa.Column("status", sa.String(20), nullable=False, server_default="active"),
)
SELECT_BY_ID = "SELECT id, email, name, age, status FROM bench_repo_users WHERE id = $1"
INSERT_RETURNING = (
    "INSERT INTO bench_repo_users (email, name, age, status) VALUES ($1, $2, $3, $4) "
    "RETURNING id, email, name, age, status"
)
INSERT = "INSERT INTO bench_repo_users (email, name, age, status) VALUES ($1, $2, $3, $4)"
# The hand-written floor of a bulk insert that returns the rows: one statement, one array
# per column (issue 23).
UNNEST_RETURNING = (
    "INSERT INTO bench_repo_users (email, name, age, status) "
    "SELECT u.email, u.name, u.age, u.status "
    "FROM unnest($1::text[], $2::text[], $3::int[], $4::text[]) AS u(email, name, age, status) "
    "RETURNING id, email, name, age, status"
)
# The same for the table with the soft-delete and timestamps columns (the stamps the
# timestamps plugin would fill in, as two more arrays).
STAMPED_UNNEST_RETURNING = (
    "INSERT INTO bench_repo_stamped_plain (email, name, age, status, created_at, updated_at) "
    "SELECT u.email, u.name, u.age, u.status, u.created_at, u.updated_at "
    "FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::timestamptz[], "
    "$6::timestamptz[]) AS u(email, name, age, status, created_at, updated_at) "
    "RETURNING id, email, name, age, status, created_at, updated_at, deleted_at"
)


def stamped_users(name: str) -> sa.Table:
    """``bench_repo_users`` plus the soft-delete and timestamps columns."""
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(100), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("age", sa.Integer, nullable=True),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    )


# One table per repository (see conftest.repository_pair): the plugin-free one and the
# plugged one of create_many's plugin comparison.
stamped_plain = stamped_users("bench_repo_stamped_plain")
stamped_plugged = stamped_users("bench_repo_stamped_plugged")


class User(BaseModel):
    id: int
    email: str
    name: str
    age: int | None
    status: str


USERS = TypeAdapter(list[User])


class StampedUser(User):
    created_at: datetime | None
    updated_at: datetime | None
    deleted_at: datetime | None


class UserCreate(BaseModel):
    email: str
    name: str
    age: int | None = None
    status: str = "active"


class Base(DeclarativeBase):
    pass


class UserModel(Base):
    __table__ = bench_users


class UserRepository(SQLAlchemyAsyncRepository[UserModel]):
    model_type = UserModel


class NoopPlugin:
    """Intercepts every statement and changes nothing: the cost of the plugin pipeline."""

    def __init__(self, name: str) -> None:
        self.name = name

    @hookimpl
    def kysera_intercept_query(self, context: QueryContext) -> None:
        return None


def new_row(n: int) -> dict[str, Any]:
    return {"email": f"bench{n}@example.com", "name": f"Bench {n}", "age": n % 90, "status": "new"}


@pytest.fixture(scope="module")
def engine(postgres_url: str, runner: asyncio.Runner) -> Iterator[AsyncEngine]:
    engine = create_async_engine(postgres_url, pool_size=5)

    async def setup() -> None:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
            await connection.run_sync(metadata.create_all)
            await connection.execute(
                bench_users.insert(), [new_row(n) | {"status": "active"} for n in range(ROWS)]
            )

    runner.run(setup())
    yield engine

    async def teardown() -> None:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
        await engine.dispose()

    runner.run(teardown())


@pytest.fixture(scope="module")
def pool(asyncpg_dsn: str, runner: asyncio.Runner, engine: AsyncEngine) -> Iterator[Any]:
    async def open_pool() -> Any:
        return await asyncpg.create_pool(asyncpg_dsn, min_size=2, max_size=5)

    created = runner.run(open_pool())
    yield created
    runner.run(created.close())


class Held:
    """Connections held open for a scenario: raw asyncpg, SQLAlchemy, and an ORM session."""

    def __init__(self, runner: asyncio.Runner, engine: AsyncEngine, dsn: str) -> None:
        self.runner = runner
        self.raw: Any = runner.run(asyncpg.connect(dsn))
        self.connection: AsyncConnection = runner.run(engine.connect().start())
        self.session = AsyncSession(bind=self.connection, expire_on_commit=False)

    def close(self) -> None:
        async def close() -> None:
            await self.session.close()
            await self.connection.close()
            await self.raw.close()

        self.runner.run(close())


@pytest.fixture
def held(runner: asyncio.Runner, engine: AsyncEngine, asyncpg_dsn: str) -> Iterator[Held]:
    connections = Held(runner, engine, asyncpg_dsn)
    yield connections
    connections.close()


@pytest.mark.benchmark(group="repository: get by primary key, connection held")
def test_find_by_id_on_a_held_connection(
    benchmark: Any, runner: asyncio.Runner, held: Held
) -> None:
    batch = 200
    keys = [(n * 7919) % ROWS + 1 for n in range(batch)]
    connection, raw = held.connection, held.raw
    repo = create_repository(connection, bench_users, entity=User)
    trusting = create_repository(connection, bench_users, entity=User, validate_results=False)
    orm = runner.run(create_orm(connection, plugins=[NoopPlugin("noop_a"), NoopPlugin("noop_b")]))
    with_plugins: Repository[User] = orm.repository(bench_users, entity=User)
    advanced = UserRepository(session=held.session, auto_expunge=True)

    async def asyncpg_fetchrow() -> None:
        for key in keys:
            await raw.fetchrow(SELECT_BY_ID, key)

    async def core_built_per_call() -> None:
        for key in keys:
            (
                await connection.execute(sa.select(bench_users).where(bench_users.c.id == key))
            ).first()

    prebuilt = sa.select(bench_users).where(bench_users.c.id == sa.bindparam("key"))

    async def core_built_once() -> None:
        for key in keys:
            (await connection.execute(prebuilt, {"key": key})).first()

    session = held.session

    async def orm_session_get() -> None:
        for key in keys:
            # populate_existing: load from the database every time, not the identity map.
            await session.get(UserModel, key, populate_existing=True)

    async def advanced_alchemy() -> None:
        for key in keys:
            await advanced.get(key)

    async def kysera() -> None:
        for key in keys:
            await repo.find_by_id(key)

    async def kysera_trusting() -> None:
        for key in keys:
            await trusting.find_by_id(key)

    async def kysera_two_noop_plugins() -> None:
        for key in keys:
            await with_plugins.find_by_id(key)

    scenario = Scenario(runner, batch)
    scenario.add("asyncpg", asyncpg_fetchrow)
    scenario.add("core (built per call)", core_built_per_call)
    scenario.add("core (built once, rows only)", core_built_once)
    scenario.add("sqlalchemy ORM session.get", orm_session_get)
    scenario.add("advanced-alchemy", advanced_alchemy)
    scenario.add("kysera find_by_id", kysera)
    scenario.add("kysera, validate_results=False", kysera_trusting)
    scenario.add("kysera + 2 no-op plugins", kysera_two_noop_plugins)
    scenario.turn()  # warm-up: statement caches, prepared statements
    scenario.reset()
    benchmark.pedantic(scenario.turn, rounds=25, iterations=1)
    ratios = scenario.report(benchmark, "find_by_id → validated entity, held connection")
    benchmark.extra_info["plugins / no plugins"] = round(
        ratios["kysera + 2 no-op plugins"] / ratios["kysera find_by_id"], 3
    )
    print(f"  two no-op plugins / none: {benchmark.extra_info['plugins / no plugins']:.3f}×")


@pytest.mark.benchmark(group="repository: find by a where-dict, connection held")
def test_find_by_a_where_dict_on_a_held_connection(
    benchmark: Any, runner: asyncio.Runner, held: Held
) -> None:
    """``find({"age": {"$gte": a}, "status": "active"}, order_by="id", limit=10)`` with a new
    ``a`` per call: the same shape every time, as a service calls it (issue 23)."""
    batch = 200
    ages = [n % 80 for n in range(batch)]
    connection, raw = held.connection, held.raw
    repo = create_repository(connection, bench_users, entity=User)
    query = (
        "SELECT id, email, name, age, status FROM bench_repo_users "
        "WHERE age >= $1 AND status = $2 ORDER BY id LIMIT 10"
    )

    async def asyncpg_fetch() -> None:
        for age in ages:
            await raw.fetch(query, age, "active")

    async def core_built_per_call() -> None:
        for age in ages:
            statement = (
                sa.select(bench_users)
                .where(bench_users.c.age >= age, bench_users.c.status == "active")
                .order_by(bench_users.c.id)
                .limit(10)
            )
            (await connection.execute(statement)).all()

    async def kysera() -> None:
        for age in ages:
            await repo.find({"age": {"$gte": age}, "status": "active"}, order_by="id", limit=10)

    scenario = Scenario(runner, batch)
    scenario.add("asyncpg", asyncpg_fetch)
    scenario.add("core (built per call)", core_built_per_call)
    scenario.add("kysera find (where-dict)", kysera)
    scenario.turn()  # warm-up: statement caches, prepared statements
    scenario.reset()
    benchmark.pedantic(scenario.turn, rounds=25, iterations=1)
    scenario.report(benchmark, "find(where, order_by, limit=10) → 10 validated entities")


@pytest.mark.benchmark(group="repository: get by primary key, connection checked out per call")
def test_find_by_id_checking_out_a_connection(
    benchmark: Any, runner: asyncio.Runner, engine: AsyncEngine, pool: Any
) -> None:
    batch = 100
    keys = [(n * 7919) % ROWS + 1 for n in range(batch)]
    repo = create_repository(engine, bench_users, entity=User)
    prebuilt = sa.select(bench_users).where(bench_users.c.id == sa.bindparam("key"))

    async def asyncpg_pool() -> None:
        for key in keys:
            async with pool.acquire() as connection:
                await connection.fetchrow(SELECT_BY_ID, key)

    async def core_built_per_call() -> None:
        for key in keys:
            async with engine.connect() as connection:
                statement = sa.select(bench_users).where(bench_users.c.id == key)
                (await connection.execute(statement)).first()

    async def core_built_once() -> None:
        for key in keys:
            async with engine.connect() as connection:
                (await connection.execute(prebuilt, {"key": key})).first()

    async def kysera() -> None:
        for key in keys:
            await repo.find_by_id(key)

    scenario = Scenario(runner, batch)
    scenario.add("asyncpg pool", asyncpg_pool)
    scenario.add("core (built per call)", core_built_per_call)
    scenario.add("core (built once, rows only)", core_built_once)
    scenario.add("kysera find_by_id on the engine", kysera)
    scenario.turn()
    scenario.reset()
    benchmark.pedantic(scenario.turn, rounds=15, iterations=1)
    scenario.report(benchmark, "find_by_id → entity, a pooled connection per call", "asyncpg pool")


@pytest.mark.benchmark(group="repository: insert one row in its own transaction")
def test_create_in_its_own_transaction(
    benchmark: Any, runner: asyncio.Runner, engine: AsyncEngine, pool: Any
) -> None:
    batch = 50
    counter = iter(range(10**9))
    repo = create_repository(engine, bench_users, entity=User, create=UserCreate)
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def asyncpg_pool() -> None:
        for _ in range(batch):
            row = new_row(next(counter))
            async with pool.acquire() as connection:
                await connection.fetchrow(
                    INSERT_RETURNING, row["email"], row["name"], row["age"], row["status"]
                )

    async def core_begin() -> None:
        for _ in range(batch):
            async with engine.begin() as connection:
                statement = bench_users.insert().values(new_row(next(counter)))
                (await connection.execute(statement.returning(*bench_users.c))).one()

    async def advanced_alchemy() -> None:
        for _ in range(batch):
            async with sessions() as session:
                await UserRepository(session=session).add(
                    UserModel(**new_row(next(counter))), auto_commit=True
                )

    async def kysera() -> None:
        for _ in range(batch):
            await repo.create(new_row(next(counter)))

    scenario = Scenario(runner, batch)
    scenario.add("asyncpg", asyncpg_pool)
    scenario.add("core (engine.begin)", core_begin)
    scenario.add("advanced-alchemy", advanced_alchemy)
    scenario.add("kysera create", kysera)
    scenario.turn()
    scenario.reset()
    benchmark.pedantic(scenario.turn, rounds=9, iterations=1)
    scenario.report(benchmark, "create → validated input, entity back, own transaction")


@pytest.mark.benchmark(group="repository: bulk insert of 10,000 rows")
def test_create_many_ten_thousand_rows(
    benchmark: Any, runner: asyncio.Runner, engine: AsyncEngine, pool: Any
) -> None:
    """10,000 rows in one transaction. Ratios are to the floor of issue 23: one hand-written
    ``INSERT ... SELECT FROM unnest(arrays) RETURNING`` on raw asyncpg (records; also
    turned into validated entities). "plugins" = SoftDeletePlugin + TimestampsPlugin on a
    table with their columns, compared with its own floor and with a plugin-free repository
    on the same table shape whose caller passes the timestamps."""
    size = 10_000
    rows = [new_row(n) for n in range(size)]
    records = [(r["email"], r["name"], r["age"], r["status"]) for r in rows]
    repo = create_repository(engine, bench_users, entity=User, create=UserCreate)
    trusting = create_repository(
        engine, bench_users, entity=User, create=UserCreate, validate_results=False
    )
    plain = create_repository(engine, bench_users)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    returning_all = bench_users.insert().returning(*bench_users.columns)
    # create_many through soft delete + timestamps, against the same table shape without
    # plugins whose caller passes the timestamps itself (what the plugin saves it doing).
    now = datetime.now(UTC)
    stamped_rows = [row | {"created_at": now, "updated_at": now} for row in rows]
    plugged_orm = runner.run(create_orm(engine, plugins=[SoftDeletePlugin(), TimestampsPlugin()]))
    plugged: Repository[dict[str, Any]] = plugged_orm.repository(stamped_plugged)
    plugged_models: Repository[StampedUser] = plugged_orm.repository(
        stamped_plugged, entity=StampedUser, create=UserCreate
    )
    caller_stamps = create_repository(engine, stamped_plain)

    async def asyncpg_unnest() -> list[Any]:
        async with pool.acquire() as connection, connection.transaction():
            return list(
                await connection.fetch(
                    UNNEST_RETURNING,
                    [row["email"] for row in rows],
                    [row["name"] for row in rows],
                    [row["age"] for row in rows],
                    [row["status"] for row in rows],
                )
            )

    async def asyncpg_unnest_entities() -> None:
        USERS.validate_python([dict(record) for record in await asyncpg_unnest()])

    async def asyncpg_unnest_stamped() -> None:
        stamps = [datetime.now(UTC)] * size
        async with pool.acquire() as connection, connection.transaction():
            await connection.fetch(
                STAMPED_UNNEST_RETURNING,
                [row["email"] for row in rows],
                [row["name"] for row in rows],
                [row["age"] for row in rows],
                [row["status"] for row in rows],
                stamps,
                stamps,
            )

    async def asyncpg_executemany() -> None:
        async with pool.acquire() as connection, connection.transaction():
            await connection.executemany(INSERT, records)

    async def core_executemany() -> None:
        async with engine.begin() as connection:
            await connection.execute(bench_users.insert(), rows)

    async def core_executemany_returning() -> None:
        async with engine.begin() as connection:
            (await connection.execute(returning_all, rows)).all()

    async def advanced_alchemy() -> None:
        async with sessions() as session:
            await UserRepository(session=session).add_many(
                [UserModel(**row) for row in rows], auto_commit=True
            )

    async def kysera_models() -> None:
        await repo.create_many(rows)

    async def kysera_models_trusting() -> None:
        await trusting.create_many(rows)

    async def kysera_dicts() -> None:
        await plain.create_many(rows)

    async def kysera_dicts_caller_stamps() -> None:
        await caller_stamps.create_many(stamped_rows)

    async def kysera_dicts_plugged() -> None:
        await plugged.create_many(rows)

    async def kysera_models_plugged() -> None:
        await plugged_models.create_many(rows)

    async def kysera_models_count_only() -> None:
        await repo.create_many(rows, returning=False)

    async def kysera_dicts_count_only() -> None:
        await plain.create_many(rows, returning=False)

    async def remove_new_rows() -> None:
        async with pool.acquire() as connection:
            await connection.execute("DELETE FROM bench_repo_users WHERE status = 'new'")
            await connection.execute("DELETE FROM bench_repo_stamped_plain")
            await connection.execute("DELETE FROM bench_repo_stamped_plugged")

    scenario = Scenario(runner, 1)
    scenario.after_each = remove_new_rows
    scenario.add("asyncpg unnest RETURNING (floor)", asyncpg_unnest)
    scenario.add("asyncpg unnest → entities (floor)", asyncpg_unnest_entities)
    scenario.add("asyncpg unnest, stamped table", asyncpg_unnest_stamped)
    scenario.add("asyncpg executemany", asyncpg_executemany)
    scenario.add("core executemany (no RETURNING)", core_executemany)
    scenario.add("core executemany RETURNING", core_executemany_returning)
    scenario.add("advanced-alchemy add_many", advanced_alchemy)
    scenario.add("kysera create_many (models)", kysera_models)
    scenario.add("kysera models, validate_results=False", kysera_models_trusting)
    scenario.add("kysera create_many (dicts)", kysera_dicts)
    scenario.add("kysera dicts, caller stamps", kysera_dicts_caller_stamps)
    scenario.add("kysera dicts + plugins", kysera_dicts_plugged)
    scenario.add("kysera models + plugins", kysera_models_plugged)
    scenario.add("kysera models, returning=False", kysera_models_count_only)
    scenario.add("kysera dicts, returning=False", kysera_dicts_count_only)
    scenario.turn()
    scenario.reset()
    benchmark.pedantic(scenario.turn, rounds=7, iterations=1)
    ratios = scenario.report(
        benchmark,
        "create_many of 10,000 rows, one transaction (per call)",
        baseline="asyncpg unnest RETURNING (floor)",
    )
    to_entities = ratios["asyncpg unnest → entities (floor)"]
    stamped_floor = ratios["asyncpg unnest, stamped table"]
    with_plugins = ratios["kysera dicts + plugins"]
    derived = {
        "models / floor → entities": ratios["kysera create_many (models)"] / to_entities,
        "dicts + plugins / stamped floor": with_plugins / stamped_floor,
        "dicts + plugins / caller stamps": with_plugins / ratios["kysera dicts, caller stamps"],
        "dicts + plugins / dicts": with_plugins / ratios["kysera create_many (dicts)"],
        "models + plugins / models": (
            ratios["kysera models + plugins"] / ratios["kysera create_many (models)"]
        ),
    }
    for name, ratio in derived.items():
        benchmark.extra_info[name] = round(ratio, 3)
        print(f"  {name}: {ratio:.2f}×")


@pytest.mark.benchmark(group="repository: 50 rows to entities")
def test_find_fifty_rows_validated_or_trusted(
    benchmark: Any, runner: asyncio.Runner, held: Held
) -> None:
    batch = 40
    connection, raw = held.connection, held.raw
    validating = create_repository(connection, bench_users, entity=User)
    trusting = create_repository(connection, bench_users, entity=User, validate_results=False)
    sql = "SELECT id, email, name, age, status FROM bench_repo_users WHERE id <= $1 ORDER BY id"

    async def asyncpg_fetch() -> None:
        for _ in range(batch):
            await raw.fetch(sql, 50)

    async def kysera_validating() -> None:
        for _ in range(batch):
            await validating.find({"id": {"$lte": 50}}, order_by="id")

    async def kysera_trusting() -> None:
        for _ in range(batch):
            await trusting.find({"id": {"$lte": 50}}, order_by="id")

    scenario = Scenario(runner, batch)
    scenario.add("asyncpg", asyncpg_fetch)
    scenario.add("kysera validate_results=True", kysera_validating)
    scenario.add("kysera validate_results=False", kysera_trusting)
    scenario.turn()
    scenario.reset()
    benchmark.pedantic(scenario.turn, rounds=15, iterations=1)
    scenario.report(benchmark, "find 50 rows → entities")


def test_ways_to_build_an_entity_from_a_row(benchmark: Any) -> None:
    """Pure CPU: the ways a row dict can become an entity (the choice behind
    validate_results)."""
    from kysera.repository.validation import EntityBuilder

    row = {"id": 1, "email": "a@example.com", "name": "A", "age": 3, "status": "active"}
    trusted = EntityBuilder(bench_users, User, validate=False).build
    ways: dict[str, Callable[[], Any]] = {
        "model_validate(dict)": lambda: User.model_validate(row),
        "model_construct(**dict)": lambda: User.model_construct(**row),
        "kysera trusted constructor": lambda: trusted(row),
    }
    timings = {
        name: min(timeit.repeat(way, number=20_000, repeat=5)) / 20_000
        for name, way in ways.items()
    }
    benchmark.pedantic(ways["kysera trusted constructor"], rounds=1000, iterations=10)
    benchmark.extra_info.update({f"{name} µs": round(t * 1e6, 3) for name, t in timings.items()})
    print("\nrow dict → entity (best of 5 × 20,000)")
    for name, seconds in timings.items():
        print(f"  {name:<28} {seconds * 1e6:7.3f} µs")
