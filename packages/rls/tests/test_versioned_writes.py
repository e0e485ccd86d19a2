"""Optimistic locking (kysera-versioning) under row-level security: a checked write of a row
the caller cannot see says the row does not exist, whatever version it names."""

from __future__ import annotations

import pytest
from rls_support import documents, rls_orm
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import NotFoundError
from kysera.core.testing import snapshot_table
from kysera.repository import ConflictError
from kysera.rls import RLSContextError, rls_context
from kysera.versioning import VersionPlugin


async def test_a_versioned_bulk_update_never_reaches_another_tenants_row(
    engine: AsyncEngine,
) -> None:
    orm = await rls_orm(engine, VersionPlugin())
    repo = orm.repository(documents)
    async with rls_context(tenant_id=1):
        mine = await repo.create({"title": "mine"})
    async with rls_context(tenant_id=2):
        theirs = await repo.create({"title": "theirs"})
    before = await snapshot_table(engine, documents)

    async with rls_context(tenant_id=1):
        # Its current version and a stale one: both "no such row", never a conflict
        # carrying the other tenant's values.
        for version in (1, 7):
            changes = [(mine["id"], {"title": "x"}, 1), (theirs["id"], {"title": "x"}, version)]
            with pytest.raises(NotFoundError) as raised:
                await repo.bulk_update(changes)
            assert raised.value.filters == [theirs["id"]]
        with pytest.raises(ConflictError) as stale:  # the caller's own row: a conflict
            await repo.bulk_update([(mine["id"], {"title": "x"}, 7)])
        assert stale.value.current is not None
        assert stale.value.current["tenant_id"] == 1
    with pytest.raises(RLSContextError):  # no tenant at all: refused before any read
        await repo.bulk_update([(theirs["id"], {"title": "x"}, 7)])

    assert await snapshot_table(engine, documents) == before
