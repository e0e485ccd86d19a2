"""The tenancy plugin against real repositories, on every configured database.

`kysera_engine` comes from Kysera's pytest plugin: each test runs once per database
(`[sqlite]`, `[postgresql]`, `[mysql]`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from tenancy_plugin import TenantError, TenantMixin, TenantPlugin, tenant_scope

from kysera.core import NotFoundError
from kysera.repository import Orm, create_orm

metadata = sa.MetaData()
projects = sa.Table(
    "tn_projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("name", sa.String(50), nullable=False),
    sa.Column("budget", sa.Integer, nullable=False, server_default="0"),
    sa.UniqueConstraint("tenant_id", "name"),
)
tasks = sa.Table(
    "tn_tasks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("project_id", sa.ForeignKey("tn_projects.id"), nullable=False),
    sa.Column("title", sa.String(50), nullable=False),
)
countries = sa.Table(  # shared by all tenants: no tenant column, so never scoped
    "tn_countries",
    metadata,
    sa.Column("code", sa.String(2), primary_key=True),
    sa.Column("name", sa.String(50), nullable=False),
)


@pytest_asyncio.fixture(loop_scope="session")
async def orm(kysera_engine: AsyncEngine) -> AsyncIterator[Orm]:
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
    yield await create_orm(kysera_engine, plugins=[TenantPlugin()])
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)


async def all_rows(orm: Orm, table: sa.Table) -> list[dict[str, Any]]:
    """The table's contents, read past the plugin."""
    result = await orm.execute(sa.select(table).order_by(*table.primary_key), all_tenants=True)
    return [dict(row) for row in result.mappings()]


async def test_each_tenant_sees_only_its_own_rows(orm: Orm) -> None:
    repo = orm.repository(projects)
    with tenant_scope(1):
        apollo = await repo.create({"name": "apollo"})
    with tenant_scope(2):
        await repo.create_many([{"name": "gemini"}, {"name": "mercury"}])

        assert [p["name"] for p in await repo.find_all(order_by="name")] == ["gemini", "mercury"]
        assert await repo.count() == 2
        assert await repo.exists({"name": "apollo"}) is False
        assert await repo.find_by_id(apollo["id"]) is None
        assert await repo.find_by_ids([apollo["id"]]) == []
        with pytest.raises(NotFoundError):
            await repo.get(apollo["id"])
        items, total = await repo.find_and_count(order_by="-name", limit=1)
        assert ([p["name"] for p in items], total) == (["mercury"], 2)
        page = await repo.paginate(page=1, limit=10, order_by="name")
        assert ([p["name"] for p in page.items], page.total) == (["gemini", "mercury"], 2)
        keyset = await repo.paginate_cursor(limit=10)
        assert [p["name"] for p in keyset.items] == ["gemini", "mercury"]

    assert apollo["tenant_id"] == 1
    assert len(await all_rows(orm, projects)) == 3


async def test_writes_cannot_reach_another_tenants_rows(orm: Orm) -> None:
    repo = orm.repository(projects)
    with tenant_scope(1):
        apollo = await repo.create({"name": "apollo"})
    with tenant_scope(2):
        gemini = await repo.create({"name": "gemini"})
    before = await all_rows(orm, projects)

    with tenant_scope(2):
        with pytest.raises(NotFoundError):
            await repo.update(apollo["id"], {"budget": 1})
        assert await repo.delete(apollo["id"]) is False
        assert await repo.delete_many([apollo["id"]]) == 0
        with pytest.raises(NotFoundError):
            await repo.bulk_update([(gemini["id"], {"budget": 5}), (apollo["id"], {"budget": 5})])
        assert await all_rows(orm, projects) == before

        assert await repo.update_many({}, {"budget": 7}) == 1
        assert (await repo.update(gemini["id"], {"budget": 8}))["budget"] == 8

    assert [p["budget"] for p in await all_rows(orm, projects)] == [0, 8]


async def test_new_rows_get_the_current_tenant(orm: Orm) -> None:
    repo = orm.repository(projects)
    with tenant_scope(3):
        created = await repo.create({"name": "apollo"})
        explicit = await repo.create({"name": "gemini", "tenant_id": 3})
        with pytest.raises(TenantError, match="cannot create a row of tenant 4 as tenant 3"):
            await repo.create_many([{"name": "ok"}, {"name": "foreign", "tenant_id": 4}])
        with pytest.raises(TenantError, match="'tenant_id' of a row cannot be changed"):
            await repo.update(created["id"], {"tenant_id": 4})

    assert (created["tenant_id"], explicit["tenant_id"]) == (3, 3)
    assert [(p["name"], p["tenant_id"]) for p in await all_rows(orm, projects)] == [
        ("apollo", 3),
        ("gemini", 3),
    ]


