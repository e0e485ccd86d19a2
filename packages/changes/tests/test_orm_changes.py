"""`orm.changes(...)`: the change feed of an ORM, from the plugin that keeps it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from changes_support import CHANGES, accounts, memberships
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.changes import Change, ChangeFeedPlugin
from kysera.core import InvalidQueryError
from kysera.repository import PluginError, create_orm, hookimpl


async def take(stream: AsyncIterator[Any], count: int) -> list[Any]:
    taken = [await anext(stream) for _ in range(count)]
    await stream.aclose()  # type: ignore[attr-defined]
    return taken


async def test_orm_changes_yields_every_change_in_commit_order_and_resumes(
    engine: AsyncEngine,
) -> None:
    orm = await create_orm(engine, plugins=[ChangeFeedPlugin(table=CHANGES)])
    repo: Any = orm.repository(accounts)
    first = await repo.create({"email": "a@x", "name": "A"})
    await repo.update(first["id"], {"name": "B"})
    await repo.delete(first["id"])

    seen: list[Change] = await take(orm.changes(poll_interval=0.01), 3)
    assert [(c.id, c.table, c.operation) for c in seen] == [
        (1, "cf_accounts", "INSERT"),
        (2, "cf_accounts", "UPDATE"),
        (3, "cf_accounts", "DELETE"),
    ]

    # A consumer that stored cursor 2 picks up at 3, then gets what is written next.
    resumed = orm.changes(after=2, poll_interval=0.01)
    assert (await anext(resumed)).id == 3
    await repo.create({"email": "c@x", "name": "C"})
    assert (await anext(resumed)).id == 4
    await resumed.aclose()  # type: ignore[attr-defined]


async def test_orm_changes_of_some_tables(engine: AsyncEngine) -> None:
    orm = await create_orm(engine, plugins=[ChangeFeedPlugin(table=CHANGES)])
    await orm.repository(accounts).create({"email": "a@x", "name": "A"})
    await orm.repository(memberships).create({"org_id": 1, "user_id": 2, "role": "admin"})
    await orm.repository(accounts).create({"email": "b@x", "name": "B"})

    only = await take(orm.changes(tables="cf_memberships", poll_interval=0.01), 1)
    assert [(c.id, c.key) for c in only] == [(2, (1, 2))]
    listed = await take(orm.changes(tables=["cf_accounts"], poll_interval=0.01), 2)
    assert [c.id for c in listed] == [1, 3]


async def test_orm_changes_inside_a_transaction_reads_what_is_committed(
    engine: AsyncEngine,
) -> None:
    orm = await create_orm(engine, plugins=[ChangeFeedPlugin(table=CHANGES)])
    await orm.repository(accounts).create({"email": "a@x", "name": "A"})
    async with orm.transaction():
        await orm.repository(accounts).create({"email": "b@x", "name": "B"})
        # The stream reads through the engine: the uncommitted change is not there yet.
        assert [c.id for c in await take(orm.changes(poll_interval=0.01), 1)] == [1]


async def test_orm_changes_refuses_bad_input_at_the_call(engine: AsyncEngine) -> None:
    orm = await create_orm(engine, plugins=[ChangeFeedPlugin(table=CHANGES)])
    for bad in ({"after": -1}, {"after": "3"}, {"poll_interval": -1}, {"batch_size": 0}):
        with pytest.raises(InvalidQueryError):
            orm.changes(**bad)
    async with engine.connect() as connection:
        count = await connection.scalar(sa.select(sa.func.count()).select_from(accounts))
    assert count == 0


async def test_orm_changes_without_a_change_feed_plugin_says_what_to_add(
    engine: AsyncEngine,
) -> None:
    orm = await create_orm(engine)
    with pytest.raises(PluginError, match="ChangeFeedPlugin"):
        orm.changes()


async def test_a_plugin_returning_something_else_than_a_stream_is_named(
    engine: AsyncEngine,
) -> None:
    class Broken:
        name = "broken"

        @hookimpl
        def kysera_follow_changes(self) -> object:
            return [1, 2, 3]

    orm = await create_orm(engine, plugins=[Broken()])
    with pytest.raises(PluginError, match="'broken': kysera_follow_changes returned"):
        orm.changes()


async def test_a_stream_ends_when_cancelled_right_after_a_change(engine: AsyncEngine) -> None:
    """Cancelling a consumer just as a wake-up arrives ends it at once (Python 3.11's
    ``asyncio.wait_for`` dropped such a cancellation, and the stream slept on)."""
    orm = await create_orm(engine, plugins=[ChangeFeedPlugin(table=CHANGES)])
    repo: Any = orm.repository(accounts)
    for round_ in range(15):
        received: asyncio.Queue[Change] = asyncio.Queue()
        await repo.create({"email": f"c{round_}@example.com", "name": "C"})

        async def consume(after: int, into: asyncio.Queue[Change]) -> None:
            async for change in orm.changes(after=after, poll_interval=300):
                into.put_nowait(change)

        consumer = asyncio.create_task(consume(round_, received))
        assert (await asyncio.wait_for(received.get(), timeout=10)).id == round_ + 1
        consumer.cancel()
        done, _ = await asyncio.wait([consumer], timeout=5)
        assert done, f"round {round_}: the cancelled stream did not end"
