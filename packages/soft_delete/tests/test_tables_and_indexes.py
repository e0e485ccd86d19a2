"""Which tables are filtered, the soft-delete unique index, and upserts meeting deleted rows."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from soft_delete_support import audit_logs, memberships, migrations_table, posts, tags, users
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import InvalidQueryError, UniqueConstraintError
from kysera.repository import Orm, PluginError, PluginRegistry, QueryContext, create_orm
from kysera.soft_delete import SoftDeletePlugin, soft_delete_unique_index


async def test_a_deleted_rows_unique_value_can_be_used_again(orm: Orm) -> None:
    repo = orm.repository(users)
    first = await repo.create({"email": "ann@example.com", "name": "ann"})
    with pytest.raises(UniqueConstraintError):
        await repo.create({"email": "ann@example.com", "name": "ann again"})

    await repo.soft_delete(first["id"])
    second = await repo.create({"email": "ann@example.com", "name": "ann again"})
    assert second["id"] != first["id"]
    # Restoring the first would make two live rows share the email: refused.
    with pytest.raises(UniqueConstraintError):
        await repo.restore(first["id"])
    await repo.soft_delete(second["id"])  # two deleted rows may share it too
    assert len(await repo.find_deleted({"email": "ann@example.com"})) == 2


def test_unique_index_shapes() -> None:
    table = sa.Table(
        "sd_shape",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(50)),
        sa.Column("removed", sa.DateTime),
    )
    index = soft_delete_unique_index(table, "email", column="removed")
    assert index in table.indexes
    assert index.name == "uq_sd_shape_email_live"
    assert index.unique
    assert str(index.dialect_options["postgresql"]["where"]) == "sd_shape.removed IS NULL"
    with pytest.raises(InvalidQueryError, match="unknown column 'mail'"):
        soft_delete_unique_index(table, "mail", column="removed")
    with pytest.raises(InvalidQueryError, match="at least one column"):
        soft_delete_unique_index(table, column="removed")


async def test_audit_and_migrations_tables_are_never_filtered(orm: Orm) -> None:
    for table in (audit_logs, migrations_table):
        repo = orm.repository(table)
        assert not hasattr(repo, "soft_delete")
        text_column = list(table.c.keys())[1]  # "note" / "name"
        await repo.create({"id": 1, text_column: "x"})
        await orm.execute(sa.update(table).values(deleted_at=sa.func.current_timestamp()))
        assert await repo.count() == 1
        assert len((await orm.execute(sa.select(table))).all()) == 1


async def test_tables_and_exclude_tables(engine: AsyncEngine) -> None:
    only_users = await create_orm(engine, plugins=[SoftDeletePlugin(tables=["sd_users"])])
    assert hasattr(only_users.repository(users), "soft_delete")
    assert not hasattr(only_users.repository(posts), "soft_delete")

    not_posts = await create_orm(engine, plugins=[SoftDeletePlugin(exclude_tables=["sd_posts"])])
    assert hasattr(not_posts.repository(users), "soft_delete")
    assert not hasattr(not_posts.repository(posts), "soft_delete")

    user = await only_users.repository(users).create({"email": "a@example.com", "name": "a"})
    post_repo = only_users.repository(posts)
    post = await post_repo.create({"user_id": user["id"], "title": "t"})
    await only_users.execute(
        sa.update(posts)
        .where(posts.c.id == post["id"])
        .values(deleted_at=sa.func.current_timestamp())
    )
    assert await post_repo.count() == 1  # sd_posts is not soft-deletable for this ORM

    listed_without_column = await create_orm(engine, plugins=[SoftDeletePlugin(tables=["sd_tags"])])

    with pytest.raises(PluginError, match="'sd_tags' is listed in tables= but has no 'deleted_at'"):
        listed_without_column.repository(tags)
    with pytest.raises(TypeError, match="list of table names"):
        SoftDeletePlugin(tables="sd_users")


def test_an_audit_plugin_with_its_own_table_name_is_excluded() -> None:
    class FakeAudit:
        name = "audit"
        table = "sd_history"

    history = sa.Table(
        "sd_history",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("deleted_at", sa.DateTime),
    )
    plugin = SoftDeletePlugin()
    registry = PluginRegistry([plugin, FakeAudit()])
    statement = sa.select(history)
    assert registry.intercept(QueryContext("select", history, statement)) is not statement

    class FakeOrm:
        plugins = registry.plugins

    registry.configure(FakeOrm())
    assert registry.intercept(QueryContext("select", history, statement)) is statement


def test_statements_the_plugin_builds() -> None:
    registry = PluginRegistry([SoftDeletePlugin()])

    def intercept(operation, statement, table=users, **options):  # type: ignore[no-untyped-def]
        return registry.intercept(QueryContext(operation, table, statement, options))

    select_all = sa.select(users)
    filtered = intercept("select", select_all)
    assert str(filtered).endswith("WHERE sd_users.deleted_at IS NULL")
    assert intercept("select", select_all) is filtered  # reused, not rebuilt
    assert intercept("select", select_all, include_deleted=True) is select_all
    assert "deleted_at IS NULL" in str(intercept("update", sa.update(users).values(name="x")))
    delete = sa.delete(users)
    assert intercept("delete", delete) is delete
    insert = sa.insert(users)
    assert intercept("insert", insert) is insert

    joined = sa.select(users.c.name, posts.c.title).outerjoin_from(users, posts)
    sql = " ".join(str(intercept("select", joined, table=None)).split())
    assert (
        "LEFT OUTER JOIN sd_posts ON sd_users.id = sd_posts.user_id AND sd_posts.deleted_at IS NULL"
        in sql
    )
    assert sql.endswith("WHERE sd_users.deleted_at IS NULL")
    no_deletable_table = sa.select(tags)
    assert intercept("select", no_deletable_table, table=None) is no_deletable_table
    union = sa.union(sa.select(users.c.id), sa.select(posts.c.id))
    assert intercept("select", union, table=None) is union  # set operations are left alone


async def test_upsert_meeting_a_deleted_row_updates_it_and_returns_it(orm: Orm) -> None:
    repo = orm.repository(memberships)
    await repo.create({"org": "acme", "user_id": 1, "role": "dev"})
    await repo.soft_delete(("acme", 1))
    row = await repo.upsert({"org": "acme", "user_id": 1, "role": "admin"})
    assert (row["role"], row["deleted_at"] is not None) == ("admin", True)
    assert await repo.count() == 0
