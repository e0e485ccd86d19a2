"""Row-level security together with soft delete, timestamps and audit, registered in every
order: each plugin does its job, and no path reaches another tenant's rows.

Needs kysera-soft-delete, kysera-timestamps and kysera-audit, test-only requirements of this
package ([dependency-groups] test in pyproject.toml).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.audit import AuditPlugin, audit_log_table
from kysera.core import NotFoundError
from kysera.core.testing import snapshot_table
from kysera.repository import create_orm
from kysera.rls import RLSPlugin, current_user_id, policy, rls_context
from kysera.soft_delete import SoftDeletePlugin
from kysera.timestamps import TimestampsPlugin, UTCDateTime

metadata = sa.MetaData()
notes = sa.Table(
    "rls_notes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("body", sa.String(50), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("deleted_at", UTCDateTime, nullable=True),
)
audit_logs = audit_log_table(metadata, "rls_audit_logs")


@pytest_asyncio.fixture(loop_scope="session")
async def notes_engine(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    async with engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
    yield engine
    async with engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)


def plugin_orders() -> list[tuple[str, ...]]:
    return list(itertools.permutations(("rls", "soft_delete", "timestamps", "audit")))


def make_plugin(name: str) -> Any:
    if name == "rls":
        return RLSPlugin(
            {"rls_notes": [policy.tenant("tenant_id")], "rls_audit_logs": [policy.public()]}
        )
    if name == "soft_delete":
        return SoftDeletePlugin()
    if name == "timestamps":
        return TimestampsPlugin()
    return AuditPlugin(table="rls_audit_logs", get_user_id=current_user_id)


@pytest.mark.parametrize("order", plugin_orders(), ids="-".join)
async def test_plugins_in_any_order_keep_tenants_apart(
    notes_engine: AsyncEngine, order: tuple[str, ...]
) -> None:
    orm = await create_orm(notes_engine, plugins=[make_plugin(name) for name in order])
    repo: Any = orm.repository(notes)
    async with rls_context(tenant_id=1, user_id=7):
        mine = await repo.create({"body": "mine"})
    async with rls_context(tenant_id=2, user_id=8):
        theirs = await repo.create({"body": "theirs"})
        with pytest.raises(NotFoundError):
            await repo.soft_delete(mine["id"])
        with pytest.raises(NotFoundError):
            await repo.update(mine["id"], {"body": "changed"})
        assert [row["body"] for row in await repo.find()] == ["theirs"]
        await repo.soft_delete(theirs["id"])
        assert await repo.find() == []
        assert len(await repo.find(include_deleted=True)) == 1
    async with rls_context(tenant_id=1, user_id=7):
        with pytest.raises(NotFoundError):  # tenant 2's deleted row is not tenant 1's to restore
            await repo.restore(theirs["id"])
        assert [row["body"] for row in await repo.find()] == ["mine"]
        restored_elsewhere = await repo.find(include_deleted=True)
        assert [row["body"] for row in restored_elsewhere] == ["mine"]
    stored = {row["body"]: row for row in await snapshot_table(notes_engine, notes)}
    assert stored["mine"]["deleted_at"] is None
    assert stored["mine"]["created_at"] is not None
    assert stored["theirs"]["deleted_at"] is not None
    logs = await snapshot_table(notes_engine, audit_logs)
    assert {(log["operation"], log["changed_by"]) for log in logs} == {
        ("INSERT", "7"),
        ("INSERT", "8"),
        ("SOFT_DELETE", "8"),
    }
    async with notes_engine.begin() as connection:
        await connection.execute(notes.delete())
        await connection.execute(audit_logs.delete())
