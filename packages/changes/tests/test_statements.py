"""How many statements recording a change costs, and that the short forms record the same.

On PostgreSQL a ``create`` on a table with an integer or UUID key is one statement with its
change row (and its wake-up), and every other write adds one statement for its change rows
however many there are. Where a plugin outside the change feed could still change the row,
the create takes the general path, recording the row as that plugin leaves it.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from changes_support import CHANGES, accounts, memberships, tokens
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.changes import ChangeFeedPlugin, read_changes
from kysera.core import UniqueConstraintError
from kysera.core.capture import capture_queries
from kysera.repository import Repository, create_orm


async def recorded(engine: AsyncEngine, table: sa.Table, *plugins: Any) -> Any:
    orm = await create_orm(engine, plugins=[ChangeFeedPlugin(table=CHANGES), *plugins])
    return orm.repository(table)


async def stored_keys(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        result = await connection.execute(sa.text(f"SELECT entity_key FROM {CHANGES} ORDER BY id"))
        return list(result.scalars())


async def test_a_create_and_its_change_row_are_one_statement_on_postgresql(
    engine: AsyncEngine,
) -> None:
    repo = await recorded(engine, accounts)
    with capture_queries(engine) as captured:
        first = await repo.create({"email": "a@example.com", "name": "A"})
        second = await repo.create({"email": "b@example.com", "name": "B", "balance": 3})
    if engine.dialect.name == "postgresql":
        captured.assert_count(2)
    changes = await read_changes(engine, table=CHANGES)
    assert [(c.id, c.operation, c.key, c.columns) for c in changes] == [
        (1, "INSERT", (first["id"],), ("email", "name")),
        (2, "INSERT", (second["id"],), ("balance", "email", "name")),
    ]
    # Written exactly as every other path writes keys, so readers can match them as text.
    assert await stored_keys(engine) == [f"[{first['id']}]", f"[{second['id']}]"]
    assert second["balance"] == 3


async def test_a_uuid_key_made_in_python_is_kept_and_recorded(engine: AsyncEngine) -> None:
    repo = await recorded(engine, tokens)
    made = await repo.create({"label": "default key"})
    given = uuid.uuid4()
    await repo.create({"id": given, "label": "given key"})
    assert isinstance(made["id"], uuid.UUID)
    changes = await read_changes(engine, table=CHANGES)
    assert [c.key for c in changes] == [(str(made["id"]),), (str(given),)]
    assert await stored_keys(engine) == [f'["{made["id"]}"]', f'["{given}"]']


async def test_a_composite_key_is_recorded_the_general_way(engine: AsyncEngine) -> None:
    repo = await recorded(engine, memberships)
    await repo.create({"org_id": 7, "user_id": 9, "role": "owner"})
    [change] = await read_changes(engine, table=CHANGES)
    assert (change.operation, change.key) == ("INSERT", (7, 9))
    assert await stored_keys(engine) == ["[7,9]"]


async def test_a_refused_create_records_nothing_and_leaves_the_ids_dense(
    engine: AsyncEngine,
) -> None:
    repo = await recorded(engine, accounts)
    await repo.create({"email": "a@example.com", "name": "A"})
    try:
        await repo.create({"email": "a@example.com", "name": "again"})
    except UniqueConstraintError:
        pass
    else:  # pragma: no cover - the unique index refuses the row
        raise AssertionError("the duplicate email was accepted")
    await repo.create({"email": "c@example.com", "name": "C"})
    changes = await read_changes(engine, table=CHANGES)
    assert [(c.id, c.key) for c in changes] == [(1, (1,)), (2, (3,))] or [
        c.id for c in changes
    ] == [1, 2]


class UpperCaseNames:
    """A plugin outside the change feed that rewrites every inserted row."""

    name = "upper_case_names"
    priority = 950  # above the change feed's 900: its `prepare_insert` runs after

    class Mixin(Repository[Any]):
        def prepare_insert(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            rows = super().prepare_insert(rows)
            return [{**row, "name": row["name"].upper(), "balance": 10} for row in rows]

    from kysera.repository import hookimpl as _hookimpl

    @_hookimpl
    def kysera_repository_mixin(self, table: sa.Table, orm: Any) -> type | None:
        return self.Mixin if table is accounts else None


async def test_a_plugin_outside_the_feed_sends_the_create_the_general_way(
    engine: AsyncEngine,
) -> None:
    repo = await recorded(engine, accounts, UpperCaseNames())
    with capture_queries(engine) as captured:
        row = await repo.create({"email": "a@example.com", "name": "ada"})
    assert (row["name"], row["balance"]) == ("ADA", 10)
    assert captured.count > 1  # the insert and its change rows, in one transaction
    [change] = await read_changes(engine, table=CHANGES)
    assert (change.operation, change.key) == ("INSERT", (row["id"],))
    # The change feed sees the row before the outer plugin adds to it.
    assert change.columns == ("email", "name")


async def test_bulk_writes_add_one_statement_for_their_change_rows_on_postgresql(
    engine: AsyncEngine,
) -> None:
    plain = (await create_orm(engine)).repository(accounts)
    repo = await recorded(engine, accounts)

    async def statements(target: Any, tag: str) -> tuple[int, int]:
        rows = [{"email": f"{tag}-{i}@example.com", "name": tag} for i in range(40)]
        with capture_queries(engine) as created:
            made = await target.create_many(rows)
        with capture_queries(engine) as deleted:
            await target.delete_many([row["id"] for row in made])
        return created.count, deleted.count

    base = await statements(plain, "plain")
    more = await statements(repo, "fed")
    if engine.dialect.name == "postgresql":
        # create_many: + the change rows; delete_many: + the keys read first, + the rows.
        assert (more[0] - base[0], more[1] - base[1]) == (1, 2)
    changes = await read_changes(engine, table=CHANGES)
    assert [c.operation for c in changes] == ["INSERT"] * 40 + ["DELETE"] * 40
    assert [c.id for c in changes] == list(range(1, 81))
