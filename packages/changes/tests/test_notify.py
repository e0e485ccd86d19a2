"""PostgreSQL: LISTEN/NOTIFY wakes `follow_changes`; a killed listener loses nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from changes_support import CHANGES, accounts
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.changes import Change, ChangeFeedPlugin, follow_changes
from kysera.repository import create_orm

# Long enough that a change arriving within the test's timeout was woken by NOTIFY, not polled.
NO_POLLING = 300.0


def needs_postgresql(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; the other databases poll (tested elsewhere)")


async def listener_pids(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as connection:
        result = await connection.execute(
            sa.text(
                "SELECT pid FROM pg_stat_activity WHERE query = :listen AND pid <> pg_backend_pid()"
            ),
            {"listen": f'LISTEN "{CHANGES}"'},
        )
        return [int(pid) for pid in result.scalars()]


async def test_notify_wakes_the_consumer_without_polling(engine: AsyncEngine) -> None:
    needs_postgresql(engine)
    orm = await create_orm(engine, plugins=[ChangeFeedPlugin(table=CHANGES)])
    repo: Any = orm.repository(accounts)
    received: asyncio.Queue[Change] = asyncio.Queue()

    async def consume() -> None:
        async for change in follow_changes(engine, table=CHANGES, poll_interval=NO_POLLING):
            await received.put(change)

    consumer = asyncio.create_task(consume())
    try:
        for _ in range(100):  # until the listener is in place
            if await listener_pids(engine):
                break
            await asyncio.sleep(0.02)
        row = await repo.create({"email": "n@x", "name": "N"})
        change = await asyncio.wait_for(received.get(), timeout=10)
        assert (change.id, change.key) == (1, (row["id"],))
    finally:
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer


async def test_killing_the_listener_backend_loses_nothing(engine: AsyncEngine) -> None:
    needs_postgresql(engine)
    orm = await create_orm(engine, plugins=[ChangeFeedPlugin(table=CHANGES)])
    repo: Any = orm.repository(accounts)
    received: list[int] = []
    stream = follow_changes(engine, table=CHANGES, poll_interval=NO_POLLING)

    async def take(count: int) -> None:
        while len(received) < count:
            received.append((await anext(stream)).id)

    try:
        await repo.create({"email": "a@x", "name": "A"})
        await asyncio.wait_for(take(1), timeout=10)
        pids: list[int] = []
        for _ in range(100):
            pids = await listener_pids(engine)
            if pids:
                break
            await asyncio.sleep(0.02)
        assert len(pids) == 1
        async with engine.connect() as connection:
            await connection.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pids[0]})
        # Written while the listener is dead or reconnecting: delivered all the same, woken
        # by the termination and the new connection, not by polling.
        await repo.create_many([{"email": f"{i}@x", "name": "B"} for i in range(5)])
        await asyncio.wait_for(take(6), timeout=20)
        await repo.create({"email": "c@x", "name": "C"})
        await asyncio.wait_for(take(7), timeout=20)
        assert received == list(range(1, 8))
        new_pids = await listener_pids(engine)
        assert len(new_pids) == 1
        assert new_pids != pids
    finally:
        await stream.aclose()
    assert await listener_pids(engine) == []
