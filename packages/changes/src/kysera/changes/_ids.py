"""Giving out change ids in commit order.

Every transaction that records changes bumps the counter row by the number of changes
(``INSERT ... ON CONFLICT DO UPDATE`` / ``ON DUPLICATE KEY UPDATE``), which takes the row's
write lock until COMMIT or ROLLBACK. A second writer therefore waits at this step until the
first has finished, and only then reads the counter: ids are given out in the order in which
transactions commit. A consumer reading ``id > cursor`` never sees a higher id committed
before a lower one is visible, and a rolled-back transaction gives its ids back (its bump is
rolled back too), so the ids are dense. The price: writers of change rows take turns from
the moment they record changes until they commit (kept short: the changes are recorded
after the write itself, as the last step before COMMIT of the repository's own
transaction). SQLite serializes writers anyway.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, bindparam, select
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["take_ids"]

_COUNTER_ROW = 1


def _bump(counter: Table, dialect: str) -> Any:
    count = bindparam("kysera_change_count", type_=counter.c.last_id.type)
    if dialect == "mysql":
        return (
            mysql.insert(counter)
            .values(id=_COUNTER_ROW, last_id=count)
            .on_duplicate_key_update(last_id=counter.c.last_id + count)
        )
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(counter)
        .values(id=_COUNTER_ROW, last_id=count)
        .on_conflict_do_update(
            index_elements=[counter.c.id], set_={"last_id": counter.c.last_id + count}
        )
        .returning(counter.c.last_id)
    )


async def take_ids(connection: AsyncConnection, counter: Table, count: int) -> int:
    """Reserve ``count`` ids for the transaction of ``connection``; return the first one.

    The counter row stays locked until the transaction ends (see the module docstring).
    """
    dialect = connection.dialect.name
    statement = _bump(counter, dialect)
    result = await connection.execute(statement, {"kysera_change_count": count})
    if dialect == "mysql":
        last = (
            await connection.execute(select(counter.c.last_id).where(counter.c.id == _COUNTER_ROW))
        ).scalar_one()
    else:
        last = result.scalar_one()
    return int(last) - count + 1
