"""Values round-trip through the JSON columns; the query methods filter and order stably."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from audit_support import AUDIT_TABLE, accounts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.audit import AuditPlugin, audit_context, audit_log_table, purge_audit_logs
from kysera.core import InvalidQueryError
from kysera.repository import create_orm


def binary(engine: AsyncEngine, value: bytes) -> bytes | None:
    """``value``, except on aiomysql: aiomysql 0.3.2 with PyMySQL 1.2 cannot send bytes at all
    (``TypeError: 'str' object is not callable`` in ``Connection.escape``), audited or not;
    asyncmy, Kysera's MySQL driver, can."""
    return None if engine.dialect.driver == "aiomysql" else value


async def audited(engine: AsyncEngine) -> Any:
    orm = await create_orm(engine, plugins=[AuditPlugin(table=AUDIT_TABLE)])
    return orm.repository(accounts)


async def test_datetimes_decimals_uuids_and_bytes_round_trip(engine: AsyncEngine) -> None:
    repo = await audited(engine)
    row = await repo.create(
        {
            "email": "v@example.com",
            "name": "V",
            "balance": Decimal("12345678901234.123456"),
            "seen_at": dt.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=dt.UTC),
            "token": uuid.UUID("12345678-1234-5678-1234-567812345678"),
            "avatar": binary(engine, b"\x00\xffbinary\x80"),
        }
    )
    await repo.update(row["id"], {"balance": Decimal("-0.000001"), "avatar": binary(engine, b"")})

    update, insert = await repo.get_audit_history(row["id"])
    assert insert.new_values == row
    assert update.old_values == row
    assert update.new_values == {
        **row,
        "balance": Decimal("-0.000001"),
        "avatar": binary(engine, b""),
    }
    changed = ["avatar", "balance"] if engine.dialect.driver != "aiomysql" else ["balance"]
    assert sorted(update.changed_fields) == changed
    assert isinstance(update.old_values["balance"], Decimal)
    assert isinstance(update.old_values["token"], uuid.UUID)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    balance=st.decimals(min_value=-(10**13), max_value=10**13, places=6, allow_nan=False),
    avatar=st.binary(max_size=40),
    name=st.text(
        st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30
    ),
)
async def test_any_values_round_trip(
    engine: AsyncEngine, balance: Decimal, avatar: bytes, name: str
) -> None:
    repo = await audited(engine)
    row = await repo.create(
        {
            "email": f"{uuid.uuid4()}@example.com",
            "name": name,
            "balance": balance,
            "avatar": binary(engine, avatar),
        }
    )
    [entry] = await repo.get_audit_history(row["id"])
    assert entry.new_values == row


async def test_history_is_newest_first_with_ties_broken_by_id(engine: AsyncEngine) -> None:
    repo = await audited(engine)
    row = await repo.create({"email": "h@example.com", "name": "0"})
    for step in range(1, 6):
        await repo.update(row["id"], {"name": str(step)})
    history = await repo.get_audit_history(row["id"])

    assert [e.new_values["name"] for e in history if e.new_values] == ["5", "4", "3", "2", "1", "0"]
    assert [e.id for e in history] == sorted((e.id for e in history), reverse=True)
    assert [e.changed_at for e in history] == sorted((e.changed_at for e in history), reverse=True)
    assert await repo.get_audit_history(row["id"], limit=2, offset=1) == history[1:3]
    assert history[0].changed_at.tzinfo is not None


async def test_rows_logged_in_one_statement_are_ordered_by_id(engine: AsyncEngine) -> None:
    repo = await audited(engine)
    await repo.create_many([{"email": f"s{i}@example.com", "name": "s"} for i in range(5)])
    logs = await repo.get_table_audit_logs()
    assert len({e.changed_at for e in logs}) == 1
    assert [e.id for e in logs] == sorted((e.id for e in logs), reverse=True)


async def test_table_logs_filter_by_operation_actor_and_time(engine: AsyncEngine) -> None:
    repo = await audited(engine)
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with audit_context(user_id=1):
        a = await repo.create({"email": "a@example.com", "name": "A"})
    with audit_context(user_id=2):
        await repo.update(a["id"], {"name": "B"})
    after = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)

    assert [e.operation for e in await repo.get_table_audit_logs(user_id=2)] == ["UPDATE"]
    assert [e.changed_by for e in await repo.get_table_audit_logs(operation="INSERT")] == ["1"]
    assert len(await repo.get_table_audit_logs(since=before, until=after)) == 2
    assert await repo.get_table_audit_logs(since=after) == []
    assert await repo.get_table_audit_logs(until=before) == []
    assert len(await repo.get_user_changes(1)) == 1
    log = await repo.get_audit_log((await repo.get_user_changes(2))[0].id)
    assert log is not None
    assert log.changed_fields == ["name"]
    assert await repo.get_audit_log(10**9) is None


async def test_bad_query_arguments_raise_invalid_query(engine: AsyncEngine) -> None:
    repo = await audited(engine)
    with pytest.raises(InvalidQueryError, match="unknown audit operation 'UPSERT'"):
        await repo.get_table_audit_logs(operation="UPSERT")
    with pytest.raises(InvalidQueryError, match="limit"):
        await repo.get_table_audit_logs(limit=-1)
    with pytest.raises(InvalidQueryError, match="offset"):
        await repo.get_audit_history(1, offset=-5)


async def test_purge_deletes_by_age(engine: AsyncEngine) -> None:
    repo = await audited(engine)
    await repo.create({"email": "old@example.com", "name": "old"})
    await repo.create({"email": "new@example.com", "name": "new"})
    log = audit_log_table(sa.MetaData(), AUDIT_TABLE)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    async with engine.begin() as connection:
        await connection.execute(
            sa.update(log)
            .where(log.c.entity_id == str((await repo.find_one({"name": "old"}))["id"]))
            .values(changed_at=long_ago)
        )

    assert await purge_audit_logs(engine, older_than=dt.timedelta(days=30), table=AUDIT_TABLE) == 1
    assert [e.new_values["name"] for e in await repo.get_table_audit_logs() if e.new_values] == [
        "new"
    ]
    async with engine.begin() as connection:  # in the caller's transaction
        assert await purge_audit_logs(connection, dt.timedelta(0), table=AUDIT_TABLE) == 1
    with pytest.raises(InvalidQueryError, match="older_than"):
        await purge_audit_logs(engine, older_than=30)  # type: ignore[arg-type]
