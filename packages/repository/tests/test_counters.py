"""Atomic counters (increment, increment_many) and compare-and-set (update with expected=)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from repository_support import writes
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kysera.audit import AuditPlugin, create_audit_table
from kysera.core import (
    DatabaseError,
    InvalidQueryError,
    KyseraError,
    NotFoundError,
    ValidationError,
)
from kysera.core.capture import capture_queries
from kysera.core.pytest_plugin import kysera_schema_fixture
from kysera.core.testing import snapshot_table
from kysera.repository import ConflictError, Repository, create_orm, create_repository
from kysera.soft_delete import SoftDeletePlugin
from kysera.timestamps import TimestampsPlugin, UTCDateTime

metadata = sa.MetaData()
posts = sa.Table(
    "ct_posts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("title", sa.String(50), nullable=False),
    sa.Column("status", sa.String(20), nullable=True),
    sa.Column("views", sa.Integer, nullable=False, server_default="0"),
    sa.Column("likes", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("stars", sa.SmallInteger, nullable=True),
    sa.Column("balance", sa.Numeric(10, 2), nullable=True),
    sa.Column("ratio", sa.Float, nullable=True),
    sa.Column("flag", sa.Boolean, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=True),
    sa.Column("deleted_at", UTCDateTime, nullable=True),
)
scores = sa.Table(
    "ct_scores",
    metadata,
    sa.Column("player", sa.String(20), primary_key=True),
    sa.Column("game", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("points", sa.Integer, nullable=False),
)
AUDIT_TABLE = "ct_audit_logs"

# Every ct_ table empty before each test.
posts_engine = kysera_schema_fixture(metadata)


def repository(executor: Any) -> Repository[Any]:
    return create_repository(executor, posts)


async def new_post(repo: Repository[Any], **values: Any) -> dict[str, Any]:
    post: dict[str, Any] = await repo.create({"title": "t", "views": 0, "likes": 0, **values})
    return post


# --- increment --------------------------------------------------------------------------------


async def test_increment_adds_to_the_stored_values_and_returns_the_row(
    posts_engine: AsyncEngine,
) -> None:
    repo = repository(posts_engine)
    post = await new_post(repo, views=10, likes=5)

    updated = await repo.increment(post["id"], views=2, likes=-7)

    assert (updated["views"], updated["likes"]) == (12, -2)
    assert updated == await repo.get(post["id"])
    # The mapping form; the keywords are then per-call options.
    again = await repo.increment(post["id"], {"views": 1}, some_option=True)
    assert again["views"] == 13


async def test_each_delta_goes_to_its_column_whatever_the_order_of_the_keywords(
    posts_engine: AsyncEngine,
) -> None:
    # Increments of one set of columns share one prebuilt statement: the deltas are bound
    # by position, so the order the caller names them in must not move a delta.
    repo = repository(posts_engine)
    post = await new_post(repo, views=0, likes=0)

    await repo.increment(post["id"], views=1, likes=10)
    await repo.increment(post["id"], likes=100, views=1000)
    await repo.increment(post["id"], {"likes": 10_000})
    updated = await repo.increment(post["id"], stars=2, views=1, likes=1)

    assert (updated["views"], updated["likes"], updated["stars"]) == (1002, 10_111, None)


async def test_increment_is_one_update_statement_adding_in_sql(posts_engine: AsyncEngine) -> None:
    repo = repository(posts_engine)
    post = await new_post(repo)

    with capture_queries(posts_engine) as log:
        await repo.increment(post["id"], views=3)

    [statement] = writes(log)
    assert statement.startswith("UPDATE")
    assert "views + " in statement.replace('"', "").replace("`", "").replace("ct_posts.", "")


async def test_increment_of_decimal_and_float_columns(posts_engine: AsyncEngine) -> None:
    repo = repository(posts_engine)
    post = await new_post(repo, balance=Decimal("10.25"), ratio=1.5, stars=3)

    updated = await repo.increment(
        post["id"], balance=Decimal("-0.75"), ratio=0.25, stars=-1, likes=2**40
    )

    assert updated["balance"] == Decimal("9.50")
    assert updated["ratio"] == pytest.approx(1.75)
    assert (updated["stars"], updated["likes"]) == (2, 2**40)
    # An int delta goes into a decimal or float column too.
    assert (await repo.increment(post["id"], balance=1, ratio=1))["balance"] == Decimal("10.50")


async def test_increment_of_a_missing_row_raises_not_found(posts_engine: AsyncEngine) -> None:
    repo = repository(posts_engine)
    await new_post(repo)
    before = await snapshot_table(posts_engine, posts)

    with pytest.raises(NotFoundError) as raised:
        await repo.increment(10**6, views=1)

    assert raised.value.filters == 10**6
    assert await snapshot_table(posts_engine, posts) == before


BAD_DELTAS: list[tuple[dict[str, Any], type[KyseraError]]] = [
    ({}, InvalidQueryError),
    ({"nope": 1}, InvalidQueryError),
    ({"id": 1}, InvalidQueryError),
    ({"title": 1}, InvalidQueryError),
    ({"flag": 1}, InvalidQueryError),
    ({"updated_at": 1}, InvalidQueryError),
    ({"views": 1.5}, ValidationError),
    ({"views": Decimal(1)}, ValidationError),
    ({"views": True}, ValidationError),
    ({"views": "1"}, ValidationError),
    ({"views": None}, ValidationError),
    ({"views": 2**31}, ValidationError),
    ({"views": -(2**31) - 1}, ValidationError),
    ({"stars": 2**15}, ValidationError),
    ({"likes": 2**63}, ValidationError),
    ({"balance": 0.1}, ValidationError),
    ({"balance": Decimal("0.001")}, ValidationError),
    ({"balance": Decimal("1e8")}, ValidationError),
    ({"balance": Decimal("NaN")}, ValidationError),
    ({"balance": Decimal("sNaN")}, ValidationError),
    ({"ratio": Decimal("sNaN")}, ValidationError),
    ({"ratio": float("inf")}, ValidationError),
    ({"ratio": float("nan")}, ValidationError),
    # One good delta does not carry a bad one.
    ({"views": 1, "likes": "x"}, ValidationError),
]


@pytest.mark.parametrize(("deltas", "error"), BAD_DELTAS, ids=lambda value: repr(value)[:40])
async def test_bad_deltas_are_refused_before_any_sql(
    posts_engine: AsyncEngine, deltas: dict[str, Any], error: type[KyseraError]
) -> None:
    repo = repository(posts_engine)
    post = await new_post(repo, balance=Decimal(1), ratio=1.0, stars=1)
    before = await snapshot_table(posts_engine, posts)

    with capture_queries(posts_engine) as log:
        with pytest.raises(error) as one:
            await repo.increment(post["id"], deltas)
        with pytest.raises(error):
            await repo.increment_many({}, deltas)
        if deltas:
            with pytest.raises(error):
                await repo.increment(post["id"], **deltas)

    assert log.count == 0
    assert await snapshot_table(posts_engine, posts) == before
    json.dumps(one.value.to_dict())


async def test_increment_refuses_a_bad_key_or_where_before_any_sql(
    posts_engine: AsyncEngine,
) -> None:
    repo = repository(posts_engine)
    with capture_queries(posts_engine) as log:
        with pytest.raises(InvalidQueryError):
            await repo.increment(None, views=1)
        with pytest.raises(InvalidQueryError):
            await repo.increment((1, 2), views=1)
        with pytest.raises(InvalidQueryError):
            await repo.increment_many(None, views=1)
        with pytest.raises(InvalidQueryError):
            await repo.increment_many({"nope": 1}, views=1)
        with pytest.raises(InvalidQueryError):
            await repo.increment(1, ["views"])  # type: ignore[arg-type]
    assert log.count == 0


async def test_increment_many_updates_matching_rows_in_one_statement(
    posts_engine: AsyncEngine,
) -> None:
    repo = repository(posts_engine)
    a = await new_post(repo, status="draft", views=1)
    b = await new_post(repo, status="draft", views=2)
    c = await new_post(repo, status="live", views=3)

    with capture_queries(posts_engine) as log:
        count = await repo.increment_many({"status": "draft"}, views=10, likes=1)

    assert count == 2
    assert len(writes(log)) == 1
    rows = {row["id"]: (row["views"], row["likes"]) for row in await repo.find_all()}
    assert rows == {a["id"]: (11, 1), b["id"]: (12, 1), c["id"]: (3, 0)}
    assert await repo.increment_many({"status": "gone"}, views=1) == 0
    assert await repo.increment_many({}, {"views": 1}) == 3


async def test_fifty_concurrent_increments_add_exactly_fifty(posts_engine: AsyncEngine) -> None:
    repo = repository(posts_engine)
    post = await new_post(repo)

    results = await asyncio.gather(*(repo.increment(post["id"], views=1) for _ in range(50)))

    assert (await repo.get(post["id"]))["views"] == 50
    # Each call saw its own write: every intermediate value exactly once.
    assert sorted(row["views"] for row in results) == list(range(1, 51))


async def test_concurrent_increment_many_loses_nothing(posts_engine: AsyncEngine) -> None:
    repo = repository(posts_engine)
    for _ in range(3):
        await new_post(repo, status="draft")

    counts = await asyncio.gather(
        *(repo.increment_many({"status": "draft"}, views=1, likes=2) for _ in range(20))
    )

    assert counts == [3] * 20
    assert {(row["views"], row["likes"]) for row in await repo.find_all()} == {(20, 40)}


async def test_increment_in_a_callers_transaction_rolls_back_with_it(
    posts_engine: AsyncEngine,
) -> None:
    post = await new_post(repository(posts_engine))
    async with posts_engine.connect() as connection:
        transaction = await connection.begin()
        bound = repository(connection)
        assert (await bound.increment(post["id"], views=5))["views"] == 5
        await transaction.rollback()
    assert (await repository(posts_engine).get(post["id"]))["views"] == 0


# --- compare-and-set --------------------------------------------------------------------------


async def test_update_with_matching_expected_values_writes(posts_engine: AsyncEngine) -> None:
    repo = repository(posts_engine)
    post = await new_post(repo, status="draft", views=3)

    updated = await repo.update(
        post["id"], {"status": "live"}, expected={"status": "draft", "views": 3}
    )

    assert updated["status"] == "live"
    assert updated == await repo.get(post["id"])
    # None expects NULL.
    other = await new_post(repo, status=None)
    assert (await repo.update(other["id"], {"status": "x"}, expected={"status": None}))[
        "status"
    ] == "x"


async def test_update_with_stale_expected_values_raises_conflict_with_current_values(
    posts_engine: AsyncEngine,
) -> None:
    repo = repository(posts_engine)
    post = await new_post(repo, status="live", views=3)
    before = await snapshot_table(posts_engine, posts)

    with pytest.raises(ConflictError) as raised:
        await repo.update(post["id"], {"views": 100}, expected={"status": "draft"})

    error = raised.value
    assert error.code == "CONFLICT"
    assert error.current == await repo.get(post["id"])
    assert error.expected == {"status": "draft"}
    assert error.filters == post["id"]
    assert json.loads(json.dumps(error.to_dict()))["current"]["status"] == "live"
    assert await snapshot_table(posts_engine, posts) == before
    with pytest.raises(ConflictError):
        await repo.update(post["id"], {"views": 100}, expected={"status": None})
    # With nothing to write, the check still applies.
    with pytest.raises(ConflictError):
        await repo.update(post["id"], {}, expected={"views": 4})
    assert (await repo.update(post["id"], {}, expected={"views": 3}))["views"] == 3


async def test_compare_and_set_of_a_missing_row_raises_not_found(
    posts_engine: AsyncEngine,
) -> None:
    repo = repository(posts_engine)
    with pytest.raises(NotFoundError):
        await repo.update(10**6, {"views": 1}, expected={"views": 0})
    with pytest.raises(NotFoundError):
        await repo.update(10**6, {}, expected={"views": 0})


async def test_compare_and_set_refuses_bad_expectations_before_any_sql(
    posts_engine: AsyncEngine,
) -> None:
    repo = repository(posts_engine)
    post = await new_post(repo)
    with capture_queries(posts_engine) as log:
        for expected in ({}, {"nope": 1}, ["views"], {"views": {"$bogus": 1}}):
            with pytest.raises(InvalidQueryError):
                await repo.update(post["id"], {"views": 1}, expected=expected)  # type: ignore[arg-type]
    assert log.count == 0


async def test_of_writers_with_the_same_expectation_exactly_one_wins(
    posts_engine: AsyncEngine,
) -> None:
    repo = repository(posts_engine)
    for round_number in range(5):
        post = await new_post(repo, status="draft")

        async def publish(writer: int, post_id: int = post["id"]) -> Any:
            return await repo.update(
                post_id, {"status": f"by-{writer}"}, expected={"status": "draft"}
            )

        writers = 2 if round_number < 3 else 10
        results = await asyncio.gather(
            *(publish(writer) for writer in range(writers)), return_exceptions=True
        )

        winners = [result for result in results if isinstance(result, dict)]
        conflicts = [result for result in results if isinstance(result, ConflictError)]
        assert len(winners) == 1, results
        assert len(conflicts) == writers - 1, results
        stored = await repo.get(post["id"])
        assert stored == winners[0]
        assert all(conflict.current == stored for conflict in conflicts)


# --- through the plugins ----------------------------------------------------------------------


async def plugged(engine: AsyncEngine) -> tuple[Repository[Any], sa.Table]:
    audit_table = await create_audit_table(engine, AUDIT_TABLE)
    async with engine.begin() as connection:
        await connection.execute(sa.delete(audit_table))
    orm = await create_orm(
        engine,
        plugins=[SoftDeletePlugin(), TimestampsPlugin(), AuditPlugin(table=AUDIT_TABLE)],
    )
    return orm.repository(posts), audit_table


async def test_increment_goes_through_timestamps_soft_delete_and_audit(
    posts_engine: AsyncEngine,
) -> None:
    repo, _ = await plugged(posts_engine)
    post = await repo.create({"title": "t", "views": 1})
    hidden = await repo.create({"title": "h", "views": 1})
    await repo.soft_delete(hidden["id"])
    before_hidden = await repo.find_with_deleted(hidden["id"])

    updated = await repo.increment(post["id"], views=4)

    assert updated["views"] == 5
    assert updated["updated_at"] > post["updated_at"]  # timestamps
    history = await repo.get_audit_history(post["id"])
    assert [entry.operation for entry in history] == ["UPDATE", "INSERT"]
    assert history[0].old_values["views"] == 1
    assert history[0].new_values["views"] == 5
    assert sorted(history[0].changed_fields) == ["updated_at", "views"]
    # Soft delete: a deleted row is not there to increment, and stays as it was.
    with pytest.raises(NotFoundError):
        await repo.increment(hidden["id"], views=1)
    assert await repo.find_with_deleted(hidden["id"]) == before_hidden
    # ... unless the call includes deleted rows (the mapping form carries options).
    revived = await repo.increment(hidden["id"], {"views": 1}, include_deleted=True)
    assert revived["views"] == 2
    # timestamps=False leaves updated_at alone.
    quiet = await repo.increment(post["id"], {"views": 1}, timestamps=False)
    assert quiet["updated_at"] == updated["updated_at"]


async def test_increment_many_goes_through_the_plugins(posts_engine: AsyncEngine) -> None:
    repo, _ = await plugged(posts_engine)
    live = [await repo.create({"title": f"l{n}", "views": n}) for n in range(3)]
    gone = await repo.create({"title": "gone", "views": 0})
    await repo.soft_delete(gone["id"])

    assert await repo.increment_many({}, views=10) == 3

    assert (await repo.find_with_deleted(gone["id"]))["views"] == 0
    for row in live:
        stored = await repo.get(row["id"])
        assert stored["views"] == row["views"] + 10
        assert stored["updated_at"] > row["updated_at"]
        [update, _insert] = await repo.get_audit_history(row["id"])
        assert (update.old_values["views"], update.new_values["views"]) == (
            row["views"],
            row["views"] + 10,
        )
    assert [entry.operation for entry in await repo.get_audit_history(gone["id"])] == [
        "SOFT_DELETE",
        "INSERT",
    ]


async def test_bad_deltas_with_plugins_run_no_sql(posts_engine: AsyncEngine) -> None:
    repo, _ = await plugged(posts_engine)
    post = await repo.create({"title": "t"})
    with capture_queries(posts_engine) as log:
        with pytest.raises(ValidationError):
            await repo.increment(post["id"], views="1")
        with pytest.raises(InvalidQueryError):
            await repo.increment_many({}, title=1)
    assert log.count == 0


async def test_compare_and_set_goes_through_the_plugins(posts_engine: AsyncEngine) -> None:
    repo, audit_table = await plugged(posts_engine)
    post = await repo.create({"title": "t", "status": "draft"})

    updated = await repo.update(post["id"], {"status": "live"}, expected={"status": "draft"})
    assert updated["updated_at"] > post["updated_at"]
    with pytest.raises(ConflictError) as raised:
        await repo.update(post["id"], {"status": "x"}, expected={"status": "draft"})
    assert raised.value.current == updated
    # A conflict logs nothing; a soft-deleted row is not found.
    assert [entry.operation for entry in await repo.get_audit_history(post["id"])] == [
        "UPDATE",
        "INSERT",
    ]
    await repo.soft_delete(post["id"])
    with pytest.raises(NotFoundError):
        await repo.update(post["id"], {"status": "x"}, expected={"status": "live"})
    async with posts_engine.connect() as connection:
        logged = await connection.scalar(sa.select(sa.func.count()).select_from(audit_table))
    assert logged == 3


# --- the property: any sequence of operations matches a Python model ------------------------

OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("increment"), st.integers(0, 3), st.integers(-5, 5)),
        st.tuples(st.just("increment_many"), st.sampled_from(["a", "b"]), st.integers(-5, 5)),
        st.tuples(
            st.just("cas_views"), st.integers(0, 3), st.integers(-3, 6), st.sampled_from("ab")
        ),
        st.tuples(
            st.just("cas_status"),
            st.integers(0, 3),
            st.sampled_from(["a", "b", None]),
            st.integers(-9, 9),
        ),
    ),
    max_size=12,
)


async def attempt(repo: Repository[Any], key: int, operation: tuple[Any, ...]) -> Any:
    """Run one keyed operation; return the row, or the Kysera error it raised."""
    kind = operation[0]
    try:
        if kind == "increment":
            return await repo.increment(key, views=operation[2])
        if kind == "cas_views":
            return await repo.update(
                key, {"status": operation[3]}, expected={"views": operation[2]}
            )
        return await repo.update(key, {"views": operation[3]}, expected={"status": operation[2]})
    except KyseraError as error:
        return error


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=OPERATIONS)
async def test_counters_and_compare_and_set_match_a_model(
    posts_engine: AsyncEngine, operations: list[tuple[Any, ...]]
) -> None:
    async with posts_engine.connect() as connection:
        transaction = await connection.begin()
        try:
            repo = repository(connection)
            ids = []
            model: dict[int, dict[str, Any]] = {}
            for n, status in enumerate(["a", "b", None]):
                row = await repo.create({"title": "p", "status": status, "views": n, "likes": 0})
                ids.append(row["id"])
                model[row["id"]] = {"status": status, "views": n}
            ids.append(max(ids) + 1000)  # index 3: no such row
            for operation in operations:
                kind, index = operation[0], operation[1]
                if kind == "increment_many":
                    count = await repo.increment_many({"status": index}, views=operation[2])
                    matched = [v for v in model.values() if v["status"] == index]
                    assert count == len(matched)
                    for values in matched:
                        values["views"] += operation[2]
                    continue
                key = ids[index]
                current = model.get(key)
                outcome = await attempt(repo, key, operation)
                if current is None:
                    assert isinstance(outcome, NotFoundError)
                    continue
                # The row takes the change when it holds the expected value.
                if kind == "increment":
                    change = {"views": current["views"] + operation[2]}
                elif kind == "cas_views":
                    change = {"status": operation[3]} if current["views"] == operation[2] else None
                else:
                    change = {"views": operation[3]} if current["status"] == operation[2] else None
                if change is None:
                    assert isinstance(outcome, ConflictError)
                    assert outcome.current is not None
                    assert {name: outcome.current[name] for name in current} == current
                    continue
                current.update(change)
                assert isinstance(outcome, dict)
                assert {"status": outcome["status"], "views": outcome["views"]} == current
            stored = {
                row["id"]: {"status": row["status"], "views": row["views"]}
                for row in await repo.find_all()
            }
            assert stored == model
        finally:
            await transaction.rollback()


async def test_an_increment_past_the_column_range_writes_nothing_on_servers(
    posts_engine: AsyncEngine,
) -> None:
    repo = repository(posts_engine)
    post = await new_post(repo, views=2**31 - 1)

    if posts_engine.dialect.name == "sqlite":
        # SQLite's INTEGER is 64-bit whatever the declaration: the sum is stored.
        assert (await repo.increment(post["id"], views=1))["views"] == 2**31
        return
    with pytest.raises(DatabaseError) as raised:
        await repo.increment(post["id"], views=1)
    assert not raised.value.transient
    assert (await repo.get(post["id"]))["views"] == 2**31 - 1


def other_mysql_driver(engine: AsyncEngine) -> AsyncEngine | None:
    """The same MySQL/MariaDB database through the other async driver (aiomysql / asyncmy)."""
    if engine.dialect.name != "mysql":
        return None
    other = "mysql+aiomysql" if engine.dialect.driver == "asyncmy" else "mysql+asyncmy"
    return create_async_engine(engine.url.set(drivername=other))


async def test_writes_that_change_nothing_still_count_as_matched_on_every_driver(
    posts_engine: AsyncEngine,
) -> None:
    # MySQL reports rows *changed* unless the client asks for rows *found*: a compare-and-set
    # writing the value the row already holds, or an increment by 0, must not look missing.
    other = other_mysql_driver(posts_engine)
    engines = [posts_engine] if other is None else [posts_engine, other]
    try:
        for engine in engines:
            repo = repository(engine)
            post = await new_post(repo, status="draft", views=3)
            same = await repo.update(post["id"], {"status": "draft"}, expected={"status": "draft"})
            assert same["status"] == "draft"
            assert (await repo.increment(post["id"], views=0))["views"] == 3
            assert await repo.increment_many({"id": post["id"]}, views=0) == 1
            with pytest.raises(ConflictError):
                await repo.update(post["id"], {"status": "draft"}, expected={"status": "x"})
    finally:
        if other is not None:
            await other.dispose()


async def test_increment_with_a_composite_key(posts_engine: AsyncEngine) -> None:
    repo = create_repository(posts_engine, scores)
    await repo.create_many(
        [{"player": "ada", "game": 1, "points": 5}, {"player": "ada", "game": 2, "points": 0}]
    )

    assert (await repo.increment(("ada", 1), points=3))["points"] == 8
    assert (await repo.increment({"player": "ada", "game": 2}, points=-1))["points"] == -1
    with pytest.raises(InvalidQueryError):
        await repo.increment(("ada", 1), game=1)
    with pytest.raises(NotFoundError):
        await repo.increment(("bob", 1), points=1)
    with pytest.raises(ConflictError):
        await repo.update(("ada", 1), {"points": 0}, expected={"points": 5})
    assert [row["points"] for row in await repo.find_all(order_by="game")] == [8, -1]


async def test_a_failed_increment_in_a_savepoint_leaves_the_transaction_usable(
    posts_engine: AsyncEngine,
) -> None:
    post = await new_post(repository(posts_engine), views=2**31 - 1)
    async with posts_engine.connect() as connection:
        transaction = await connection.begin()
        repo = repository(connection)
        if posts_engine.dialect.name != "sqlite":
            with pytest.raises(DatabaseError):
                await repo.increment(post["id"], views=1, savepoint=True)
        assert (await repo.increment(post["id"], views=-1))["views"] == 2**31 - 2
        await transaction.commit()
    assert (await repository(posts_engine).get(post["id"]))["views"] == 2**31 - 2
