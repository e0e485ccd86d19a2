"""The many-keys methods never reach a bind-parameter limit (SPEC §7, issue 15 item 9):
40,001 keys is more than PostgreSQL (32,767) and SQLite (32,766) take as parameters."""

from __future__ import annotations

from soft_delete_support import users
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.repository import Orm

N = 40_001


async def test_soft_delete_restore_and_hard_delete_many(engine: AsyncEngine, orm: Orm) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            users.insert(),
            [{"id": n, "email": f"u{n}@example.com", "name": "u"} for n in range(1, N + 1)],
        )
    repo = orm.repository(users)
    keys = list(range(1, N + 1))

    assert await repo.soft_delete_many(keys) == N
    assert await repo.count() == 0
    assert await repo.restore_many(keys) == N
    assert await repo.count() == N
    assert await repo.hard_delete_many(keys) == N
    assert await repo.count(include_deleted=True) == 0
