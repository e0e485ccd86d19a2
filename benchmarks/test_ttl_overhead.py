"""What TTLPlugin costs a read: repository reads through it vs. no plugin.

Target (issue 21): reads with TTLPlugin cost at most 1.05x the same repository without it.
Same method as test_plugin_overhead.py: each repository has its own identical table (with an
`expires_at` column, every row live: half never expire, half expire in a day), both share one
held connection and take turns batch by batch, alternating which goes first; the median of
the per-round client CPU ratios is checked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import AwareDatetime, BaseModel

from kysera.repository import Repository
from kysera.ttl import TTLPlugin

BATCH = 100  # awaits per timed batch
ROUNDS = 40  # batches per implementation, interleaved
TARGET = 1.05

metadata = sa.MetaData()
TOMORROW = datetime.now(UTC) + timedelta(days=1)
ROWS = [
    {"name": f"item-{i}", "quantity": i, "expires_at": TOMORROW if i % 2 else None}
    for i in range(100)
]


def item_table(name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    )


plain_items = item_table("bench_ttl_plain")
plugged_items = item_table("bench_ttl_plugged")


class Item(BaseModel):
    id: int
    name: str
    quantity: int
    expires_at: AwareDatetime | None


def plugins() -> list[object]:
    return [TTLPlugin()]


@pytest.fixture(scope="module")
def setup(repository_pair: Callable[..., Any]) -> Iterator[Any]:
    with repository_pair(
        metadata,
        plain_items,
        plugged_items,
        entity=Item,
        plugins=plugins(),
        rows=ROWS,
    ) as pair:
        yield pair


async def find_by_id(repo: Repository[Item], key: int) -> Any:
    return await repo.find_by_id(key % 100 + 1)


async def find_page(repo: Repository[Item], key: int) -> Any:
    return await repo.find({"quantity": {"$gte": key % 50}}, order_by="id", limit=20)


READS: dict[str, Callable[[Repository[Item], int], Awaitable[Any]]] = {
    "find_by_id": find_by_id,
    "find": find_page,
}


@pytest.mark.parametrize("read", list(READS))
def test_reads_through_ttl(
    benchmark: Any, compare_interleaved: Callable[..., Any], setup: Any, read: str
) -> None:
    call = READS[read]
    ratio = benchmark.pedantic(
        compare_interleaved,
        args=(lambda key: call(setup.plain, key), lambda key: call(setup.plugged, key)),
        kwargs={"rounds": ROUNDS, "batch": BATCH},
        rounds=1,
        iterations=1,
    )
    benchmark.extra_info.update(ratio.info())
    print(
        f"\n{read}: no plugins {ratio.base_us:.1f} us, {len(plugins())} plugin(s) "
        f"{ratio.other_us:.1f} us; paired ratio: wall {ratio.wall:.3f}, client CPU "
        f"{ratio.cpu:.3f} (target <= {TARGET})"
    )
    assert ratio.cpu <= TARGET
