"""Hand-written SELECTs of generated shapes never return another tenant's rows.

Hypothesis builds statements from the ways a query reads a table: plain FROM, inner and outer
joins (on the key, on a condition pairing different tenants, on TRUE), aliases, subqueries in
FROM, CTEs, scalar subqueries and UNIONs, nested. Every tenant id a row carries must be the
caller's or NULL (an outer join's empty side); every count must be the caller's count.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rls_support import projects, tasks

from kysera.repository import Orm
from kysera.rls import rls_context, system_context

TENANT = 1

# Joins ON TRUE are cross joins on purpose; SQLAlchemy's linter says so on MySQL, where TRUE
# renders as ``true = 1``.
pytestmark = pytest.mark.filterwarnings(
    "ignore:SELECT statement has a cartesian product:sqlalchemy.exc.SAWarning"
)


@st.composite
def sources(draw: st.DrawFn, depth: int = 0) -> Any:
    """A FROM item exposing a ``tenant_id`` column (and ``id``): a table, an alias, or a
    subquery / CTE over another source."""
    kind = draw(st.sampled_from(["table", "alias", "subquery", "cte"] if depth < 2 else ["table"]))
    table = draw(st.sampled_from([projects, tasks]))
    if kind == "table":
        return table
    if kind == "alias":
        return table.alias()
    inner = draw(sources(depth + 1))
    selected = sa.select(inner.c.id, inner.c.tenant_id)
    return selected.subquery() if kind == "subquery" else selected.cte()


@st.composite
def statements(draw: st.DrawFn, depth: int = 0) -> sa.Select[Any] | sa.CompoundSelect:
    """A SELECT whose every result column is a tenant id (or a count of one tenant's rows)."""
    # Joins are where scoping can go wrong in most ways: drawn more often.
    shapes = ["plain", "join", "join", "join", "scalar", "union"] if depth < 1 else ["join"]
    kind = draw(st.sampled_from(shapes))
    if kind == "plain":
        source = draw(sources())
        return sa.select(source.c.tenant_id)
    if kind == "scalar":
        source = draw(sources())
        counted = sa.select(sa.func.count()).select_from(source).scalar_subquery()
        return sa.select(counted.label("own_rows"))
    if kind == "union":
        left = draw(statements(depth + 1))
        right = draw(statements(depth + 1))
        if len(left.selected_columns) != len(right.selected_columns):
            return left
        return sa.union_all(left, right)
    left_source = draw(sources())
    right_source = draw(sources())
    if right_source is left_source:  # a table joined to itself needs an alias
        right_source = right_source.alias()
    on = draw(st.sampled_from(["key", "other_tenant", "true"]))
    condition = {
        "key": left_source.c.id == right_source.c.id,
        "other_tenant": left_source.c.tenant_id != right_source.c.tenant_id,
        "true": sa.true(),
    }[on]
    outer = draw(st.booleans())
    joined = left_source.join(right_source, condition, isouter=outer)
    return sa.select(left_source.c.tenant_id, right_source.c.tenant_id.label("other")).select_from(
        joined
    )


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(statement=statements())
async def test_no_generated_select_returns_another_tenants_rows(
    seeded: Orm, statement: Any
) -> None:
    orm = seeded
    async with rls_context(tenant_id=TENANT):
        rows = (await orm.execute(statement)).all()
    for row in rows:
        for name, value in row._mapping.items():
            if name == "own_rows":
                assert value == 3, statement  # each tenant has 3 projects and 3 tasks
            else:
                assert value in (TENANT, None), f"{value} in {name}: {statement}"


async def test_the_shapes_do_reach_other_tenants_without_the_policies(seeded: Orm) -> None:
    # The same statements in system_context see tenant 2: the property above is not vacuous.
    joined = sa.select(projects.c.tenant_id).select_from(
        projects.outerjoin(tasks, tasks.c.tenant_id != projects.c.tenant_id)
    )
    async with system_context("test"):
        assert {row[0] for row in (await seeded.execute(joined)).all()} == {1, 2}
