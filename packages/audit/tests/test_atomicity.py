"""Log rows commit and roll back together with the change they describe."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from audit_support import AUDIT_TABLE, accounts
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.audit import AuditPlugin, audit_log_table
from kysera.core import (
    DatabaseError,
    NotFoundError,
    NotNullError,
    UniqueConstraintError,
    capture_queries,
)
from kysera.repository import create_orm

log = audit_log_table(sa.MetaData(), AUDIT_TABLE)


async def log_count(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(
            (await connection.execute(sa.select(sa.func.count()).select_from(log))).scalar_one()
        )


async def names(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        result = await connection.execute(sa.select(accounts.c.name).order_by(accounts.c.id))
        return list(result.scalars())


async def test_a_rolled_back_transaction_leaves_neither_change_nor_log(engine: AsyncEngine) -> None:
    orm = await create_orm(engine, plugins=[AuditPlugin(table=AUDIT_TABLE)])
    repo = orm.repository(accounts)

    async def change_then_fail() -> None:
        async with orm.transaction():
            row = await repo.create({"email": "r@example.com", "name": "R"})
            await repo.update(row["id"], {"name": "S"})
            assert await log_count(engine) == 0  # not visible outside yet
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError, match="abort"):
        await change_then_fail()
    assert await names(engine) == []
    assert await log_count(engine) == 0


async def test_a_committed_transaction_keeps_both(engine: AsyncEngine) -> None:
    orm = await create_orm(engine, plugins=[AuditPlugin(table=AUDIT_TABLE)])
    repo = orm.repository(accounts)
    async with orm.transaction():
        row = await repo.create({"email": "c@example.com", "name": "C"})
        await repo.delete(row["id"])
    assert await log_count(engine) == 2


async def test_a_failed_write_on_an_engine_logs_nothing(engine: AsyncEngine) -> None:
    orm = await create_orm(engine, plugins=[AuditPlugin(table=AUDIT_TABLE)])
    repo = orm.repository(accounts)
    a = await repo.create({"email": "a@example.com", "name": "A"})
    b = await repo.create({"email": "b@example.com", "name": "B"})

    with pytest.raises(UniqueConstraintError):
        await repo.bulk_update([(a["id"], {"name": "A2"}), (b["id"], {"email": "a@example.com"})])
    with pytest.raises(NotFoundError):
        await repo.bulk_update([(a["id"], {"name": "A3"}), (999_999, {"name": "nobody"})])
    with pytest.raises(NotFoundError):
        await repo.update(999_999, {"name": "nobody"})
    with pytest.raises(NotNullError):
        await repo.create({"name": "no email"})
    with pytest.raises(UniqueConstraintError):
        await repo.create_many(
            [{"email": "n@example.com", "name": "N"}, {"email": "a@example.com", "name": "dup"}]
        )

    assert await names(engine) == ["A", "B"]
    assert await log_count(engine) == 2  # the two inserts


async def test_a_failing_log_insert_undoes_the_change(engine: AsyncEngine) -> None:
    """If the log row cannot be written, the change is not kept either."""
    orm = await create_orm(engine, plugins=[AuditPlugin(table="au_missing_audit_table")])
    repo = orm.repository(accounts)
    with pytest.raises(DatabaseError):
        await repo.create({"email": "lost@example.com", "name": "Lost"})
    assert await names(engine) == []

    async with engine.connect() as connection, connection.begin():
        plain = (await create_orm(connection)).repository(accounts)
        await plain.create({"email": "kept@example.com", "name": "Kept"})
        with pytest.raises(DatabaseError):
            await repo.with_executor(connection).create({"email": "x@example.com", "name": "X"})
        if engine.dialect.name == "postgresql":
            # One failed statement aborts a PostgreSQL transaction, audited or not.
            await connection.rollback()
    assert await names(engine) == ([] if engine.dialect.name == "postgresql" else ["Kept"])


async def statements_per_path(engine: AsyncEngine, rows: int, *, audited: bool) -> dict[str, int]:
    """How many statements each write path sends for ``rows`` rows."""
    plugins = [AuditPlugin(table=AUDIT_TABLE)] if audited else []
    repo = (await create_orm(engine, plugins=plugins)).repository(accounts)
    data = [{"email": f"u{i}@example.com", "name": f"U{i}"} for i in range(rows)]
    counts: dict[str, int] = {}
    with capture_queries(engine) as statements:
        created = await repo.create_many(data)
    counts["create_many"] = statements.count
    ids = [row["id"] for row in created]
    with capture_queries(engine) as statements:
        await repo.bulk_update([(id, {"name": f"V{id}"}) for id in ids])
    counts["bulk_update"] = statements.count
    with capture_queries(engine) as statements:
        await repo.update_many({"id": {"$in": ids}}, {"name": "W"})
    counts["update_many"] = statements.count
    with capture_queries(engine) as statements:
        await repo.upsert_many([{**row, "name": "X"} for row in created])
    counts["upsert_many"] = statements.count
    with capture_queries(engine) as statements:
        await repo.delete_many(ids)
    counts["delete_many"] = statements.count
    return counts


async def test_bulk_paths_send_a_constant_number_of_statements(engine: AsyncEngine) -> None:
    small = await statements_per_path(engine, 10, audited=True)
    large = await statements_per_path(engine, 1000, audited=True)
    assert await log_count(engine) == 5 * 1010

    # SQLite and MySQL insert row by row without the audit too (RETURNING order / no
    # RETURNING); everything else is constant, audited or not.
    constant = ["bulk_update", "update_many", "upsert_many", "delete_many"]
    if engine.dialect.name == "postgresql":
        constant.append("create_many")
    assert {path: large[path] for path in constant} == {path: small[path] for path in constant}
    # What the audit adds to each path is the same for 10 rows and for 1,000.
    plain_small = await statements_per_path(engine, 10, audited=False)
    plain_large = await statements_per_path(engine, 1000, audited=False)
    added_small = {path: small[path] - plain_small[path] for path in small}
    added_large = {path: large[path] - plain_large[path] for path in large}
    assert added_small == added_large
    assert max(added_small.values()) <= 6


async def test_concurrent_tasks_keep_their_own_actor(engine: AsyncEngine) -> None:
    from kysera.audit import audit_context

    orm = await create_orm(engine, plugins=[AuditPlugin(table=AUDIT_TABLE)])
    repo = orm.repository(accounts)
    rows = await repo.create_many([{"email": f"t{i}@example.com", "name": "t"} for i in range(100)])

    async def work(index: int, row: dict[str, Any]) -> None:
        with audit_context(user_id=f"user-{index}", task=index):
            await asyncio.sleep(0)
            await repo.update(row["id"], {"name": f"by {index}"})
            await asyncio.sleep(0)
            await repo.update(row["id"], {"name": f"again by {index}"})

    await asyncio.gather(*(work(index, row) for index, row in enumerate(rows)))

    updates = await repo.get_table_audit_logs(operation="UPDATE")
    assert len(updates) == 200
    for entry in updates:
        assert entry.new_values is not None
        index = int(entry.new_values["name"].rsplit(" ", 1)[1])
        assert entry.changed_by == f"user-{index}"
        assert entry.metadata == {"task": index}


async def test_an_audited_create_costs_few_statements(engine: AsyncEngine) -> None:
    orm = await create_orm(engine, plugins=[AuditPlugin(table=AUDIT_TABLE)])
    repo = orm.repository(accounts)
    with capture_queries(engine) as statements:
        row = await repo.create({"email": "one@example.com", "name": "One"})
    # PostgreSQL: the insert and its log row are one statement (and need no transaction).
    assert statements.count == 1 if engine.dialect.name == "postgresql" else statements.count >= 2
    assert [e.operation for e in await repo.get_audit_history(row["id"])] == ["INSERT"]

    async with orm.transaction():  # inside a transaction too
        with capture_queries(engine) as statements:
            await repo.create({"email": "two@example.com", "name": "Two"})
    if engine.dialect.name == "postgresql":
        assert statements.count == 1
    assert await log_count(engine) == 2
