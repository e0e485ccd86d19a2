"""Audit together with soft delete and timestamps: every change logged once, as it happened.

Needs kysera-soft-delete and kysera-timestamps, test-only requirements of this package
([dependency-groups] test in pyproject.toml).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from audit_support import AUDIT_TABLE
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.audit import AuditPlugin, audit_context
from kysera.core import NotFoundError
from kysera.repository import PluginError, QueryContext, create_orm, hookimpl

# Test-only requirements ([dependency-groups] test in pyproject.toml, installed by nox).
from kysera.soft_delete import SoftDeletePlugin
from kysera.timestamps import TimestampsPlugin, UTCDateTime

metadata = sa.MetaData()
posts = sa.Table(
    "au_cp_posts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("title", sa.String(50), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("deleted_at", UTCDateTime, nullable=True),
)


@pytest_asyncio.fixture(loop_scope="session")
async def posts_engine(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    async with engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
    yield engine
    async with engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)


async def repository(engine: AsyncEngine, **soft_delete_options: Any) -> Any:
    orm = await create_orm(
        engine,
        # Registered in any order: audit is outermost by priority.
        plugins=[
            TimestampsPlugin(),
            SoftDeletePlugin(**soft_delete_options),
            AuditPlugin(table=AUDIT_TABLE),
        ],
    )
    assert orm.registry.names == ("audit", "soft_delete", "timestamps")
    return orm.repository(posts)


async def test_soft_delete_and_restore_log_their_own_operations(posts_engine: AsyncEngine) -> None:
    repo = await repository(posts_engine)
    post = await repo.create({"title": "Hello"})
    with audit_context(user_id="mod"):
        deleted = await repo.soft_delete(post["id"])
        restored = await repo.restore(post["id"])

    history = await repo.get_audit_history(post["id"])
    assert [e.operation for e in history] == ["RESTORE", "SOFT_DELETE", "INSERT"]
    restore, soft, insert = history
    assert insert.new_values == post
    assert soft.old_values == post
    assert soft.new_values == deleted
    assert sorted(soft.changed_fields) == ["deleted_at", "updated_at"]
    # The old values of a restore are those of the deleted row (read without the filter).
    assert restore.old_values == deleted
    assert restore.new_values == restored
    assert restored["deleted_at"] is None
    assert {e.changed_by for e in (restore, soft)} == {"mod"}


async def test_many_at_once_logs_one_row_per_changed_row(posts_engine: AsyncEngine) -> None:
    repo = await repository(posts_engine)
    a, b, c = await repo.create_many([{"title": t} for t in "abc"])
    await repo.soft_delete(a["id"])

    assert await repo.soft_delete_many([a["id"], b["id"], c["id"]]) == 2  # a already deleted
    soft = await repo.get_table_audit_logs(operation="SOFT_DELETE")
    assert sorted(e.entity_id for e in soft) == sorted(str(r["id"]) for r in (a, b, c))

    assert await repo.restore_many([a["id"], b["id"]]) == 2
    restores = await repo.get_table_audit_logs(operation="RESTORE")
    assert sorted(e.entity_id for e in restores) == sorted([str(a["id"]), str(b["id"])])


async def test_hard_delete_and_replaced_delete(posts_engine: AsyncEngine) -> None:
    repo = await repository(posts_engine)
    post, kept = await repo.create_many([{"title": "gone"}, {"title": "kept"}])
    await repo.soft_delete(post["id"])
    assert await repo.hard_delete(post["id"])
    assert [e.operation for e in await repo.get_audit_history(post["id"])] == [
        "DELETE",
        "SOFT_DELETE",
        "INSERT",
    ]

    replacing = await repository(posts_engine, replace_delete=True)
    assert await replacing.delete(kept["id"]) is True
    assert await replacing.delete_many([kept["id"]]) == 0  # already deleted: nothing logged
    history = await replacing.get_audit_history(kept["id"])
    assert [e.operation for e in history] == ["SOFT_DELETE", "INSERT"]


async def test_restore_from_a_soft_delete_entry(posts_engine: AsyncEngine) -> None:
    repo = await repository(posts_engine)
    post = await repo.create({"title": "back"})
    await repo.soft_delete(post["id"])
    entry = (await repo.get_audit_history(post["id"]))[0]

    restored = await repo.restore_from_audit(entry.id)

    assert restored["deleted_at"] is None
    assert await repo.find_by_id(post["id"]) is not None
    assert (await repo.get_audit_history(post["id"]))[0].operation == "RESTORE"


async def test_writes_to_deleted_rows_fail_and_log_nothing(posts_engine: AsyncEngine) -> None:
    repo = await repository(posts_engine)
    post = await repo.create({"title": "x"})
    await repo.soft_delete(post["id"])
    with pytest.raises(NotFoundError):
        await repo.update(post["id"], {"title": "y"})
    with pytest.raises(NotFoundError):
        await repo.soft_delete(post["id"])
    assert [e.operation for e in await repo.get_audit_history(post["id"])] == [
        "SOFT_DELETE",
        "INSERT",
    ]


async def test_timestamps_are_part_of_the_logged_values(posts_engine: AsyncEngine) -> None:
    repo = await repository(posts_engine)
    post = await repo.create({"title": "t"})
    updated = await repo.update(post["id"], {"title": "u"})
    update = (await repo.get_audit_history(post["id"]))[0]
    assert update.new_values == updated
    assert sorted(update.changed_fields) == ["title", "updated_at"]
    assert update.old_values is not None
    assert update.old_values["created_at"] == post["created_at"]


async def test_a_rolled_back_soft_delete_leaves_no_log(posts_engine: AsyncEngine) -> None:
    repo = await repository(posts_engine)
    post = await repo.create({"title": "r"})

    async def soft_delete_then_fail() -> None:
        async with repo.orm.transaction():
            await repo.soft_delete(post["id"])
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError, match="abort"):
        await soft_delete_then_fail()
    assert await repo.find_by_id(post["id"]) is not None
    assert [e.operation for e in await repo.get_audit_history(post["id"])] == ["INSERT"]


async def test_soft_delete_outside_audit_is_refused(posts_engine: AsyncEngine) -> None:
    outer_soft_delete = SoftDeletePlugin()
    outer_soft_delete.priority = 2000
    with pytest.raises(PluginError, match="must come before 'soft_delete'") as raised:
        await create_orm(posts_engine, plugins=[outer_soft_delete, AuditPlugin(table=AUDIT_TABLE)])
    assert raised.value.plugins == ("audit", "soft_delete")


class HideDrafts:
    """A third-party plugin: reads do not see posts titled "draft", except the read-back of
    rows a change has just written (`QueryContext.read_back`)."""

    name = "hide-drafts"

    @hookimpl
    def kysera_intercept_query(self, context: QueryContext) -> Any:
        if context.table is not posts or context.operation not in ("select", "count"):
            return None
        if context.read_back:
            return None
        return context.statement.where(posts.c.title != "draft")  # type: ignore[attr-defined]


async def test_changes_that_hide_their_rows_are_still_logged(posts_engine: AsyncEngine) -> None:
    orm = await create_orm(
        posts_engine,
        plugins=[
            TimestampsPlugin(),
            SoftDeletePlugin(),
            AuditPlugin(table=AUDIT_TABLE),
            HideDrafts(),
        ],
    )
    repo: Any = orm.repository(posts)
    a, b, c, d = await repo.create_many([{"title": t} for t in "abcd"])

    assert await repo.update_many({"id": {"$in": [a["id"], b["id"]]}}, {"title": "draft"}) == 2
    assert (await repo.update(c["id"], {"title": "draft"}))["title"] == "draft"
    deleted = await repo.soft_delete(d["id"])
    assert deleted["deleted_at"] is not None
    assert await repo.count() == 0

    updates = await repo.get_table_audit_logs(operation="UPDATE")
    assert sorted((e.entity_id, e.new_values["title"]) for e in updates) == [
        (str(row["id"]), "draft") for row in (a, b, c)
    ]
    [soft_deleted] = await repo.get_table_audit_logs(operation="SOFT_DELETE")
    assert soft_deleted.entity_id == str(d["id"])
