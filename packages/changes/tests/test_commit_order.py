"""Commit order under concurrency: a consumer reading ``id > cursor`` never skips a change.

Ids are taken under the counter row's lock, held until COMMIT: a transaction that has taken
ids makes every other recording transaction wait until it commits or rolls back.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from changes_support import CHANGES, accounts
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.changes import Change, ChangeFeedPlugin, follow_changes, read_changes
from kysera.repository import create_orm

TASKS = 10
WRITES_PER_TASK = 1000


async def feed(engine: AsyncEngine, after: int = 0) -> list[Change]:
    return await read_changes(engine, after=after, table=CHANGES, limit=100_000)


async def test_concurrent_writes_arrive_complete_and_in_commit_order(
    engine: AsyncEngine,
) -> None:
    orm = await create_orm(engine, plugins=[ChangeFeedPlugin(table=CHANGES)])
    repo: Any = orm.repository(accounts)
    total = TASKS * WRITES_PER_TASK
    seen: list[Change] = []

    async def consume() -> None:
        async for change in follow_changes(engine, after=0, table=CHANGES, poll_interval=0.005):
            seen.append(change)
            if len(seen) == total:
                return

    async def write(task: int) -> list[int]:
        ids = []
        # Single-row creates and 10-row create_many calls, interleaved with the other tasks.
        for batch in range(WRITES_PER_TASK // 20):
            for i in range(10):
                row = await repo.create({"email": f"{task}-{batch}-{i}@x", "name": "s"})
                ids.append(row["id"])
            rows = [{"email": f"{task}-{batch}-m{i}@x", "name": "m"} for i in range(10)]
            ids += [row["id"] for row in await repo.create_many(rows)]
        return ids

    consumer = asyncio.create_task(consume())
    written = await asyncio.gather(*(write(task) for task in range(TASKS)))
    await asyncio.wait_for(consumer, timeout=120)

    # Every change arrived once, in id order, with no gap: the consumer, which read while
    # the writers committed, never moved past an id that was still to commit.
    assert [change.id for change in seen] == list(range(1, total + 1))
    assert sorted(change.key[0] for change in seen) == sorted(i for ids in written for i in ids)


async def test_a_later_commit_never_overtakes_an_earlier_id(engine: AsyncEngine) -> None:
    """T1 records a change and stays open; T2 writes meanwhile. T2 cannot take an id (nor
    commit its change) before T1 ends, so a consumer never sees T2's id while T1's is
    pending."""
    orm = await create_orm(engine, plugins=[ChangeFeedPlugin(table=CHANGES)])
    repo: Any = orm.repository(accounts)
    release = asyncio.Event()
    first_recorded = asyncio.Event()

    async def slow_transaction() -> int:
        async with orm.transaction():
            row = await repo.create({"email": "slow@x", "name": "T1"})
            first_recorded.set()
            await release.wait()
        return int(row["id"])

    slow = asyncio.create_task(slow_transaction())
    await first_recorded.wait()
    fast = asyncio.create_task(repo.create({"email": "fast@x", "name": "T2"}))
    # Give T2 every chance to run ahead; the consumer must see neither change meanwhile.
    for _ in range(20):
        await asyncio.sleep(0.01)
        assert await feed(engine) == []
    assert not fast.done()
    release.set()
    slow_id = await slow
    fast_row = await fast
    changes = await feed(engine)
    assert [(c.id, c.key[0]) for c in changes] == [(1, slow_id), (2, fast_row["id"])]


async def test_a_rolled_back_id_is_given_to_the_next_writer(engine: AsyncEngine) -> None:
    orm = await create_orm(engine, plugins=[ChangeFeedPlugin(table=CHANGES)])
    repo: Any = orm.repository(accounts)
    release = asyncio.Event()
    first_recorded = asyncio.Event()

    async def doomed() -> None:
        async with orm.transaction():
            await repo.create({"email": "doomed@x", "name": "T1"})
            first_recorded.set()
            await release.wait()
            raise LookupError("roll back")

    failing = asyncio.create_task(doomed())
    await first_recorded.wait()
    other = asyncio.create_task(repo.create({"email": "other@x", "name": "T2"}))
    await asyncio.sleep(0.05)
    release.set()
    with pytest.raises(LookupError):
        await failing
    row = await other
    assert [(c.id, c.key[0]) for c in await feed(engine)] == [(1, row["id"])]


async def test_a_consumer_resumes_from_its_cursor(engine: AsyncEngine) -> None:
    orm = await create_orm(engine, plugins=[ChangeFeedPlugin(table=CHANGES)])
    repo: Any = orm.repository(accounts)
    await repo.create_many([{"email": f"{i}@x", "name": "a"} for i in range(10)])

    cursor = 0
    async for change in follow_changes(engine, table=CHANGES, poll_interval=0.01):
        cursor = change.id  # handled, then stored
        if cursor == 4:
            break  # the consumer stops (a crash after storing its cursor)

    await repo.create_many([{"email": f"b{i}@x", "name": "b"} for i in range(5)])
    resumed = []
    async for change in follow_changes(engine, after=cursor, table=CHANGES, batch_size=3):
        resumed.append(change.id)
        if len(resumed) == 11:
            break
    assert resumed == list(range(5, 16))