async def test_without_a_tenant_nothing_runs_unless_all_tenants_is_asked_for(orm: Orm) -> None:
    repo = orm.repository(projects)
    with pytest.raises(TenantError, match="no tenant for a new row of 'tn_projects'"):
        await repo.create({"name": "orphan"})
    with pytest.raises(TenantError, match="no tenant for a statement on 'tn_projects'"):
        await repo.find_all()
    with pytest.raises(TenantError):
        await repo.delete_many([1, 2, 3])
    with pytest.raises(TenantError):
        await orm.execute(sa.delete(projects))
    assert await all_rows(orm, projects) == []

    # Administration: name the tenant of new rows, read across tenants explicitly.
    await repo.create_many([{"name": "a", "tenant_id": 1}, {"name": "b", "tenant_id": 2}])
    assert await repo.count(all_tenants=True) == 2
    assert isinstance(repo, TenantMixin)  # the plugin's added methods, statically typed
    assert {p["tenant_id"] for p in await repo.find_across_tenants()} == {1, 2}


async def test_hand_written_statements_are_scoped(orm: Orm) -> None:
    repo = orm.repository(projects)
    with tenant_scope(1):
        apollo = await repo.create({"name": "apollo"})
        await orm.repository(tasks).create({"project_id": apollo["id"], "title": "launch"})
    with tenant_scope(2):
        gemini = await repo.create({"name": "gemini"})
        await orm.repository(tasks).create({"project_id": gemini["id"], "title": "dock"})
        await orm.repository(countries).create({"code": "us", "name": "United States"})

        joined = sa.select(tasks.c.title, projects.c.name).join_from(tasks, projects)
        assert [tuple(row) for row in await orm.execute(joined)] == [("dock", "gemini")]
        shared = sa.select(countries.c.name, projects.c.name).join_from(
            projects, countries, sa.true()
        )
        assert [tuple(row) for row in await orm.execute(shared)] == [("United States", "gemini")]

        await orm.execute(sa.update(projects).values(budget=9))
        await orm.execute(sa.delete(tasks))

        # What the plugin cannot confine, it refuses instead of running unscoped.
        outer = sa.select(projects.c.name, tasks.c.title).outerjoin_from(projects, tasks)
        with pytest.raises(TenantError, match=r"cannot scope \['tn_tasks'\]"):
            await orm.execute(outer)
        subquery = sa.select(countries).where(
            countries.c.name.in_(sa.select(projects.c.name).scalar_subquery())
        )
        with pytest.raises(TenantError, match=r"cannot scope \['tn_projects'\]"):
            await orm.execute(subquery)

    assert [(p["name"], p["budget"]) for p in await all_rows(orm, projects)] == [
        ("apollo", 0),
        ("gemini", 9),
    ]
    assert [t["title"] for t in await all_rows(orm, tasks)] == ["launch"]


async def test_upserts_match_only_rows_of_the_current_tenant(orm: Orm) -> None:
    repo = orm.repository(projects)
    key = ["tenant_id", "name"]
    with tenant_scope(1):
        first = await repo.upsert({"name": "apollo", "budget": 1}, conflict=key)
    with tenant_scope(2):
        other = await repo.upsert({"name": "apollo", "budget": 2}, conflict=key)
        again = await repo.upsert({"name": "apollo", "budget": 3}, conflict=key)
        with pytest.raises(TenantError, match="must include 'tenant_id' in conflict="):
            await repo.upsert({"name": "apollo", "budget": 4}, conflict=["name"])

    assert first["id"] != other["id"] == again["id"]
    assert [(p["tenant_id"], p["budget"]) for p in await all_rows(orm, projects)] == [
        (1, 1),
        (2, 3),
    ]


async def test_concurrent_tasks_keep_their_own_tenant(orm: Orm) -> None:
    repo = orm.repository(projects)

    async def work_as(tenant: int) -> list[int]:
        with tenant_scope(tenant):
            await repo.create({"name": f"project-{tenant}"})
            await asyncio.sleep(0)  # let the other tasks interleave
            return [p["tenant_id"] for p in await repo.find_all()]

    assert await asyncio.gather(*(work_as(tenant) for tenant in range(1, 6))) == [
        [1],
        [2],
        [3],
        [4],
        [5],
    ]


async def test_scoping_holds_inside_transactions(orm: Orm) -> None:
    repo = orm.repository(projects)
    with tenant_scope(1):
        await repo.create({"name": "apollo"})

    async def create_then_fail() -> None:
        async with orm.transaction() as tx:
            await repo.create({"name": "gemini"})
            assert [p["name"] for p in await repo.find_all()] == ["gemini"]
            assert await repo.with_executor(tx.connection).count() == 1
            raise RuntimeError("abort")

    with tenant_scope(2):
        with pytest.raises(RuntimeError, match="abort"):
            await create_then_fail()
        assert await repo.count() == 0
    assert [p["name"] for p in await all_rows(orm, projects)] == ["apollo"]
