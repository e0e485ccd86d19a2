"""Tables of the row-level security tests: tenant-scoped tables with relations, a versioned
one, a shared table and a table nobody wrote policies for."""

from __future__ import annotations

import sqlalchemy as sa

from kysera.repository import Orm, create_orm, has_many, many_to_many
from kysera.rls import RLSPlugin, policy

metadata = sa.MetaData()

projects = sa.Table(
    "rls_projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("name", sa.String(50), nullable=False),
    sa.Column("views", sa.Integer, nullable=False, server_default="0"),
    sa.UniqueConstraint("tenant_id", "name"),
)
tasks = sa.Table(
    "rls_tasks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("project_id", sa.ForeignKey("rls_projects.id"), nullable=False),
    sa.Column("owner_id", sa.Integer, nullable=False),
    sa.Column("title", sa.String(50), nullable=False),
)
labels = sa.Table(
    "rls_labels",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("name", sa.String(50), nullable=False),
)
project_labels = sa.Table(  # the join table of projects.labels
    "rls_project_labels",
    metadata,
    sa.Column("project_id", sa.ForeignKey("rls_projects.id"), primary_key=True),
    sa.Column("label_id", sa.ForeignKey("rls_labels.id"), primary_key=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
)
documents = sa.Table(  # versioned (VersionPlugin's column)
    "rls_documents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("title", sa.String(50), nullable=False),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
)
countries = sa.Table(
    "rls_countries",
    metadata,
    sa.Column("code", sa.String(2), primary_key=True),
    sa.Column("name", sa.String(50), nullable=False),
)
unlisted = sa.Table(
    "rls_unlisted",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("note", sa.String(50)),
)

POLICIES = {
    "rls_projects": [policy.tenant("tenant_id")],
    "rls_tasks": [
        policy.tenant("tenant_id"),
        policy.allow("update", lambda ctx, row: row["owner_id"] == ctx.user_id),
        policy.allow("delete", lambda ctx, row: "admin" in ctx.roles),
        policy.check(lambda ctx, values: values.get("owner_id", ctx.user_id) == ctx.user_id),
    ],
    "rls_countries": [policy.public()],
    "rls_labels": [policy.tenant("tenant_id")],
    "rls_project_labels": [policy.tenant("tenant_id")],
    "rls_documents": [policy.tenant("tenant_id")],
}


async def rls_orm(executor: object, *plugins: object, native: bool = False) -> Orm:
    """An ORM with the test policies, ``projects.rls_tasks`` and ``projects.labels``."""
    orm = await create_orm(
        executor,  # type: ignore[arg-type]
        plugins=[RLSPlugin(POLICIES, native_postgres=native), *plugins],
    )
    orm.relate(
        has_many(projects, "rls_tasks", tasks, foreign_key=["project_id"]),
        many_to_many(projects, "labels", labels, through=project_labels),
    )
    return orm
