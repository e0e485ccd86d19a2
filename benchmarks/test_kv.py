"""What `KV.get` / `KV.set` cost against the hand-written Core statements they stand for.

Issue 22's bound: at most 1.3x. Both sides do the same work on the same engine (PostgreSQL):

- get: a pooled connection per call, ``SELECT key, value, versionstamp ... WHERE key = :k AND
  (expires_at IS NULL OR expires_at > :now)``, the JSON value decoded;
- set: a pooled connection and a transaction per call, ``INSERT ... ON CONFLICT (key) DO
  UPDATE``, the JSON value encoded.

Each side has its own identical table (SQLAlchemy's compiled cache favours the statement
object it compiled first). They take turns batch by batch; the median of the per-round
client-CPU ratios is checked.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kysera.kv import KV
from kysera.kv.keys import encode_key

BATCH = 50  # awaits per timed batch
ROUNDS = 60  # batches per implementation, interleaved
TARGET = 1.3
KEYS = 100


def value(index: int) -> dict[str, Any]:
    return {"user": index, "name": f"user-{index}", "roles": ["reader"], "active": True}


async def core_side(engine: AsyncEngine) -> tuple[Any, Any]:
    """The hand-written Core get and set on a table shaped like the store's."""
    store = await KV.open(engine, table="bench_kv_core")
    table = store._table  # the same columns and types as the store's own table
    get_statement = sa.select(table.c.key, table.c.value, table.c.versionstamp).where(
        table.c.key == sa.bindparam("k"),
        sa.or_(table.c.expires_at.is_(None), table.c.expires_at > sa.bindparam("now")),
    )
    upsert = postgresql.insert(table)
    set_statement = upsert.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "value": upsert.excluded.value,
            "versionstamp": upsert.excluded.versionstamp,
            "expires_at": upsert.excluded.expires_at,
        },
    )

    async def get(index: int) -> Any:
        async with engine.connect() as connection:
            parameters = {"k": encode_key(("users", index % KEYS)), "now": time.time_ns() // 10**6}
            row = (await connection.execute(get_statement, parameters)).first()
        assert row is not None
        return json.loads(row.value)

    async def set_(index: int) -> None:
        async with engine.begin() as connection:
            await connection.execute(
                set_statement,
                {
                    "key": encode_key(("users", index % KEYS)),
                    "value": json.dumps(value(index)),
                    "versionstamp": time.time_ns() // 1000,
                    "expires_at": None,
                },
            )

    return get, set_


@pytest.fixture(scope="module")
def sides(runner: asyncio.Runner, postgres_url: str) -> Iterator[dict[str, tuple[Any, Any]]]:
    engine = create_async_engine(postgres_url)

    async def start() -> dict[str, tuple[Any, Any]]:
        async with engine.begin() as connection:
            for name in ("bench_kv_core", "bench_kv_store"):
                await connection.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
        core_get, core_set = await core_side(engine)
        store = await KV.open(engine, table="bench_kv_store")
        for index in range(KEYS):
            await store.set(("users", index), value(index))
            await core_set(index)

        async def kv_get(index: int) -> Any:
            entry = await store.get(("users", index % KEYS))
            assert entry is not None
            return entry.value

        async def kv_set(index: int) -> None:
            await store.set(("users", index % KEYS), value(index))

        return {"get": (core_get, kv_get), "set": (core_set, kv_set)}

    async def stop() -> None:
        async with engine.begin() as connection:
            for name in ("bench_kv_core", "bench_kv_store"):
                await connection.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
        await engine.dispose()

    pairs = runner.run(start())
    try:
        yield pairs
    finally:
        runner.run(stop())


@pytest.mark.parametrize("operation", ["get", "set"])
def test_kv_against_hand_written_core(
    operation: str,
    benchmark: Any,
    compare_interleaved: Callable[..., Any],
    sides: dict[str, tuple[Any, Any]],
) -> None:
    by_hand, through_kv = sides[operation]
    ratio = benchmark.pedantic(
        compare_interleaved,
        args=(by_hand, through_kv),
        kwargs={"rounds": ROUNDS, "batch": BATCH},
        rounds=1,
        iterations=1,
    )
    benchmark.extra_info.update(ratio.info())
    print(
        f"\nKV.{operation}: Core by hand {ratio.base_us:.1f} us, KV {ratio.other_us:.1f} us; "
        f"paired ratio: wall {ratio.wall:.3f}, client CPU {ratio.cpu:.3f} (target <= {TARGET})"
    )
    assert ratio.cpu <= TARGET
