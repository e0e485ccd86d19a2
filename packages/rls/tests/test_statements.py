"""Statements passed to ``orm.execute``: scoped where a WHERE can confine them, refused where
it cannot, and tables without policies refused while the default denies."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from rls_support import POLICIES, countries, projects, tasks, unlisted
from sqlalchemy.ext.asyncio import AsyncEngine
from test_paths import seed

from kysera.core import BadRequestError
from kysera.core.testing import snapshot_table
from kysera.repository import Orm, create_orm
from kysera.rls import (
    RLSContextError,
    RLSPlugin,
    RLSPolicyError,
    RLSScopeError,
    policy,
    rls_context,
    system_context,
)


async def test_selects_and_inner_joins_are_scoped(orm: Orm) -> None:
    await seed(orm)
    joined = sa.select(projects.c.tenant_id, tasks.c.tenant_id.label("task_tenant")).select_from(
        projects.join(tasks, tasks.c.project_id == projects.c.id)
    )
    async with rls_context(tenant_id=2):
        rows = (await orm.execute(joined)).all()
        counted = (await orm.execute(sa.select(sa.func.count()).select_from(projects))).scalar()
    assert len(rows) == 3
    assert {(row[0], row[1]) for row in rows} == {(2, 2)}
    assert counted == 3


async def test_outer_joins_subqueries_ctes_and_aliases_are_scoped(orm: Orm) -> None:
    await seed(orm)
    left = sa.select(projects.c.tenant_id, tasks.c.tenant_id).select_from(
        projects.outerjoin(tasks, tasks.c.project_id == projects.c.id)
    )
    # A join condition that would pair tenant 1's projects with tenant 2's tasks: the
    # optional side is restricted in ON, so it comes back NULL instead of foreign rows.
    crossed = sa.select(projects.c.id, tasks.c.tenant_id).select_from(
        projects.outerjoin(tasks, tasks.c.tenant_id != projects.c.tenant_id)
    )
    with_tasks = sa.select(projects.c.tenant_id).where(
        sa.exists(sa.select(tasks.c.id).where(tasks.c.project_id == projects.c.id))
    )
    in_subquery = (
        sa.select(sa.func.count())
        .select_from(tasks)
        .where(tasks.c.project_id.in_(sa.select(projects.c.id)))
    )
    cte = sa.select(projects).cte("tenant_projects")
    alias = projects.alias("p")
    async with rls_context(tenant_id=1):
        assert (await orm.execute(left)).all() == [(1, 1)] * 3
        assert [row[1] for row in (await orm.execute(crossed)).all()] == [None] * 3
        assert (await orm.execute(with_tasks)).scalars().all() == [1, 1, 1]
        assert (await orm.execute(in_subquery)).scalar() == 3
        assert (await orm.execute(sa.select(cte.c.tenant_id))).scalars().all() == [1, 1, 1]
        assert (await orm.execute(sa.select(alias.c.tenant_id))).scalars().all() == [1, 1, 1]
        scalar = sa.select(sa.select(sa.func.count()).select_from(tasks).scalar_subquery())
        assert (await orm.execute(scalar)).scalar() == 3


async def test_each_select_of_a_union_is_scoped(orm: Orm) -> None:
    await seed(orm)
    both = sa.union_all(
        sa.select(projects.c.tenant_id), sa.select(tasks.c.tenant_id).where(tasks.c.title == "t")
    )
    async with rls_context(tenant_id=2):
        assert {row[0] for row in (await orm.execute(both)).all()} == {2}
        assert len((await orm.execute(both)).all()) == 6
    with pytest.raises(RLSContextError):
        await orm.execute(both)


async def test_a_hand_written_insert_is_refused_and_writes_nothing(
    orm: Orm, engine: AsyncEngine
) -> None:
    foreign_row = sa.insert(projects).values(tenant_id=2, name="planted")
    async with rls_context(tenant_id=1):
        with pytest.raises(RLSScopeError, match="through the repository"):
            await orm.execute(foreign_row)
    with pytest.raises(RLSContextError):
        await orm.execute(foreign_row)
    assert await snapshot_table(engine, projects) == []
    async with system_context("test: seed"):
        await orm.execute(foreign_row)
    assert len(await snapshot_table(engine, projects)) == 1


async def test_hand_written_updates_and_deletes_are_scoped(orm: Orm, engine: AsyncEngine) -> None:
    await seed(orm)
    async with rls_context(tenant_id=1):
        changed = await orm.execute(sa.update(projects).values(views=9))
        removed = await orm.execute(sa.delete(tasks).where(tasks.c.title == "t"))
    assert changed.rowcount == 3
    assert removed.rowcount == 0  # deleting tasks needs the admin role
    rows = await snapshot_table(engine, projects)
    assert {(row["tenant_id"], row["views"]) for row in rows} == {(1, 9), (2, 0)}
    with pytest.raises(RLSContextError):
        await orm.execute(sa.update(projects).values(views=1))


async def test_tables_without_policies_are_refused_unless_public_or_allowed(
    orm: Orm, engine: AsyncEngine
) -> None:
    async with rls_context(tenant_id=1):
        with pytest.raises(RLSPolicyError, match="rls_unlisted"):
            await orm.repository(unlisted).create({"note": "x"})
        with pytest.raises(RLSPolicyError, match="rls_unlisted"):
            await orm.execute(sa.select(unlisted))
        await orm.repository(countries).create({"code": "pt", "name": "Portugal"})
    # A shared table needs no context at all.
    assert len(await orm.repository(countries).find()) == 1
    async with system_context("test"):
        await orm.repository(unlisted).create({"note": "by the system"})
    assert len(await snapshot_table(engine, unlisted)) == 1
    lenient = await create_orm(engine, plugins=[RLSPlugin(POLICIES, default="allow")])
    assert len(await lenient.repository(unlisted).find()) == 1


def test_malformed_policies_are_refused_at_once() -> None:
    with pytest.raises(TypeError, match="policy"):
        RLSPlugin({"t": ["tenant_id"]})  # type: ignore[list-item]
    with pytest.raises(ValueError, match="more than one tenant"):
        RLSPlugin({"t": [policy.tenant("a"), policy.tenant("b")]})
    with pytest.raises(ValueError, match="check"):
        policy.allow("insert", lambda ctx, row: True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="default"):
        RLSPlugin({}, default="maybe")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="one string"):
        rls_context(tenant_id=1, roles="admin")


@pytest.mark.kysera_databases("sqlite", "mysql")
async def test_native_enforcement_is_refused_off_postgresql(engine: AsyncEngine) -> None:
    with pytest.raises(BadRequestError, match="needs PostgreSQL"):
        await create_orm(engine, plugins=[RLSPlugin(POLICIES, native_postgres=True)])
