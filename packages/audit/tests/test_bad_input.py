"""Bad input to an audited repository raises the repository's own errors; nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from audit_support import AUDIT_TABLE, accounts
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.audit import AuditPlugin, audit_log_table
from kysera.core import KyseraError
from kysera.repository import create_orm

log = audit_log_table(sa.MetaData(), AUDIT_TABLE)

BAD_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("update", ("not a number", {"name": "x"}), {}),
    ("update", (1, "not a mapping"), {}),
    ("update", ({"nope": 1}, {"name": "x"}), {}),
    ("bulk_update", ([(1,)],), {}),
    ("bulk_update", ([("not a number", {"name": "x"})],), {}),
    ("bulk_update", ([(1, {"no_such_column": 1})],), {}),
    ("update_many", ({"no_such_column": 1}, {"name": "x"}), {}),
    ("update_many", (None, {"name": "x"}), {}),
    ("upsert", ({"email": "u@example.com"},), {"conflict": ["no_such_column"]}),
    ("create", ({"no_such_column": 1},), {}),
    ("create_many", ([{"email": "a@example.com", "name": "A"}, "junk"],), {}),
    ("restore_from_audit", ("junk",), {}),
]


@pytest.mark.parametrize(
    ("method", "args", "kwargs"),
    BAD_CALLS,
    ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(BAD_CALLS)],
)
async def test_bad_input_raises_a_kysera_error_and_writes_nothing(
    engine: AsyncEngine, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    orm = await create_orm(engine, plugins=[AuditPlugin(table=AUDIT_TABLE)])
    repo = orm.repository(accounts)
    await repo.create({"email": "one@example.com", "name": "One"})
    with pytest.raises(KyseraError):
        await getattr(repo, method)(*args, **kwargs)
    async with engine.connect() as connection:
        assert (
            await connection.execute(sa.select(sa.func.count()).select_from(log))
        ).scalar_one() == 1
        names = (await connection.execute(sa.select(accounts.c.name))).scalars().all()
    assert names == ["One"]
