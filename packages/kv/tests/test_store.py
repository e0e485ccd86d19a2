"""KV on a real database: reads, writes, paging, CAS races, exact sums, TTL, bad input."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

import kysera.kv.store as store_module
from kysera.core.errors import InvalidCursorError
from kysera.kv import KV, InvalidKeyError, InvalidValueError, SumTypeError, encode_key


class User(BaseModel):
    name: str
    age: int


async def _count(kv: KV) -> int:
    async with kv._engine.connect() as conn:
        return int(
            (await conn.execute(sa.select(sa.func.count()).select_from(kv._table))).scalar_one()
        )


async def test_set_get_delete_round_trip(kv: KV) -> None:
    assert await kv.get(("missing",)) is None
    first = await kv.set(("users", 1), {"name": "Ada", "tags": [1, None, "x"]})
    entry = await kv.get(("users", 1))
    assert entry is not None
    assert entry.key == ("users", 1)
    assert entry.value == {"name": "Ada", "tags": [1, None, "x"]}
    assert entry.versionstamp == first.versionstamp
    second = await kv.set(("users", 1), "changed")
    assert second.versionstamp != first.versionstamp
    await kv.delete(("users", 1))
    assert await kv.get(("users", 1)) is None
    await kv.delete(("users", 1))  # absent: no error


async def test_pydantic_values_are_stored_as_json(kv: KV) -> None:
    await kv.set((b"\x00bin", True, -3), User(name="Bo", age=3))
    entry = await kv.get((b"\x00bin", True, -3))
    assert entry is not None
    assert entry.value == {"name": "Bo", "age": 3}


async def test_bad_input_writes_nothing(kv: KV) -> None:
    with pytest.raises(InvalidKeyError):
        await kv.set(("a", 1.5), 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="JSON"):
        await kv.set(("a",), {1, 2})
    with pytest.raises(InvalidValueError):
        await kv.set(("a",), float("nan"))
    with pytest.raises(InvalidKeyError):
        await kv.atomic().set(("ok",), 1).set([1], 2).commit()  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError):
        await kv.set(("a",), 1, expire_in=-1)
    with pytest.raises(InvalidCursorError):
        await kv.list(cursor="!!not-a-cursor")
    assert await _count(kv) == 0


KEYS: list[tuple[Any, ...]] = [
    *[("k", i) for i in range(-20, 20)],
    *[("k", s) for s in ["", "a", "a\x00", "b", "é", "zz"]],
    *[("k", b) for b in [b"", b"\x00", b"\x00\x00", b"\xff"]],
    ("k", True),
    ("k", False),
    ("k", 1, "nested"),
    ("j",),
    ("l",),
    ("k",),
]


async def _walk(kv: KV, **options: Any) -> list[tuple[Any, ...]]:
    seen: list[tuple[Any, ...]] = []
    cursor = None
    while True:
        page = await kv.list(cursor=cursor, **options)
        seen += [entry.key for entry in page.entries]
        if page.cursor is None:
            return seen
        cursor = page.cursor


@pytest.mark.parametrize("limit", [1, 3, 7, 100])
async def test_list_pages_walk_every_entry_once_in_order(kv: KV, limit: int) -> None:
    for key in KEYS:
        await kv.set(key, list(key[1:2]) if not isinstance(key[-1], bytes) else None)
    everything = sorted(KEYS, key=encode_key)
    assert await _walk(kv, limit=limit) == everything
    assert await _walk(kv, limit=limit, reverse=True) == everything[::-1]
    under_k = [key for key in everything if key[0] == "k" and len(key) > 1]
    assert await _walk(kv, prefix=("k",), limit=limit) == under_k
    assert await _walk(kv, prefix=("k",), limit=limit, reverse=True) == under_k[::-1]
    window = [
        k for k in everything if encode_key(("k", "a")) <= encode_key(k) < encode_key(("k", 5))
    ]
    assert await _walk(kv, start=("k", "a"), end=("k", 5), limit=limit) == window


async def test_cas_race_has_exactly_one_winner(kysera_engine: Any, kv: KV) -> None:
    for round_ in range(10):
        base = await kv.set(("cas",), round_)
        results = await asyncio.gather(
            *(
                kv.atomic().check(("cas",), base.versionstamp).set(("cas",), f"w{i}").commit()
                for i in range(4)
            )
        )
        winners = [i for i, result in enumerate(results) if result.ok]
        assert len(winners) == 1
        entry = await kv.get(("cas",))
        assert entry is not None
        assert entry.value == f"w{winners[0]}"
        assert entry.versionstamp == results[winners[0]].versionstamp


async def test_insert_if_absent_race_has_exactly_one_winner(kv: KV) -> None:
    for round_ in range(10):
        key = ("new", round_)
        results = await asyncio.gather(
            *(kv.atomic().check(key, None).set(key, i).commit() for i in range(4))
        )
        winners = [i for i, result in enumerate(results) if result.ok]
        assert len(winners) == 1
        entry = await kv.get(key)
        assert entry is not None
        assert entry.value == winners[0]


async def test_failed_check_writes_nothing(kv: KV) -> None:
    base = await kv.set(("a",), 1)
    result = (
        await kv.atomic()
        .check(("a",), base.versionstamp + 1)
        .set(("b",), 2)
        .sum(("c",), 1)
        .delete(("a",))
        .commit()
    )
    assert not result.ok
    assert result.versionstamp is None
    assert await kv.get(("b",)) is None
    assert await kv.get(("c",)) is None
    assert (await kv.get(("a",))) == base
    ok = (
        await kv.atomic()
        .check(("a",), base.versionstamp)
        .check(("b",), None)
        .set(("b",), 2)
        .delete(("a",))
        .commit()
    )
    assert ok.ok
    assert await kv.get(("a",)) is None
    b = await kv.get(("b",))
    assert b is not None
    assert b.versionstamp == ok.versionstamp


async def test_fifty_concurrent_sums_are_exact(kv: KV) -> None:
    results = await asyncio.gather(*(kv.atomic().sum(("counter",), 2).commit() for _ in range(50)))
    assert all(result.ok for result in results)
    entry = await kv.get(("counter",))
    assert entry is not None
    assert entry.value == 100


async def test_sum_on_a_non_integer_is_refused(kv: KV) -> None:
    await kv.set(("s",), "text")
    with pytest.raises(SumTypeError) as info:
        await kv.atomic().sum(("s",), 1).set(("other",), 1).commit()
    assert info.value.code == "KV_SUM_NOT_INTEGER"
    assert await kv.get(("other",)) is None


async def test_expired_entries_are_invisible_and_purged_conditionally(
    kv: KV, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = store_module._now_ms()
    monkeypatch.setattr(store_module, "_now_ms", lambda: now)
    await kv.set(("ttl", 1), "a", expire_in=10)
    await kv.set(("ttl", 2), "b", expire_in=10)
    await kv.set(("ttl", 3), "c")
    assert (await kv.get(("ttl", 1))) is not None
    monkeypatch.setattr(store_module, "_now_ms", lambda: now + 10_001)
    assert await kv.get(("ttl", 1)) is None
    assert [e.key for e in (await kv.list(prefix=("ttl",))).entries] == [("ttl", 3)]
    assert not (await kv.atomic().check(("ttl", 2), 0).commit()).ok
    # Set again after expiry but before the purge: the purge must not take the new value.
    await kv.set(("ttl", 1), "again")
    assert await kv.purge_expired() == 1
    entry = await kv.get(("ttl", 1))
    assert entry is not None
    assert entry.value == "again"
    assert await _count(kv) == 2
    # An expired key counts as absent for check(None) and as 0 for sum.
    await kv.set(("ttl", 4), 5, expire_in=1)
    monkeypatch.setattr(store_module, "_now_ms", lambda: now + 20_000)
    assert (await kv.atomic().check(("ttl", 4), None).set(("ttl", 4), "fresh").commit()).ok
    await kv.set(("ttl", 5), 5, expire_in=1)
    monkeypatch.setattr(store_module, "_now_ms", lambda: now + 30_000)
    await kv.atomic().sum(("ttl", 5), 1).commit()
    entry = await kv.get(("ttl", 5))
    assert entry is not None
    assert entry.value == 1


async def test_absent_check_holds_until_commit(kv: KV) -> None:
    # Only checked, not written: racers checking the same key absent never both win a write
    # that depends on it, and no placeholder is left behind.
    results = await asyncio.gather(
        *(kv.atomic().check(("gate",), None).sum(("passed",), 1).commit() for _ in range(6))
    )
    passed = await kv.get(("passed",))
    assert passed is not None
    assert passed.value == sum(result.ok for result in results)
    assert await kv.get(("gate",)) is None
    assert await _count(kv) == 1
    with pytest.raises(InvalidValueError):
        kv.atomic().check(("gate",), -1)


async def test_get_many_and_watch_yield_changes(kv: KV) -> None:
    await kv.set(("w", 1), "a")
    assert [e and e.value for e in await kv.get_many([("w", 1), ("w", 2)])] == ["a", None]
    updates = kv.watch([("w", 1), ("w", 2)], interval=0.01)
    first = await anext(updates)
    assert [e and e.value for e in first] == ["a", None]
    await kv.set(("w", 2), "b")
    second = await asyncio.wait_for(anext(updates), 10)
    assert [e and e.value for e in second] == ["a", "b"]
    await kv.delete(("w", 1))
    third = await asyncio.wait_for(anext(updates), 10)
    assert [e and e.value for e in third] == [None, "b"]
    await updates.aclose()  # type: ignore[attr-defined]
    with pytest.raises(InvalidKeyError):
        await anext(kv.watch([("ok",), [1]]))  # type: ignore[list-item]


async def test_absent_checks_on_other_keys_do_not_fail_a_fresh_sum(kv: KV) -> None:
    # Racers each check a different key absent (none is ever written) and all add to one
    # counter that does not exist yet: no check can fail, so every commit succeeds and counts.
    for round_ in range(20):
        counter = ("fresh", round_)
        results = await asyncio.gather(
            *(
                kv.atomic().check(("gate", round_, i), None).sum(counter, 1).commit()
                for i in range(4)
            )
        )
        assert [result.ok for result in results] == [True] * 4
        entry = await kv.get(counter)
        assert entry is not None
        assert entry.value == 4
    assert await _count(kv) == 20  # the counters only: no gate, no placeholder


async def test_several_sums_in_one_commit_are_exact(kv: KV) -> None:
    # Each racer's first sum is on its own key, the second on a shared one: the second must add
    # to the shared counter as it is when its row is locked, not as it was at the first read.
    for i in range(20):
        await kv.set(("own", i), 0)
    await kv.set(("shared",), 0)
    results = await asyncio.gather(
        *(kv.atomic().sum(("own", i), 1).sum(("shared",), 1).commit() for i in range(20))
    )
    assert all(result.ok for result in results)
    shared = await kv.get(("shared",))
    assert shared is not None
    assert shared.value == 20


async def _wait_until_blocked(kv: KV) -> None:
    """Return once the server shows an UPDATE of the key ("held",) waiting for its row lock."""
    if kv._dialect == "postgresql":
        waiting = sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE 'UPDATE kysera_kv_test%'"
        )
    else:
        # MariaDB's processlist shows the statement with its key: while the holder keeps the
        # row, an UPDATE of it that is listed as running can only be waiting.
        waiting = sa.text(
            "SELECT count(*) FROM information_schema.processlist WHERE db = DATABASE() "
            "AND command = 'Query' AND info LIKE 'UPDATE kysera_kv_test%held%'"
        )
    async with kv._engine.connect() as observer, asyncio.timeout(30):  # never hang the suite
        while not (await observer.execute(waiting)).scalar_one():
            await observer.rollback()  # a fresh view of the server's state per poll


@pytest.mark.kysera_databases("postgresql", "mysql")
async def test_a_sum_adds_to_the_value_committed_while_it_waited(kv: KV) -> None:
    # Another transaction holds ("held",) and sets it to 100; the commit reads ("first",) first
    # (which fixes MariaDB's snapshot), then waits for ("held",), and must add to 100.
    await kv.set(("first",), 0)
    await kv.set(("held",), 0)
    table = kv._table
    async with kv._engine.connect() as holder:
        await holder.execute(
            sa.update(table).where(table.c.key == encode_key(("held",))).values(value="100")
        )
        commit = asyncio.create_task(kv.atomic().sum(("first",), 1).sum(("held",), 1).commit())
        await _wait_until_blocked(kv)
        await holder.commit()
    assert (await commit).ok
    held = await kv.get(("held",))
    assert held is not None
    assert held.value == 101


class Opaque(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    thing: object


def _deeply_nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


HOSTILE: dict[str, tuple[type[Exception], Callable[[KV], Awaitable[object]]]] = {
    "cursor not a string": (InvalidCursorError, lambda kv: kv.list(cursor=123)),  # type: ignore[arg-type]
    "empty cursor": (InvalidCursorError, lambda kv: kv.list(cursor="")),
    "value nested 100,000 deep": (
        InvalidValueError,
        lambda kv: kv.set(("deep",), _deeply_nested(100_000)),
    ),
    "model holding an object": (
        InvalidValueError,
        lambda kv: kv.set(("m",), Opaque(thing=object())),
    ),
    "model holding a lone surrogate": (
        InvalidValueError,
        lambda kv: kv.set(("m",), User(name="\ud800", age=1)),
    ),
    "infinite expiry": (
        InvalidValueError,
        lambda kv: kv.set(("e",), 1, expire_in=float("inf")),
    ),
    "expiry past the year 9999": (InvalidValueError, lambda kv: kv.set(("e",), 1, expire_in=1e17)),
    "expiry timedelta.max": (
        InvalidValueError,
        lambda kv: kv.set(("e",), 1, expire_in=timedelta.max),
    ),
    "versionstamp beyond BIGINT": (
        InvalidValueError,
        lambda kv: kv.atomic().check(("v",), 2**64).set(("v",), 1).commit(),
    ),
    "sum too big for JSON": (
        InvalidValueError,
        lambda kv: kv.atomic().set(("x",), 1).sum(("n",), 10**5000).commit(),
    ),
}


@pytest.mark.parametrize("case", HOSTILE)
async def test_hostile_input_is_refused_and_writes_nothing(kv: KV, case: str) -> None:
    error, attempt = HOSTILE[case]
    with pytest.raises(error):
        await attempt(kv)
    assert await _count(kv) == 0


async def test_a_sum_result_too_big_for_json_writes_nothing(kv: KV) -> None:
    big = 10**4299  # the most digits json.dumps writes (Python's int-to-str limit: 4300)
    await kv.set(("n",), big)
    with pytest.raises(InvalidValueError):
        await kv.atomic().sum(("n",), 9 * big).set(("other",), 1).commit()
    entry = await kv.get(("n",))
    assert entry is not None
    assert entry.value == big
    assert await kv.get(("other",)) is None


async def test_get_many_takes_more_keys_than_a_statement_has_parameters(kv: KV) -> None:
    # asyncpg sends at most 32,767 parameters, stock SQLite 32,766 (999 before 3.32).
    await kv.set(("many", 5), "five")
    await kv.set(("many", 39_999), "last")
    entries = await kv.get_many([("many", i) for i in range(40_000)])
    assert len(entries) == 40_000
    assert [(i, e.value) for i, e in enumerate(entries) if e is not None] == [
        (5, "five"),
        (39_999, "last"),
    ]


@pytest.mark.kysera_databases("postgresql")
async def test_a_commit_may_check_more_keys_absent_than_a_statement_has_parameters(
    kv: KV,
) -> None:
    operation = kv.atomic()
    for i in range(33_000):
        operation.check(("gate", i), None)
    assert (await operation.set(("done",), True).commit()).ok
    assert await _count(kv) == 1  # every placeholder removed


def test_versionstamps_issued_in_one_process_strictly_increase() -> None:
    # Two writes of one key in the same microsecond must not share a stamp, or a check against
    # the first would pass after the second.
    stamps = [store_module._new_versionstamp() for _ in range(10_000)]
    assert all(a < b for a, b in itertools.pairwise(stamps))
