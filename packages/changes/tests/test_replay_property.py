"""Property: replaying the feed reproduces the table's keys, operation by operation."""

from __future__ import annotations

import contextlib
from typing import Any

import sqlalchemy as sa
from changes_support import CHANGES, memberships
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.changes import ChangeFeedPlugin, read_changes
from kysera.core import UniqueConstraintError
from kysera.repository import create_orm

keys = st.tuples(st.integers(1, 3), st.integers(1, 4))
operations = st.lists(
    st.one_of(
        st.tuples(st.just("create_many"), st.lists(keys, max_size=4, unique=True)),
        st.tuples(st.just("upsert_many"), st.lists(keys, max_size=4, unique=True)),
        st.tuples(st.just("delete_many"), st.lists(keys, max_size=4)),
        st.tuples(st.just("update_many"), st.integers(1, 3)),
        st.tuples(st.just("delete"), keys),
    ),
    max_size=12,
)


async def stored_keys(engine: AsyncEngine) -> set[tuple[int, int]]:
    async with engine.connect() as connection:
        rows = await connection.execute(sa.select(memberships.c.org_id, memberships.c.user_id))
        return {(int(a), int(b)) for a, b in rows}


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=operations)
async def test_replaying_the_feed_gives_the_stored_keys(
    engine: AsyncEngine, operations: list[tuple[str, Any]]
) -> None:
    repo: Any = (await create_orm(engine, plugins=[ChangeFeedPlugin(table=CHANGES)])).repository(
        memberships
    )
    state = await stored_keys(engine)
    before = await read_changes(engine, table=CHANGES, limit=1_000_000)
    cursor = before[-1].id if before else 0

    for name, argument in operations:
        if name == "create_many":
            rows = [{"org_id": o, "user_id": u, "role": "c"} for o, u in argument]
            with contextlib.suppress(UniqueConstraintError):  # rolled back: records nothing
                await repo.create_many(rows)
        elif name == "upsert_many":
            await repo.upsert_many([{"org_id": o, "user_id": u, "role": "u"} for o, u in argument])
        elif name == "delete_many":
            await repo.delete_many(argument)
        elif name == "update_many":
            await repo.update_many({"org_id": argument}, {"role": "x"})
        else:
            await repo.delete(argument)

    changes = await read_changes(engine, after=cursor, table=CHANGES, limit=1_000_000)
    assert [c.id for c in changes] == list(range(cursor + 1, cursor + 1 + len(changes)))
    for change in changes:
        key = (int(change.key[0]), int(change.key[1]))
        if change.operation == "INSERT":
            assert key not in state
            state.add(key)
        elif change.operation == "UPDATE":
            assert key in state
        else:
            assert change.operation == "DELETE"
            state.remove(key)
    assert state == await stored_keys(engine)
