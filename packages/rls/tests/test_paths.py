"""Every repository path stays inside the caller's tenant, and refuses to run without one."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from rls_support import labels, project_labels, projects, tasks
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import NotFoundError
from kysera.core.testing import snapshot_table
from kysera.repository import Orm
from kysera.rls import (
    RLSContextError,
    RLSPolicyError,
    rls_context,
    system_context,
)


async def seed(orm: Orm) -> dict[int, list[Any]]:
    """Three projects per tenant (1 and 2), each with a task owned by user 10."""
    repo = orm.repository(projects)
    task_repo = orm.repository(tasks)
    made: dict[int, list[Any]] = {}
    for tenant in (1, 2):
        async with rls_context(tenant_id=tenant, user_id=10):
            made[tenant] = await repo.create_many([{"name": f"p{tenant}-{n}"} for n in range(3)])
            for project in made[tenant]:
                await task_repo.create({"project_id": project["id"], "owner_id": 10, "title": "t"})
    return made


def tenants_of(rows: Any) -> set[int]:
    return {row["tenant_id"] for row in rows}


async def test_every_read_path_sees_only_the_callers_tenant(orm: Orm) -> None:
    made = await seed(orm)
    repo = orm.repository(projects)
    foreign = made[2][0]["id"]
    async with rls_context(tenant_id=1):
        assert tenants_of(await repo.find()) == {1}
        assert len(await repo.find()) == 3
        assert await repo.find_by_id(foreign) is None
        with pytest.raises(NotFoundError):
            await repo.get(foreign)
        assert await repo.find_one({"id": foreign}) is None
        assert await repo.count() == 3
        assert not await repo.exists({"id": foreign})
        rows, total = await repo.find_and_count()
        assert (tenants_of(rows), total) == ({1}, 3)
        assert await repo.find_by_ids([row["id"] for row in made[2]]) == []
        page = await repo.paginate(page=1, limit=10)
        assert tenants_of(page.items) == {1}
        assert page.total == 3
        first = await repo.paginate_cursor(limit=2)
        second = await repo.paginate_cursor(limit=2, after=first.next_cursor)
        assert tenants_of([*first.items, *second.items]) == {1}
        assert len(first.items) + len(second.items) == 3
        # A where-dict naming the tenant column narrows; it never widens.
        assert await repo.find({"tenant_id": 2}) == []
        loaded = await repo.find(include=["rls_tasks"])
        assert {task["tenant_id"] for row in loaded for task in row["rls_tasks"]} == {1}


async def test_a_cursor_from_another_tenant_pages_only_the_callers_rows(orm: Orm) -> None:
    await seed(orm)
    repo = orm.repository(projects)
    async with rls_context(tenant_id=2):
        cursor = (await repo.paginate_cursor(limit=1)).next_cursor
    async with rls_context(tenant_id=1):
        page = await repo.paginate_cursor(limit=10, after=cursor)
    assert tenants_of(page.items) <= {1}


async def test_writes_get_the_tenant_and_cannot_reach_another(
    orm: Orm, engine: AsyncEngine
) -> None:
    made = await seed(orm)
    repo = orm.repository(projects)
    foreign = made[2][0]["id"]
    before = await snapshot_table(engine, projects)
    async with rls_context(tenant_id=1):
        with pytest.raises(RLSPolicyError, match="for tenant 2 as tenant 1"):
            await repo.create({"name": "x", "tenant_id": 2})
        with pytest.raises(RLSPolicyError):
            await repo.create_many([{"name": "ok"}, {"name": "y", "tenant_id": 2}])
        with pytest.raises(NotFoundError):
            await repo.update(foreign, {"name": "stolen"})
        with pytest.raises(RLSPolicyError, match="move"):
            await repo.update(made[1][0]["id"], {"tenant_id": 2})
        assert await repo.update_many({}, {"views": 5}) == 3
        assert await repo.delete(foreign) is False
        assert await repo.delete_many([foreign]) == 0
        with pytest.raises(NotFoundError):
            await repo.increment(foreign, views=1)
        with pytest.raises(NotFoundError):
            await repo.bulk_update([(made[1][0]["id"], {"views": 7}), (foreign, {"views": 7})])
        with pytest.raises(RLSPolicyError, match="conflict key"):
            await repo.upsert({"id": foreign, "name": "over"}, conflict=["id"])
        upserted = await repo.upsert({"name": "p1-0"}, conflict=["tenant_id", "name"])
        assert upserted["tenant_id"] == 1
        made_here = await repo.create({"name": "new"})
        assert made_here["tenant_id"] == 1
    after = {row["id"]: row for row in await snapshot_table(engine, projects)}
    # Tenant 2's rows are exactly as they were.
    assert [row for row in before if row["tenant_id"] == 2] == [
        after[row["id"]] for row in before if row["tenant_id"] == 2
    ]
    assert {after[row["id"]]["views"] for row in before if row["tenant_id"] == 1} == {5}


async def test_nothing_runs_outside_a_context(orm: Orm, engine: AsyncEngine) -> None:
    await seed(orm)
    repo = orm.repository(projects)
    calls = [
        repo.find(),
        repo.find_by_id(1),
        repo.count(),
        repo.paginate_cursor(limit=1),
        repo.create({"name": "x", "tenant_id": 1}),
        repo.update_many({}, {"views": 1}),
        repo.delete_many([1]),
        orm.execute(projects.select()),
    ]
    for call in calls:
        with pytest.raises(RLSContextError, match="rls_projects"):
            await call
    async with system_context("test: read everything"):
        assert await repo.count() == 6
    assert {row["views"] for row in await snapshot_table(engine, projects)} == {0}


async def test_allow_and_check_policies_restrict_operations(orm: Orm) -> None:
    await seed(orm)
    task_repo = orm.repository(tasks)
    async with rls_context(tenant_id=1, user_id=10):
        task = (await task_repo.find())[0]
        with pytest.raises(RLSPolicyError, match="check"):
            await task_repo.create({"project_id": task["project_id"], "owner_id": 11, "title": "x"})
        assert (await task_repo.update(task["id"], {"title": "mine"}))["title"] == "mine"
        assert await task_repo.delete(task["id"]) is False  # deleting needs the admin role
    async with rls_context(tenant_id=1, user_id=11):
        with pytest.raises(NotFoundError):  # not the owner: the row is out of reach
            await task_repo.update(task["id"], {"title": "theirs"})
        assert len(await task_repo.find()) == 3  # reading is not restricted by allow(update)
    async with rls_context(tenant_id=1, user_id=11, roles={"admin"}):
        assert await task_repo.delete(task["id"]) is True


async def test_the_escape_hatch_is_logged_with_its_reason(
    orm: Orm, caplog: pytest.LogCaptureFixture
) -> None:
    await seed(orm)
    with caplog.at_level("WARNING", logger="kysera.rls"):
        async with system_context("nightly report"):
            assert await orm.repository(projects).count() == 6
    assert [record.getMessage() for record in caplog.records] == [
        "system context entered: policies do not apply (nightly report)"
    ]


async def test_another_tenants_link_in_a_join_table_pairs_nothing(orm: Orm) -> None:
    made = await seed(orm)
    project = made[1][0]
    async with rls_context(tenant_id=1, user_id=10):
        mine, other = await orm.repository(labels).create_many([{"name": "a"}, {"name": "b"}])
        await orm.repository(project_labels).create(
            {"project_id": project["id"], "label_id": mine["id"]}
        )
    # A link row of tenant 2 between two of tenant 1's rows.
    async with system_context("test: a foreign link"):
        await orm.execute(
            sa.insert(project_labels).values(
                project_id=project["id"], label_id=other["id"], tenant_id=2
            )
        )

    async with rls_context(tenant_id=1):
        found = await orm.repository(projects).find_by_id(project["id"], include="labels")
    assert found is not None
    assert [label["name"] for label in found["labels"]] == ["a"]
    async with system_context("test: every link"):
        every = await orm.repository(projects).find_by_id(project["id"], include="labels")
    assert every is not None
    assert sorted(label["name"] for label in every["labels"]) == ["a", "b"]
