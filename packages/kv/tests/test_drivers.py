"""Which drivers a store runs on: every supported one but aiomysql, which is refused."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.kv import KV, UnsupportedDriverError

TABLE = "kv_driver_check"


async def table_exists(engine: AsyncEngine) -> bool:
    async with engine.connect() as connection:
        return await connection.run_sync(lambda sync: sa.inspect(sync).has_table(TABLE))


async def test_a_store_opens_on_every_driver_but_aiomysql_which_is_refused_naming_asyncmy(
    kysera_engine: AsyncEngine,
) -> None:
    if kysera_engine.dialect.driver == "aiomysql":
        with pytest.raises(UnsupportedDriverError, match="asyncmy") as refused:
            await KV.open(kysera_engine, table=TABLE)
        assert refused.value.code == "KV_UNSUPPORTED_DRIVER"
        assert not await table_exists(kysera_engine)  # nothing created
        return
    kv = await KV.open(kysera_engine, table=TABLE)
    try:
        await kv.set(("flags", b"\x00\xff", 1), {"on": True})
        entry = await kv.get(("flags", b"\x00\xff", 1))
        assert entry is not None
        assert entry.value == {"on": True}
    finally:
        async with kysera_engine.begin() as connection:
            await connection.execute(sa.text(f"DROP TABLE {TABLE}"))
