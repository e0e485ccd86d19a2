"""A connection killed in the middle of an audited bulk update leaves nothing behind."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from audit_support import AUDIT_TABLE, accounts
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_only

from kysera.audit import AuditPlugin, audit_log_table
from kysera.core import DatabaseError
from kysera.core.pytest_plugin import create_test_engine
from kysera.repository import create_orm

log = audit_log_table(sa.MetaData(), AUDIT_TABLE)


@pytest.mark.kysera_databases("postgresql")
async def test_killing_the_connection_mid_bulk_update_rolls_everything_back(
    engine: AsyncEngine, kysera_database_url: str
) -> None:
    orm = await create_orm(engine, plugins=[AuditPlugin(table=AUDIT_TABLE)])
    repo = orm.repository(accounts)
    rows = await repo.create_many(
        [{"email": f"k{i}@example.com", "name": "before"} for i in range(50)]
    )
    killer = create_test_engine(kysera_database_url)
    killed: list[int] = []

    async def terminate(pid: int) -> None:
        async with killer.connect() as connection:
            await connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        killed.append(pid)

    def kill_before_logging(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # The rows are updated (in the open transaction); the log rows are next.
        if statement.startswith(f"INSERT INTO {AUDIT_TABLE}") and not killed:
            await_only(terminate(conn.connection.driver_connection.get_server_pid()))

    sa.event.listen(engine.sync_engine, "before_cursor_execute", kill_before_logging)
    try:
        with pytest.raises(DatabaseError):
            await repo.bulk_update([(row["id"], {"name": "after"}) for row in rows])
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", kill_before_logging)
        await killer.dispose()

    assert len(killed) == 1
    async with engine.connect() as connection:
        names = set((await connection.execute(sa.select(accounts.c.name))).scalars())
        updates = (
            await connection.execute(
                sa.select(sa.func.count()).select_from(log).where(log.c.operation == "UPDATE")
            )
        ).scalar_one()
    assert names == {"before"}
    assert updates == 0
