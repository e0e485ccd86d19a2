"""What soft delete + timestamps cost a read: repository reads through both plugins vs. none.

Target (issue 8): reads through the soft-delete (and timestamps) plugins cost at most 1.05x
the same repository without plugins. Same method as test_plugin_overhead.py: each repository
has its own identical table (with `created_at`, `updated_at` and `deleted_at` columns, no
row deleted), both share one
held connection and take turns batch by batch, alternating which goes first; the median of
the per-round client CPU ratios is checked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import AwareDatetime, BaseModel

from kysera.repository import Repository
from kysera.soft_delete import SoftDeletePlugin
from kysera.timestamps import TimestampsPlugin

BATCH = 100  # awaits per timed batch
ROUNDS = 40  # batches per implementation, interleaved
TARGET = 1.05

metadata = sa.MetaData()
ROWS = [{"name": f"item-{i}", "quantity": i} for i in range(100)]


def item_table(name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    )


plain_items = item_table("bench_sd_plain")
plugged_items = item_table("bench_sd_plugged")


class Item(BaseModel):
    id: int
    name: str
    quantity: int
    created_at: AwareDatetime | None
    updated_at: AwareDatetime | None
    deleted_at: AwareDatetime | None


def plugins() -> list[object]:
    return [SoftDeletePlugin(), TimestampsPlugin()]


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


# The plugins cost about 1 us per find_by_id and 12 us per find. On 2026-11-20 that was
# 1.03-1.04x / 1.04-1.05x client CPU; since find_by_id runs direct on asyncpg (2026-11-21) its
# base is 2.5x cheaper and both read 1.04-1.08x: at the edge of the target (RESULTS.md).
@pytest.mark.parametrize("read", list(READS))
def test_reads_through_soft_delete_and_timestamps(
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
