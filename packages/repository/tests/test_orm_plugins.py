"""Plugins in the repository: every statement is intercepted with the call's options, mixins
compose through super(), and transactions and with_executor keep the plugins.

The tenant plugin below is written the way a third party would write one: public hooks only.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import pytest
import sqlalchemy as sa
from repository_support import notes
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import NotFoundError
from kysera.core.capture import capture_queries
from kysera.core.testing import snapshot_table
from kysera.repository import QueryContext, Repository, create_orm, hookimpl

current_tenant: ContextVar[int] = ContextVar("current_tenant")


class TenantPlugin:
    """Scopes every statement on tables with a ``tenant_id`` to the current tenant."""

    name = "tenant"

    @hookimpl
    def kysera_intercept_query(self, context: QueryContext) -> Any:
        table = context.table
        statement: Any = context.statement
        if context.options.get("all_tenants"):
            return None
        if table is None:  # a user's statement through orm.execute: scope every table it reads
            if isinstance(statement, sa.Select):
                for source in statement.get_final_froms():
                    if isinstance(source, sa.Table) and "tenant_id" in source.c:
                        statement = statement.where(source.c.tenant_id == current_tenant.get())
            return statement
        if "tenant_id" not in table.c or context.operation == "insert":
            return None
        return statement.where(table.c.tenant_id == current_tenant.get())

    @hookimpl
    def kysera_repository_mixin(self, table: sa.Table, orm: Any) -> type | None:
        if "tenant_id" not in table.c:
            return None

        class TenantMixin(Repository[Any]):
            def prepare_insert(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
                rows = super().prepare_insert(rows)
                return [{**row, "tenant_id": current_tenant.get()} for row in rows]

            async def tenant_count(self) -> int:
                return await self.count()

        return TenantMixin


class RecordingPlugin:
    """Remembers every statement it sees, and wraps ``create`` to log the call order."""

    def __init__(self, name: str, priority: int = 0) -> None:
        self.name = name
        self.priority = priority
        self.seen: list[tuple[str, str | None, dict[str, Any]]] = []
        self.calls: list[str] = []

    @hookimpl
    def kysera_intercept_query(self, context: QueryContext) -> None:
        table = None if context.table is None else context.table.name
        self.seen.append((context.operation, table, dict(context.options)))

    @hookimpl
    def kysera_repository_mixin(self, table: sa.Table, orm: Any) -> type:
        plugin = self

        class Recording(Repository[Any]):
            async def create(self, data: Any, **options: Any) -> Any:
                plugin.calls.append(f"{plugin.name}:before")
                created = await super().create(data, **options)
                plugin.calls.append(f"{plugin.name}:after")
                return created

        return Recording


async def test_a_third_party_tenant_plugin_scopes_everything(engine: AsyncEngine) -> None:
    orm = await create_orm(engine, plugins=[TenantPlugin()])
    repo = orm.repository(notes)

    current_tenant.set(1)
    mine = await repo.create({"body": "mine"})
    assert mine["tenant_id"] == 1
    current_tenant.set(2)
    theirs = await repo.create_many([{"body": "theirs"}, {"body": "more"}])

    assert [n["body"] for n in await repo.find_all(order_by="id")] == ["theirs", "more"]
    assert await repo.find_by_id(mine["id"]) is None
    assert await repo.count() == 2
    assert await repo.tenant_count() == 2  # type: ignore[attr-defined]
    assert await repo.exists({"body": "mine"}) is False
    assert await repo.delete(mine["id"]) is False
    with pytest.raises(NotFoundError):
        await repo.update(mine["id"], {"body": "hacked"})
    assert await repo.update_many({}, {"body": "changed"}) == 2
    assert await repo.count(all_tenants=True) == 3
    rows = (await orm.execute(sa.select(notes).order_by(notes.c.id))).all()
    assert [row.body for row in rows] == ["changed", "changed"]
    assert [row["body"] for row in await snapshot_table(engine, notes)] == [
        "mine",
        "changed",
        "changed",
    ]
    assert theirs[0]["tenant_id"] == 2


async def test_every_statement_passes_the_plugins_with_the_call_options(
    engine: AsyncEngine,
) -> None:
    recorder = RecordingPlugin("recorder")
    orm = await create_orm(engine, plugins=[recorder])
    repo = orm.repository(notes)
    flag = {"include_deleted": True}

    created = await repo.create({"tenant_id": 1, "body": "a"}, **flag)
    await repo.create_many([{"tenant_id": 1, "body": "b"}], **flag)
    await repo.find_by_id(created["id"], **flag)
    await repo.find_by_ids([created["id"]], **flag)
    await repo.find({"body": "a"}, **flag)
    await repo.find_and_count(**flag)
    await repo.count(**flag)
    await repo.exists(**flag)
    await repo.update(created["id"], {"body": "c"}, **flag)
    await repo.update_many({"body": "b"}, {"body": "d"}, **flag)
    await repo.bulk_update([(created["id"], {"body": "e"})], **flag)
    await repo.upsert({"id": created["id"], "tenant_id": 1, "body": "f"}, **flag)
    await repo.delete(created["id"], **flag)
    await repo.delete_many([created["id"]], **flag)
    await orm.execute(sa.select(notes), **flag)
    await orm.execute(sa.delete(notes).where(notes.c.body == "zzz"), **flag)

    operations = {operation for operation, _table, _options in recorder.seen}
    assert operations == {"select", "insert", "update", "delete", "count"}
    assert all(options == flag for _op, _table, options in recorder.seen)
    assert ("select", None, flag) in recorder.seen  # orm.execute's SELECT: no single table
    assert ("delete", "rp_notes", flag) in recorder.seen


async def test_mixins_compose_in_plugin_order_through_super(engine: AsyncEngine) -> None:
    outer, inner = RecordingPlugin("outer", priority=10), RecordingPlugin("inner")
    calls: list[str] = []
    outer.calls = inner.calls = calls
    orm = await create_orm(engine, plugins=[inner, outer])

    await orm.repository(notes).create({"tenant_id": 1, "body": "x"})

    assert calls == ["outer:before", "inner:before", "inner:after", "outer:after"]


async def test_transactions_and_with_executor_keep_the_plugins(engine: AsyncEngine) -> None:
    orm = await create_orm(engine, plugins=[TenantPlugin()])
    repo = orm.repository(notes)
    current_tenant.set(7)

    async with orm.transaction() as tx:
        await repo.create({"body": "in tx"})
        bound = repo.with_executor(tx.connection)
        assert type(bound) is type(repo)
        assert await bound.tenant_count() == 1  # type: ignore[attr-defined]
    async with engine.connect() as connection:
        await connection.execute(notes.insert(), {"tenant_id": 8, "body": "other tenant"})
        bound = repo.with_executor(connection)
        assert [n["body"] for n in await bound.find_all()] == ["in tx"]
        await connection.rollback()


async def test_reads_without_intercepting_plugins_build_no_context(engine: AsyncEngine) -> None:
    orm = await create_orm(engine)
    repo = orm.repository(notes)
    created = await repo.create({"tenant_id": 1, "body": "a"})
    with capture_queries(engine) as log:
        assert (await repo.find_by_id(created["id"]))["body"] == "a"  # type: ignore[index]
    assert log.count == 1


async def test_plugins_can_tell_hand_written_statements_from_repository_ones(
    engine: AsyncEngine,
) -> None:
    seen: list[tuple[str, bool]] = []

    class Recorder:
        name = "recorder"

        @hookimpl
        def kysera_intercept_query(self, context: QueryContext) -> None:
            seen.append((context.operation, context.hand_written))

    orm = await create_orm(engine, plugins=[Recorder()])
    repo = orm.repository(notes)
    await repo.create({"tenant_id": 1, "body": "x"})
    await repo.find()
    await orm.execute(sa.insert(notes).values(tenant_id=1, body="y"))
    await orm.execute(sa.union_all(sa.select(notes.c.id), sa.select(notes.c.id)))
    assert ("insert", False) in seen
    assert ("select", False) in seen
    assert seen[-3:] == [("insert", True), ("select", True), ("select", True)]
