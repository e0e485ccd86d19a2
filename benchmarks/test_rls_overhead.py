"""What row-level security costs a read: repository reads through `RLSPlugin` vs. none.

Target (issue 20): ``find_by_id`` and ``find`` with the plugin (a tenant policy,
application-level) cost at most 1.10x the same repository without it. Same method as
test_plugin_overhead.py: each repository has its own identical table, both share one held
connection and take turns batch by batch, alternating which goes first; the median of the
per-round client CPU ratios is checked. The context is set once, as a request would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from kysera.repository import Repository
from kysera.rls import RLSPlugin, policy, rls_context

BATCH = 100  # awaits per timed batch
ROUNDS = 40  # batches per implementation, interleaved
TARGET = 1.10

metadata = sa.MetaData()
ROWS = [{"tenant_id": 1, "name": f"item-{i}", "quantity": i} for i in range(100)]


def item_table(name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, nullable=False, index=True),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
    )


plain_items = item_table("bench_rls_plain")
scoped_items = item_table("bench_rls_scoped")


class Item(BaseModel):
    id: int
    tenant_id: int
    name: str
    quantity: int


def plugins() -> list[object]:
    return [RLSPlugin({"bench_rls_scoped": [policy.tenant("tenant_id")]}, default="allow")]


@pytest.fixture(scope="module")
def setup(runner: asyncio.Runner, repository_pair: Callable[..., Any]) -> Iterator[Any]:
    # The runner runs every coroutine in one context of its own: set the tenant there, once,
    # as a request would before its reads.
    scope = rls_context(tenant_id=1, user_id=1)

    async def enter() -> None:
        scope.__enter__()

    async def leave() -> None:
        scope.__exit__(None, None, None)

    with repository_pair(
        metadata, plain_items, scoped_items, entity=Item, plugins=plugins(), rows=ROWS
    ) as pair:
        runner.run(enter())
        try:
            yield pair
        finally:
            runner.run(leave())


async def find_by_id(repo: Repository[Item], key: int) -> Any:
    return await repo.find_by_id(key % 100 + 1)


async def find_page(repo: Repository[Item], key: int) -> Any:
    return await repo.find({"quantity": {"$gte": key % 50}}, order_by="id", limit=20)


READS: dict[str, Callable[[Repository[Item], int], Awaitable[Any]]] = {
    "find_by_id": find_by_id,
    "find": find_page,
}


@pytest.mark.parametrize("read", list(READS))
def test_reads_through_row_level_security(
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
        f"\n{read}: no plugin {ratio.base_us:.1f} us, RLS {ratio.other_us:.1f} us; paired "
        f"ratio: wall {ratio.wall:.3f}, client CPU {ratio.cpu:.3f} (target <= {TARGET})"
    )
    assert ratio.cpu <= TARGET
