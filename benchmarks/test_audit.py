"""What auditing costs a write (issue 9): audited vs. unaudited, on PostgreSQL.

Targets: an audited `create` costs at most 1.4x an unaudited one; an audited `bulk_update`
of 1,000 rows at most 2x. Both repositories run on the engine (the common case: each write
commits its own transaction), each on its own identical table, taking turns batch by batch
and alternating which goes first; the figure is the median of the per-round wall ratios.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kysera.audit import AuditPlugin, audit_context, audit_log_table
from kysera.repository import Repository, create_orm

metadata = sa.MetaData()
AUDIT_TABLE = "bench_audit_logs"
log = audit_log_table(metadata, AUDIT_TABLE)


def account_table(name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(100), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("balance", sa.Numeric(12, 2), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
    )


plain_accounts = account_table("bench_audit_plain")
audited_accounts = account_table("bench_audit_audited")


class Setup:
    engine: AsyncEngine
    plain: Repository[Any]
    audited: Repository[Any]


@pytest.fixture(scope="module")
def setup(runner: asyncio.Runner, postgres_url: str) -> Iterator[Setup]:
    state = Setup()

    async def start() -> None:
        state.engine = create_async_engine(postgres_url)
        async with state.engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
            await connection.run_sync(metadata.create_all)
        state.plain = (await create_orm(state.engine)).repository(plain_accounts)
        orm = await create_orm(state.engine, plugins=[AuditPlugin(table=AUDIT_TABLE)])
        state.audited = orm.repository(audited_accounts)

    async def stop() -> None:
        async with state.engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
        await state.engine.dispose()

    runner.run(start())
    yield state
    runner.run(stop())


def paired_median(
    runner: asyncio.Runner,
    plain: Callable[[], Awaitable[None]],
    audited: Callable[[], Awaitable[None]],
    rounds: int,
) -> tuple[float, float, float]:
    """Median seconds of each batch, and the median of the per-round ratios."""

    async def timed(work: Callable[[], Awaitable[None]]) -> float:
        with audit_context(user_id="bench", source="benchmark"):
            start = time.perf_counter()
            await work()
            return time.perf_counter() - start

    for work in (plain, audited):  # warm up: prepared statements, caches, pool
        runner.run(timed(work))
    samples: dict[str, list[float]] = {"plain": [], "audited": []}
    turns = [("plain", plain), ("audited", audited)]
    for _ in range(rounds):
        for label, work in turns:
            samples[label].append(runner.run(timed(work)))
        turns.reverse()
    ratio = statistics.median(
        a / p for p, a in zip(samples["plain"], samples["audited"], strict=True)
    )
    return statistics.median(samples["plain"]), statistics.median(samples["audited"]), ratio


CREATE_BATCH = 100


def test_audited_create(benchmark: Any, runner: asyncio.Runner, setup: Setup) -> None:
    counter = iter(range(10**9))

    def creates(repo: Repository[Any]) -> Callable[[], Awaitable[None]]:
        async def work() -> None:
            for _ in range(CREATE_BATCH):
                n = next(counter)
                await repo.create(
                    {
                        "email": f"u{n}@example.com",
                        "name": f"user {n}",
                        "balance": n,
                        "active": True,
                    }
                )

        return work

    result: list[tuple[float, float, float]] = []
    benchmark.pedantic(
        lambda: result.append(
            paired_median(runner, creates(setup.plain), creates(setup.audited), rounds=30)
        ),
        rounds=1,
        iterations=1,
    )
    plain, audited, ratio = result[0]
    benchmark.extra_info.update(
        plain_us=round(plain / CREATE_BATCH * 1e6, 1),
        audited_us=round(audited / CREATE_BATCH * 1e6, 1),
        ratio=round(ratio, 3),
    )
    print(
        f"\ncreate: plain {plain / CREATE_BATCH * 1e6:.0f} us, audited "
        f"{audited / CREATE_BATCH * 1e6:.0f} us, paired ratio {ratio:.2f} (target <= 1.4)"
    )
    assert ratio <= 1.4


BULK_ROWS = 1000


def test_audited_bulk_update(benchmark: Any, runner: asyncio.Runner, setup: Setup) -> None:
    async def seed(repo: Repository[Any]) -> list[int]:
        rows = await repo.create_many(
            [
                {"email": f"b{n}@example.com", "name": f"bulk {n}", "balance": n, "active": True}
                for n in range(BULK_ROWS)
            ]
        )
        return [row["id"] for row in rows]

    plain_ids = runner.run(seed(setup.plain))
    audited_ids = runner.run(seed(setup.audited))
    version = iter(range(10**9))

    def updates(repo: Repository[Any], ids: list[int]) -> Callable[[], Awaitable[None]]:
        async def work() -> None:
            v = next(version)
            await repo.bulk_update([(id, {"name": f"v{v} {id}", "balance": v}) for id in ids])

        return work

    result: list[tuple[float, float, float]] = []
    benchmark.pedantic(
        lambda: result.append(
            paired_median(
                runner,
                updates(setup.plain, plain_ids),
                updates(setup.audited, audited_ids),
                rounds=10,
            )
        ),
        rounds=1,
        iterations=1,
    )
    plain, audited, ratio = result[0]
    benchmark.extra_info.update(
        plain_ms=round(plain * 1e3, 2), audited_ms=round(audited * 1e3, 2), ratio=round(ratio, 3)
    )
    print(
        f"\nbulk_update x{BULK_ROWS}: plain {plain * 1e3:.1f} ms, audited {audited * 1e3:.1f} "
        f"ms, paired ratio {ratio:.2f} (target <= 2)"
    )
    assert ratio <= 2.0
