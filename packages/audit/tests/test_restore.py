"""restore_from_audit puts rows back as they were before UPDATE and DELETE entries."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from audit_support import AUDIT_TABLE, accounts, memberships
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.audit import AuditPlugin, AuditRestoreError
from kysera.core import NotFoundError
from kysera.repository import create_orm


async def audited(engine: AsyncEngine, table: Any = accounts, **options: Any) -> Any:
    orm = await create_orm(engine, plugins=[AuditPlugin(table=AUDIT_TABLE, **options)])
    return orm.repository(table)


async def test_restoring_an_update_writes_the_old_values_back(engine: AsyncEngine) -> None:
    repo = await audited(engine)
    row = await repo.create(
        {
            "email": "r@example.com",
            "name": "Ann",
            "balance": Decimal("10.5"),
            "seen_at": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        }
    )
    await repo.update(row["id"], {"name": "Bea", "balance": Decimal("0")})
    update = (await repo.get_audit_history(row["id"]))[0]

    restored = await repo.restore_from_audit(update.id)

    assert restored == row
    assert await repo.get(row["id"]) == row
    latest = (await repo.get_audit_history(row["id"]))[0]
    assert latest.operation == "UPDATE"
    assert sorted(latest.changed_fields) == ["balance", "name"]


async def test_restoring_a_delete_inserts_the_row_again(engine: AsyncEngine) -> None:
    repo = await audited(engine, memberships)
    row = await repo.create({"org_id": 5, "user_id": 6, "role": "owner"})
    await repo.delete((5, 6))
    deletion = (await repo.get_audit_history((5, 6)))[0]

    assert await repo.restore_from_audit(deletion.id) == row
    assert [e.operation for e in await repo.get_audit_history({"org_id": 5, "user_id": 6})] == [
        "INSERT",
        "DELETE",
        "INSERT",
    ]


async def test_inserts_and_entries_without_old_values_cannot_be_restored(
    engine: AsyncEngine,
) -> None:
    repo = await audited(engine)
    row = await repo.create({"email": "i@example.com", "name": "I"})
    [insert] = await repo.get_audit_history(row["id"])
    with pytest.raises(AuditRestoreError, match="is an INSERT") as raised:
        await repo.restore_from_audit(insert.id)
    assert raised.value.audit_id == insert.id

    blind = await audited(engine, capture_old_values=False)
    await blind.update(row["id"], {"name": "J"})
    update = (await blind.get_audit_history(row["id"]))[0]
    with pytest.raises(AuditRestoreError, match="no old values"):
        await blind.restore_from_audit(update.id)
    assert (await repo.get(row["id"]))["name"] == "J"


async def test_unknown_entries_and_vanished_rows_raise_not_found(engine: AsyncEngine) -> None:
    repo = await audited(engine)
    with pytest.raises(NotFoundError):
        await repo.restore_from_audit(10**9)

    row = await repo.create({"email": "v@example.com", "name": "V"})
    await repo.update(row["id"], {"name": "W"})
    update = (await repo.get_audit_history(row["id"]))[0]
    await repo.delete(row["id"])
    with pytest.raises(NotFoundError):
        await repo.restore_from_audit(update.id)
    assert len(await repo.get_audit_history(row["id"])) == 3  # nothing logged by the failure


async def test_a_typed_audit_repository_has_the_methods_at_run_time(engine: AsyncEngine) -> None:
    from audit_support import Account

    from kysera.audit import AuditRepository
    from kysera.core import BadRequestError

    orm = await create_orm(engine, plugins=[AuditPlugin(table=AUDIT_TABLE)])
    repo = orm.repository(accounts, entity=Account, repository_class=AuditRepository[Account])
    created = await repo.create({"email": "typed@example.com", "name": "Ann"})
    await repo.update(created.id, {"name": "Bea"})

    assert isinstance(repo, AuditRepository)
    history = await repo.get_audit_history(created.id)
    assert [entry.operation for entry in history] == ["UPDATE", "INSERT"]
    restored = await repo.restore_from_audit(history[0].id)
    assert isinstance(restored, Account)
    assert restored.name == "Ann"

    # Without the plugin there are no such methods: refused when the repository is built.
    plain = await create_orm(engine)
    with pytest.raises(BadRequestError, match="needs an ORM with AuditPlugin"):
        plain.repository(accounts, entity=Account, repository_class=AuditRepository[Account])
    # A table the plugin leaves alone is refused too.
    partial = await create_orm(
        engine, plugins=[AuditPlugin(table=AUDIT_TABLE, exclude_tables=[accounts.name])]
    )
    with pytest.raises(BadRequestError, match="needs an ORM with AuditPlugin"):
        partial.repository(accounts, entity=Account, repository_class=AuditRepository[Account])
