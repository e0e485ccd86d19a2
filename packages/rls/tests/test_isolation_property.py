"""The tenant-isolation property: 100 concurrent tasks of 7 tenants, each running random
operations from every path over a pool of 2 connections, read and write 0 foreign rows."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rls_support import projects, rls_orm, tasks
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import NotFoundError
from kysera.core.pytest_plugin import create_test_engine
from kysera.core.testing import snapshot_table
from kysera.repository import Orm
from kysera.rls import rls_context

TASKS = 100
TENANTS = 7
OPERATIONS = (
    "create",
    "create_many",
    "find",
    "find_by_id",
    "count",
    "paginate_cursor",
    "update",
    "update_many",
    "delete",
    "increment",
    "include",
    "execute_join",
)


@pytest_asyncio.fixture(loop_scope="session")
async def small_pool(engine: AsyncEngine, kysera_database_url: str) -> AsyncIterator[AsyncEngine]:
    """The test database through a pool of two connections (the tables come from ``engine``)."""
    pooled = create_test_engine(kysera_database_url, pool_size=2, max_overflow=0, pool_timeout=60)
    try:
        yield pooled
    finally:
        await pooled.dispose()


class Ledger:
    """What the tasks did: the tenant of every row made, and any foreign row seen."""

    def __init__(self) -> None:
        self.owner: dict[int, int] = {}
        self.foreign: list[str] = []
        self.operations = 0

    def saw(self, tenant: int, rows: Any, what: str) -> None:
        for row in rows:
            if row["tenant_id"] != tenant:
                self.foreign.append(f"tenant {tenant} {what} a row of {row['tenant_id']}")

    def reached(self, tenant: int, key: int, what: str) -> None:
        """A write through ``key`` succeeded: it must be the tenant's own row."""
        if self.owner.get(key, tenant) != tenant:
            self.foreign.append(f"tenant {tenant} {what} row {key} of {self.owner[key]}")


async def run_task(orm: Orm, tenant: int, plan: list[str], seed: int, ledger: Ledger) -> None:
    repo = orm.repository(projects)
    pick = random.Random(seed)
    async with rls_context(tenant_id=tenant, user_id=tenant):
        for operation in plan:
            ledger.operations += 1
            key = pick.choice(list(ledger.owner)) if ledger.owner else 1
            if operation == "create":
                row = await repo.create({"name": f"t{tenant}-{pick.random()}"})
                ledger.saw(tenant, [row], "created")
                ledger.owner[row["id"]] = tenant
            elif operation == "create_many":
                rows = await repo.create_many(
                    [{"name": f"t{tenant}-{pick.random()}"} for _ in range(3)]
                )
                ledger.saw(tenant, rows, "created")
                ledger.owner.update({row["id"]: tenant for row in rows})
            elif operation == "find":
                ledger.saw(tenant, await repo.find(), "found")
            elif operation == "find_by_id":
                found = await repo.find_by_id(key)
                ledger.saw(tenant, [found] if found else [], "found by id")
            elif operation == "count":
                counted = await repo.count()
                own = await repo.find()
                if counted != len(own):  # rows of this tenant only, whatever others do
                    ledger.saw(tenant, own, "counted")
            elif operation == "paginate_cursor":
                page = await repo.paginate_cursor(limit=5)
                ledger.saw(tenant, page.items, "paged")
            elif operation == "update":
                try:
                    row = await repo.update(key, {"name": f"t{tenant}-u{pick.random()}"})
                except NotFoundError:
                    continue
                ledger.reached(tenant, key, "updated")
                ledger.saw(tenant, [row], "updated")
            elif operation == "update_many":
                await repo.update_many({}, {"views": tenant})
            elif operation == "delete":
                if await repo.delete(key):
                    ledger.reached(tenant, key, "deleted")
            elif operation == "increment":
                try:
                    row = await repo.increment(key, views=0)
                except NotFoundError:
                    continue
                ledger.reached(tenant, key, "incremented")
            elif operation == "include":
                loaded = await repo.find(include=["rls_tasks"], limit=5)
                ledger.saw(tenant, loaded, "loaded")
                ledger.saw(tenant, [t for row in loaded for t in row["rls_tasks"]], "included")
            elif operation == "execute_join":
                joined = sa.select(tasks.c.tenant_id).select_from(
                    tasks.join(projects, tasks.c.project_id == projects.c.id)
                )
                rows = (await orm.execute(joined)).mappings().all()
                ledger.saw(tenant, rows, "joined")


@settings(
    max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    plans=st.lists(
        st.lists(st.sampled_from(OPERATIONS), min_size=2, max_size=6),
        min_size=TASKS,
        max_size=TASKS,
    ),
    seed=st.integers(0, 2**32),
)
async def test_concurrent_tenants_never_read_or_write_each_others_rows(
    small_pool: AsyncEngine, plans: list[list[str]], seed: int
) -> None:
    async with small_pool.begin() as connection:
        await connection.execute(tasks.delete())
        await connection.execute(projects.delete())
    orm = await rls_orm(small_pool)
    ledger = Ledger()
    await asyncio.gather(
        *(
            run_task(orm, index % TENANTS + 1, plan, seed + index, ledger)
            for index, plan in enumerate(plans)
        )
    )
    assert ledger.foreign == []
    # Every stored row still carries the name its own tenant gave it.
    for row in await snapshot_table(small_pool, projects):
        assert row["name"].startswith(f"t{row['tenant_id']}-"), row
        assert row["views"] in (0, row["tenant_id"]), row
