"""Typing test, checked by ``mypy --strict`` (the root pyproject lists this file; nox -s typecheck).

Audit methods are typed on `AuditRepository[Account]` without a cast; a plain repository
does not pretend to have them.
"""

from __future__ import annotations

from typing import assert_type  # typing.assert_type: Python 3.11+

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.audit import AuditLogEntry, AuditPlugin, AuditRepository
from kysera.repository import Repository, create_orm

accounts_table = sa.Table(
    "accounts",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100)),
)


class Account(BaseModel):
    id: int
    name: str


async def typed_plugin_methods(engine: AsyncEngine) -> None:
    orm = await create_orm(engine, plugins=[AuditPlugin()])
    accounts = orm.repository(
        accounts_table, entity=Account, repository_class=AuditRepository[Account]
    )

    assert_type(accounts, AuditRepository[Account])
    assert_type(await accounts.get_audit_history(1), list[AuditLogEntry])
    assert_type(await accounts.get_audit_history(1, limit=5, offset=5), list[AuditLogEntry])
    assert_type(await accounts.get_audit_log(1), AuditLogEntry | None)
    assert_type(
        await accounts.get_table_audit_logs(operation="UPDATE", user_id=7), list[AuditLogEntry]
    )
    assert_type(await accounts.get_user_changes(7), list[AuditLogEntry])
    assert_type(await accounts.restore_from_audit(1), Account)
    await accounts.get_table_audit_logs(operation="UPSERT")  # type: ignore[arg-type]
    # The repository's own methods keep their entity type.
    assert_type(await accounts.find_by_id(1), Account | None)

    plain = orm.repository(accounts_table, entity=Account)
    assert_type(plain, Repository[Account])
    await plain.get_audit_history(1)  # type: ignore[attr-defined]
