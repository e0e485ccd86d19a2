"""Concurrent audited writes (issue 15 item 6): retried on deadlock like the repository's own
writes, and logged as they really happened.

Twenty concurrent audited upserts of one key used to fail with DeadlockError on MariaDB (19
of 20), and on PostgreSQL to leave up to twenty INSERT log entries for one row, the
overwritten values never reaching the history. Now the history of the row is one INSERT
followed by UPDATEs whose old values are the previous entry's new values.
"""

from __future__ import annotations

import asyncio
import itertools

import sqlalchemy as sa
from audit_support import AUDIT_TABLE, accounts
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.audit import AuditPlugin
from kysera.repository import create_orm

TASKS = 20


async def test_concurrent_upserts_of_one_key_log_one_insert_then_updates(
    engine: AsyncEngine,
) -> None:
    orm = await create_orm(engine, plugins=[AuditPlugin(table=AUDIT_TABLE)])
    repo = orm.repository(accounts)

    async def upsert(index: int) -> None:
        await asyncio.sleep(0)
        await repo.upsert(
            {"email": "same@example.com", "name": f"name {index}"}, conflict=["email"]
        )

    await asyncio.gather(*(upsert(index) for index in range(TASKS)))

    rows = await repo.find_all()
    assert len(rows) == 1
    history = list(reversed(await repo.get_audit_history(rows[0]["id"])))  # oldest first
    assert [entry.operation for entry in history] == ["INSERT"] + ["UPDATE"] * (TASKS - 1)
    assert history[0].old_values is None
    for previous, entry in itertools.pairwise(history):
        assert entry.old_values is not None
        assert previous.new_values is not None
        assert entry.old_values["name"] == previous.new_values["name"]
    assert history[-1].new_values is not None
    assert history[-1].new_values["name"] == rows[0]["name"]
    names = {entry.new_values["name"] for entry in history if entry.new_values is not None}
    assert names == {f"name {index}" for index in range(TASKS)}


async def test_concurrent_audited_updates_in_opposite_orders_all_commit(
    engine: AsyncEngine,
) -> None:
    # bulk_update locks its rows in the order given: two orders deadlock, and the audited
    # write, in a transaction of its own, is run again like the repository's own writes.
    orm = await create_orm(engine, plugins=[AuditPlugin(table=AUDIT_TABLE)])
    repo = orm.repository(accounts)
    first = await repo.create({"email": "a@example.com", "name": "a"})
    second = await repo.create({"email": "b@example.com", "name": "b"})

    async def swap(index: int) -> None:
        pair = [first["id"], second["id"]]
        if index % 2:
            pair.reverse()
        await repo.bulk_update([(key, {"name": f"by {index}"}) for key in pair])

    await asyncio.gather(*(swap(index) for index in range(TASKS)))

    async with engine.connect() as connection:
        log = sa.table("au_audit_logs", sa.column("operation"))
        count = await connection.execute(
            sa.select(sa.func.count()).select_from(log).where(log.c.operation == "UPDATE")
        )
        assert count.scalar_one() >= TASKS  # every call logged its change


async def test_an_audited_upsert_of_40_001_rows(engine: AsyncEngine) -> None:
    # More conflict keys than PostgreSQL (32,767) takes as parameters of one statement.
    orm = await create_orm(engine, plugins=[AuditPlugin(table=AUDIT_TABLE)])
    repo = orm.repository(accounts)
    rows = [{"email": f"u{n}@example.com", "name": "u"} for n in range(40_001)]

    assert len(await repo.upsert_many(rows, conflict=["email"])) == 40_001
    stored = await repo.upsert_many([{**row, "name": "v"} for row in rows], conflict=["email"])

    assert {row["name"] for row in stored} == {"v"}
    log = sa.table("au_audit_logs", sa.column("operation"))
    async with engine.connect() as connection:
        counts = await connection.execute(
            sa.select(log.c.operation, sa.func.count()).group_by(log.c.operation)
        )
        assert {row[0]: row[1] for row in counts} == {"INSERT": 40_001, "UPDATE": 40_001}
