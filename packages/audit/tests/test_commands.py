"""``kysera audit history`` and ``kysera audit purge``."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa
from audit_support import AUDIT_TABLE, accounts, audit_logs, memberships
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.audit import AuditPlugin
from kysera.core.commands import main as kysera
from kysera.repository import create_orm


async def run(*argv: str) -> int:
    return await asyncio.to_thread(kysera, list(argv))


async def test_history_prints_one_rows_entries_newest_first(
    engine: AsyncEngine, kysera_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    orm = await create_orm(engine, plugins=[AuditPlugin(table=AUDIT_TABLE)])
    repo: Any = orm.repository(accounts)
    row = await repo.create({"email": "ada@example.com", "name": "Ada"})
    await repo.update(row["id"], {"name": "Ada L."})
    await orm.repository(memberships).create({"org_id": 7, "user_id": 9, "role": "owner"})
    common = ["--url", kysera_database_url, "audit"]

    assert (
        await run(*common, "history", "au_accounts", str(row["id"]), "--audit-table", AUDIT_TABLE)
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[3].rstrip(":") for line in lines] == ["UPDATE", "INSERT"]
    assert lines[0].endswith(": name")

    history = ["history", "au_memberships", "[7, 9]", "--json", "--audit-table", AUDIT_TABLE]
    assert await run(*common, *history) == 0
    [entry] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (entry["operation"], entry["entity_id"]) == ("INSERT", "[7,9]")

    assert await run(*common, "history", "au_accounts", "999", "--audit-table", AUDIT_TABLE) == 0
    assert capsys.readouterr().out == "no audit entries for au_accounts 999\n"


async def test_purge_deletes_only_entries_older_than_the_duration(
    engine: AsyncEngine, kysera_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    orm = await create_orm(engine, plugins=[AuditPlugin(table=AUDIT_TABLE)])
    repo: Any = orm.repository(accounts)
    old = await repo.create({"email": "old@example.com", "name": "Old"})
    await repo.create({"email": "new@example.com", "name": "New"})
    async with engine.begin() as connection:
        await connection.execute(
            sa.update(audit_logs)
            .where(audit_logs.c.entity_id == str(old["id"]))
            .values(changed_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=100))
        )
    purge = ["--url", kysera_database_url, "audit", "purge", "--audit-table", AUDIT_TABLE]
    assert await run(*purge, "--older-than", "90d") == 0
    assert capsys.readouterr().out == "deleted 1 audit entry older than 90 days, 0:00:00\n"
    async with engine.connect() as connection:
        left = (await connection.execute(sa.select(audit_logs.c.entity_id))).scalars().all()
    assert left == [str(old["id"] + 1)]

    with pytest.raises(SystemExit) as exited:
        kysera([*purge, "--older-than", "soon"])
    assert exited.value.code == 2
    assert "not a duration like 90d" in capsys.readouterr().err
