"""create_many returning rows: input order, one statement per set of columns, all or nothing.

On PostgreSQL the rows go in as one ``INSERT ... SELECT FROM unnest(arrays) ... RETURNING``
whatever their number (when the columns' types travel in arrays and the rows can be matched
back to their input); elsewhere SQLAlchemy batches a multi-row VALUES. Either way a caller
gets every row back, as stored, in the order given.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
import sqlalchemy as sa
from repository_support import (
    Kind,
    Membership,
    User,
    UserCreate,
    counters,
    events,
    memberships,
    users,
    writes,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import UniqueConstraintError, ValidationError
from kysera.core.capture import capture_queries
from kysera.core.testing import snapshot_table
from kysera.repository import QueryContext, create_orm, create_repository, hookimpl


def people(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"email": f"p{n}@example.com", "name": f"P{n}", "age": n % 7 or None}
        for n in range(start, start + count)
    ]


def inserts(log: Any) -> list[str]:
    return [sql for sql in writes(log) if sql.startswith("INSERT")]


@pytest.mark.parametrize("count", [2, 10, 1000])
async def test_rows_come_back_in_input_order_with_server_defaults(
    engine: AsyncEngine, count: int
) -> None:
    repo = create_repository(engine, users, entity=User, create=UserCreate)
    given = people(count)

    with capture_queries(engine) as log:
        created = await repo.create_many(given)

    assert [user.email for user in created] == [row["email"] for row in given]
    assert [user.age for user in created] == [row["age"] for row in given]
    assert {user.status for user in created} == {"active"}  # the server default
    ids = [user.id for user in created]
    assert len(set(ids)) == count
    stored = {row["id"]: row for row in await snapshot_table(engine, users)}
    assert [stored[user.id]["email"] for user in created] == [row["email"] for row in given]
    if engine.dialect.name == "postgresql":
        # One statement whatever the row count: the rows travel as column arrays.
        assert len(inserts(log)) == 1
        assert "unnest" in inserts(log)[0]


async def test_client_given_keys_are_matched_back_in_input_order(engine: AsyncEngine) -> None:
    repo = create_repository(engine, memberships, entity=Membership)
    given = [
        {"org_id": org, "user_id": user, "role": "member"} for org in (3, 1, 2) for user in (9, 4)
    ]
    random.Random(7).shuffle(given)

    created = await repo.create_many(given)

    assert [(m.org_id, m.user_id) for m in created] == [
        (row["org_id"], row["user_id"]) for row in given
    ]


async def test_rows_setting_different_columns_go_in_one_statement_per_shape(
    engine: AsyncEngine,
) -> None:
    repo = create_repository(engine, counters)
    given = [
        {"name": "a", "value": 1},
        {"name": "b", "value": 2, "note": "second"},
        {"name": "c", "value": 3},
        {"name": "d", "value": 4, "note": None},
    ]

    with capture_queries(engine) as log:
        created = await repo.create_many(given)

    assert [row["name"] for row in created] == ["a", "b", "c", "d"]
    assert [row["note"] for row in created] == [None, "second", None, None]
    assert len(inserts(log)) == 2


async def test_types_that_do_not_travel_in_arrays_take_the_batched_path(
    engine: AsyncEngine,
) -> None:
    # JSON and enum columns: SQLAlchemy's multi-row VALUES on every database.
    repo = create_repository(engine, events)
    moment = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)
    given = [
        {"kind": Kind.LOGIN, "payload": {"n": n}, "happened_at": moment, "email": f"e{n}@x.org"}
        for n in range(5)
    ]

    with capture_queries(engine) as log:
        created = await repo.create_many(given)

    assert [row["payload"] for row in created] == [{"n": n} for n in range(5)]
    assert {row["kind"] for row in created} == {Kind.LOGIN}
    assert all("unnest" not in sql for sql in inserts(log))


async def test_a_duplicate_anywhere_writes_nothing(engine: AsyncEngine) -> None:
    repo = create_repository(engine, users, entity=User, create=UserCreate)
    given = people(50)
    given[37]["email"] = given[3]["email"]

    with pytest.raises(UniqueConstraintError):
        await repo.create_many(given)
    assert await snapshot_table(engine, users) == []


async def test_one_invalid_row_sends_nothing(engine: AsyncEngine) -> None:
    repo = create_repository(engine, users, entity=User, create=UserCreate)
    given = people(20)
    given[11]["email"] = "not an email"

    with capture_queries(engine) as log, pytest.raises(ValidationError) as raised:
        await repo.create_many(given)

    assert raised.value.errors[0]["loc"][0] == 11
    assert inserts(log) == []


async def test_inside_a_callers_transaction_nothing_is_committed(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        repo = create_repository(connection, users, entity=User, create=UserCreate)
        created = await repo.create_many(people(30))
        assert await repo.count() == 30
        assert await repo.find_by_id(created[-1].id) == created[-1]
        await connection.rollback()
    assert await snapshot_table(engine, users) == []


async def test_a_plugin_changed_insert_keeps_its_change(engine: AsyncEngine) -> None:
    """A plugin rewriting the INSERT is honoured: the array path never replaces its statement."""

    class MarkInserts:
        name = "mark_inserts"

        @hookimpl
        def kysera_intercept_query(self, context: QueryContext) -> Any:
            if context.operation == "insert" and isinstance(context.statement, sa.Insert):
                return context.statement.prefix_with("/* marked */")
            return None

    orm = await create_orm(engine, plugins=[MarkInserts()])
    repo = orm.repository(users, entity=User, create=UserCreate)

    with capture_queries(engine) as log:
        created = await repo.create_many(people(10))

    assert [user.email for user in created] == [row["email"] for row in people(10)]
    assert inserts(log) != []
    assert all("/* marked */" in sql for sql in inserts(log))


async def test_python_side_defaults_are_computed_per_row(engine: AsyncEngine) -> None:
    tokens = iter(range(1000))
    table = sa.Table(
        "rp_bulk_defaults",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("label", sa.String(20), nullable=False),
        sa.Column("token", sa.Integer, nullable=False, default=lambda: next(tokens)),
    )
    async with engine.begin() as connection:
        await connection.run_sync(table.metadata.drop_all)  # left by an interrupted run
        await connection.run_sync(table.metadata.create_all)
    try:
        repo = create_repository(engine, table)
        created = await repo.create_many([{"label": f"l{n}"} for n in range(5)])
    finally:
        async with engine.begin() as connection:
            await connection.run_sync(table.metadata.drop_all)

    assert sorted(row["token"] for row in created) == [0, 1, 2, 3, 4]
    assert [row["label"] for row in created] == [f"l{n}" for n in range(5)]
