"""What plugins cost a read: `find_by_id` through two no-op interceptors vs. no plugins.

Target (issue 6): reads through a repository with two no-op plugins cost at most 1.05x a
repository without plugins. Both repositories share one held connection and take turns,
batch by batch, alternating which goes first, so drift on a shared machine hits both alike.
The median of the per-round ratios is recorded in the benchmark's `extra_info` and checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from kysera.repository import QueryContext, hookimpl

BATCH = 100  # awaits per timed batch
ROUNDS = 60  # batches per implementation, interleaved
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
    )


# One identical table per repository: SQLAlchemy's compiled cache serves the statement
# object it first compiled faster (about 4 us) than an equal statement built elsewhere, so
# two repositories sharing one table would measure who ran first, not the plugins.
plain_items = item_table("bench_plugin_plain")
plugged_items = item_table("bench_plugin_plugged")


class Item(BaseModel):
    id: int
    name: str
    quantity: int


class NoOpInterceptor:
    def __init__(self, name: str) -> None:
        self.name = name

    @hookimpl
    def kysera_intercept_query(self, context: QueryContext) -> None:
        return None


@pytest.fixture(scope="module")
def setup(repository_pair: Callable[..., Any]) -> Iterator[Any]:
    with repository_pair(
        metadata,
        plain_items,
        plugged_items,
        entity=Item,
        plugins=[NoOpInterceptor("first"), NoOpInterceptor("second")],
        rows=ROWS,
    ) as pair:
        yield pair


def test_find_by_id_with_two_noop_plugins(
    benchmark: Any, compare_interleaved: Callable[..., Any], setup: Any
) -> None:
    ratio = benchmark.pedantic(
        compare_interleaved,
        args=(
            lambda key: setup.plain.find_by_id(key % 100 + 1),
            lambda key: setup.plugged.find_by_id(key % 100 + 1),
        ),
        kwargs={"rounds": ROUNDS, "batch": BATCH},
        rounds=1,
        iterations=1,
    )
    benchmark.extra_info.update(ratio.info())
    print(
        f"\nfind_by_id: no plugins {ratio.base_us:.1f} us, two no-op plugins "
        f"{ratio.other_us:.1f} us; paired ratio: wall {ratio.wall:.3f}, client CPU "
        f"{ratio.cpu:.3f} (target <= {TARGET})"
    )
    # Checked on client CPU time: the plugins' cost is client CPU, and the CPU ratio is the
    # stricter one (its base leaves out the database's time) yet immune to the process being
    # descheduled on a loaded machine, which swings wall-clock batches by more than 5%.
    assert ratio.cpu <= TARGET
