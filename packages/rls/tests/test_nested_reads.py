"""A subquery inside a repository's `where` or a hand-written UPDATE/DELETE reads only the
caller's rows.

Such a subquery never returns another tenant's rows, but without its own restriction it
decides which rows match (an existence oracle: "is there a task of tenant 2 titled X?") and,
in an UPDATE's ``SET``, writes what it read into the caller's rows. Hypothesis draws the
subquery (over a table, an alias, a subquery or a CTE of either protected table), how the
`where` uses it (``EXISTS``, ``NOT EXISTS``, ``IN``, a scalar count, a scalar max) and the
path that runs it; each probe asks about rows the caller must not see, so its truth value is
known for every row.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rls_support import countries, projects, tasks
from sqlalchemy.sql import visitors
from test_statement_shapes import sources

from kysera.core.testing import snapshot_table
from kysera.repository import Orm
from kysera.rls import RLSContextError, rls_context, system_context

TENANT = 1
OWN_PROJECTS = 3  # `seed` gives each tenant three projects, each with a task


@st.composite
def probes(draw: st.DrawFn, ctes: bool = True) -> tuple[Any, bool]:
    """A condition over another tenant's rows and whether it holds when they are hidden."""
    source = draw(sources() if ctes else sources().filter(without_ctes))
    foreign = sa.select(source.c.id).where(source.c.tenant_id != TENANT)
    kind = draw(st.sampled_from(["exists", "not_exists", "in", "count", "max"]))
    if kind == "exists":
        return foreign.exists(), False
    if kind == "not_exists":
        return ~foreign.exists(), True
    if kind == "in":
        return projects.c.id.in_(foreign), False
    if kind == "count":
        counted = sa.select(sa.func.count()).select_from(source)
        return counted.where(source.c.tenant_id != TENANT).scalar_subquery() == 0, True
    highest = sa.select(sa.func.max(source.c.tenant_id)).scalar_subquery()
    return highest == TENANT, True


def without_ctes(source: Any) -> bool:
    return not any(isinstance(element, sa.CTE) for element in visitors.iterate(source))


async def matched(orm: Orm, method: str, condition: Any) -> int:
    """How many of the caller's projects ``method`` reached with ``condition``."""
    repo = orm.repository(projects)
    if method == "find":
        return len(await repo.find(where=condition))
    if method == "count":
        return await repo.count(where=condition)
    if method == "exists":
        return OWN_PROJECTS if await repo.exists(where=condition) else 0
    if method == "update_many":
        return await repo.update_many(condition, {"views": 0})
    result = await orm.execute(sa.update(projects).where(condition).values(views=0))
    return int(result.rowcount)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(["find", "count", "exists", "update_many", "execute_update"]),
    data=st.data(),
)
async def test_a_nested_read_sees_only_the_callers_rows(
    seeded: Orm, method: str, data: st.DataObject
) -> None:
    # A CTE inside an UPDATE's WHERE renders as WITH ... UPDATE, which MariaDB lacks.
    condition, holds = data.draw(probes(ctes=method in ("find", "count", "exists")))
    async with rls_context(tenant_id=TENANT):
        reached = await matched(seeded, method, condition)
    assert reached == (OWN_PROJECTS if holds else 0), condition


async def test_the_probes_do_see_other_tenants_without_the_policies(seeded: Orm) -> None:
    # The same conditions in system_context see tenant 2: the property above is not vacuous.
    foreign = sa.select(projects.c.id).where(projects.c.tenant_id != TENANT).exists()
    async with system_context("test"):
        assert await seeded.repository(projects).count(where=foreign) == 2 * OWN_PROJECTS


async def test_an_update_writes_only_what_the_caller_may_read(seeded: Orm, engine: Any) -> None:
    everyone = sa.select(sa.func.count()).select_from(projects).scalar_subquery()
    async with rls_context(tenant_id=TENANT):
        result = await seeded.execute(sa.update(projects).values(views=everyone))
    assert result.rowcount == OWN_PROJECTS
    rows = await snapshot_table(engine, projects)
    assert {(row["tenant_id"], row["views"]) for row in rows} == {(1, OWN_PROJECTS), (2, 0)}


async def test_a_shared_tables_where_is_confined_too(seeded: Orm) -> None:
    shared = seeded.repository(countries)
    async with system_context("test: seed"):
        await shared.create({"code": "pt", "name": "Portugal"})
    foreign = sa.select(projects.c.id).where(projects.c.tenant_id != TENANT).exists()
    async with rls_context(tenant_id=TENANT):
        assert await shared.count(where=foreign) == 0
        assert await shared.count(where=~foreign) == 1
    # A shared table needs no context, but a protected table read inside its `where` does.
    assert await shared.count() == 1
    with pytest.raises(RLSContextError, match="rls_projects"):
        await shared.count(where=foreign)


async def test_a_correlated_subquery_still_correlates(seeded: Orm) -> None:
    repo = seeded.repository(projects)
    with_tasks = sa.select(tasks.c.id).where(tasks.c.project_id == projects.c.id).exists()
    own_task = with_tasks.where(tasks.c.tenant_id == TENANT)
    async with rls_context(tenant_id=TENANT):
        assert await repo.count(where=with_tasks) == OWN_PROJECTS
        assert await repo.count(where=~own_task) == 0
        rows = await repo.find(where=with_tasks, order_by=["id"])
    assert {row["tenant_id"] for row in rows} == {TENANT}
