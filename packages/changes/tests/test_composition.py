"""The change feed next to the audit, soft delete and timestamps plugins."""

from __future__ import annotations

from typing import Any

from changes_support import AUDIT, CHANGES, articles
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.audit import AuditPlugin
from kysera.changes import ChangeFeedPlugin, read_changes
from kysera.repository import create_orm
from kysera.soft_delete import SoftDeletePlugin
from kysera.timestamps import TimestampsPlugin


async def test_every_plugin_sees_every_write_once(engine: AsyncEngine) -> None:
    orm = await create_orm(
        engine,
        plugins=[
            AuditPlugin(table=AUDIT),
            ChangeFeedPlugin(table=CHANGES),
            SoftDeletePlugin(),
            TimestampsPlugin(),
        ],
    )
    repo: Any = orm.repository(articles)
    row = await repo.create({"title": "a"})
    await repo.update(row["id"], {"title": "b"})
    await repo.soft_delete(row["id"])
    await repo.restore(row["id"])

    changes = await read_changes(engine, table=CHANGES)
    assert [c.operation for c in changes] == ["INSERT", "UPDATE", "SOFT_DELETE", "RESTORE"]
    # Timestamps runs inside the change feed: the columns it sets are recorded.
    assert changes[0].columns == ("created_at", "title", "updated_at")
    assert changes[1].columns == ("title", "updated_at")
    assert "deleted_at" in changes[2].columns
    history = await repo.get_audit_history(row["id"])
    assert [e.operation for e in history] == ["RESTORE", "SOFT_DELETE", "UPDATE", "INSERT"]
    # Neither plugin records the other's table.
    assert {c.table for c in changes} == {"cf_articles"}
