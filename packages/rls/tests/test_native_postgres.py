"""``native_postgres=True``: PostgreSQL itself confines a non-owner role to the context's
tenant, through transaction-local settings only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import sqlalchemy as sa
from rls_support import POLICIES, metadata, projects, rls_orm
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import BadRequestError, DatabaseError, capture_queries
from kysera.core.pytest_plugin import create_test_engine
from kysera.repository import create_orm
from kysera.rls import RLSPlugin, postgres_policies, rls_context, system_context

pytestmark = pytest.mark.kysera_databases("postgresql")

APP_ROLE = "kysera_rls_app"  # not the tables' owner, not a superuser, no BYPASSRLS


@pytest_asyncio.fixture(loop_scope="session")
async def app_engine(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """An engine logged in as the application role, with the policies installed; one
    pooled connection, so every transaction reuses it."""
    tables = ", ".join(table.name for table in metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(
            sa.text(
                f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') "
                f"THEN CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS; END IF; END $$"
            )
        )
        await connection.execute(sa.text(f"GRANT ALL ON {tables} TO {APP_ROLE}"))
        await connection.execute(
            sa.text(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")
        )
        for statement in postgres_policies(metadata, POLICIES):
            await connection.execute(sa.text(statement))
    url = engine.url.set(username=APP_ROLE, password=None)
    app = create_test_engine(url.render_as_string(hide_password=False), pool_size=1, max_overflow=0)
    try:
        yield app
    finally:
        await app.dispose()
        async with engine.begin() as connection:
            for table in ("rls_projects", "rls_tasks"):
                await connection.execute(
                    sa.text(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
                )
                await connection.execute(sa.text(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY"))
                await connection.execute(sa.text(f"DROP POLICY IF EXISTS kysera_tenant ON {table}"))


async def seed(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:  # as the owner (a superuser here)
        await connection.execute(
            projects.insert(),
            [{"tenant_id": t, "name": f"p{t}-{n}"} for t in (1, 2) for n in range(3)],
        )


async def test_the_database_confines_the_app_role_to_the_contexts_tenant(
    engine: AsyncEngine, app_engine: AsyncEngine
) -> None:
    await seed(engine)
    orm = await rls_orm(app_engine, native=True)
    count_all = sa.text("SELECT tenant_id FROM rls_projects")  # text: no application scoping
    async with rls_context(tenant_id=1):
        assert {row[0] for row in (await orm.execute(count_all)).all()} == {1}
        assert len(await orm.repository(projects).find()) == 3
        made = await orm.repository(projects).create({"name": "native"})
        assert made["tenant_id"] == 1
        with pytest.raises(DatabaseError):  # WITH CHECK refuses a row of another tenant
            await orm.execute(sa.text("INSERT INTO rls_projects (tenant_id, name) VALUES (2, 'x')"))
    # The same pooled connection, no context: the database shows nothing.
    async with app_engine.connect() as connection:
        assert (
            await connection.execute(sa.text("SELECT count(*) FROM rls_projects"))
        ).scalar() == 0
    async with system_context("test"):
        assert len((await orm.execute(count_all)).all()) == 7


async def test_only_transaction_local_settings_are_sent(
    engine: AsyncEngine, app_engine: AsyncEngine
) -> None:
    await seed(engine)
    orm = await rls_orm(app_engine, native=True)
    repo = orm.repository(projects)
    with capture_queries(app_engine) as captured:
        async with rls_context(tenant_id=2, user_id=5, roles={"member"}):
            await repo.find()
            await repo.find_by_id(1)
            await repo.create({"name": "x"})
            async with orm.transaction():
                await repo.count()
                await repo.update_many({}, {"views": 1})
    sql = [query.sql for query in captured.queries]
    assert not [text for text in sql if text.lstrip().upper().startswith(("SET ", "RESET "))]
    settings = [text for text in sql if "set_config" in text]
    # One per transaction: three single statements and one unit of work.
    assert len(settings) == 4


async def test_native_enforcement_needs_a_transaction_not_yet_begun(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        await connection.begin()
        with pytest.raises(BadRequestError, match="before its connection begins"):
            await create_orm(connection, plugins=[RLSPlugin(POLICIES, native_postgres=True)])
