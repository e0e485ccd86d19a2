"""VersionPlugin: every update path increments the version; checked writes conflict."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from versioning_support import AUDIT_TABLE, defaulted, docs, members, plain, tickets

from kysera.audit import AuditPlugin, create_audit_table
from kysera.core import BadRequestError, InvalidQueryError, NotFoundError
from kysera.core.capture import capture_queries
from kysera.core.testing import snapshot_table
from kysera.repository import ConflictError, Repository, create_orm
from kysera.soft_delete import SoftDeletePlugin
from kysera.timestamps import TimestampsPlugin
from kysera.versioning import VersionedRepository, VersionPlugin

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def repository(engine: AsyncEngine, *plugins: Any, table: sa.Table = docs) -> Any:
    orm = await create_orm(engine, plugins=[*plugins, VersionPlugin()])
    return orm.repository(table)


async def new_doc(repo: Repository[Any], slug: str = "a", **values: Any) -> dict[str, Any]:
    return dict(await repo.create({"slug": slug, "title": slug, **values}))


def mysql_engines(engine: AsyncEngine) -> list[AsyncEngine]:
    """``engine``, and on MySQL/MariaDB the same database through the other async driver
    (asyncmy / aiomysql report affected rows differently unless asked for found rows)."""
    if engine.dialect.name != "mysql":
        return [engine]
    other = "mysql+aiomysql" if engine.dialect.driver == "asyncmy" else "mysql+asyncmy"
    return [engine, create_async_engine(engine.url.set(drivername=other))]


@pytest.fixture
async def engines(engine: AsyncEngine) -> AsyncIterator[list[AsyncEngine]]:
    found = mysql_engines(engine)
    yield found
    for extra in found[1:]:
        await extra.dispose()


# --- inserts ----------------------------------------------------------------------------------


async def test_inserts_start_at_one(engine: AsyncEngine) -> None:
    repo = await repository(engine)
    one = await new_doc(repo, "a")
    many = await repo.create_many([{"slug": "b", "title": "b"}, {"slug": "c", "title": "c"}])
    upserted = await repo.upsert({"slug": "d", "title": "d"}, conflict=["slug"])
    assert [one["version"], *(row["version"] for row in many), upserted["version"]] == [1] * 4


async def test_an_insert_keeps_a_given_version_and_the_column_default(engine: AsyncEngine) -> None:
    repo = await repository(engine)
    assert (await new_doc(repo, "a", version=7))["version"] == 7
    with_default = await repository(engine, table=defaulted)
    assert (await with_default.create({"title": "t"}))["version"] == 100
    untouched = await repository(engine, table=plain)
    row = await untouched.create({"title": "t"})
    assert set(await untouched.update(row["id"], {"title": "u"})) == {"id", "title"}


# --- every update path increments ---------------------------------------------------------------


async def test_every_update_path_increments_the_version(engine: AsyncEngine) -> None:
    repo = await repository(engine, SoftDeletePlugin())
    doc = await new_doc(repo, "a")
    other = await new_doc(repo, "b")
    id = doc["id"]

    async def version() -> int:
        return int((await repo.find_with_deleted(id))["version"])

    assert (await repo.update(id, {"title": "u"}))["version"] == 2
    assert await repo.update_many({"id": id}, {"title": "m"}) == 1
    assert await version() == 3
    bulk = await repo.bulk_update([(id, {"title": "b"}), (other["id"], {"title": "o"})])
    assert [row["version"] for row in bulk] == [4, 2]
    assert (await repo.increment(id, views=2))["version"] == 5
    assert await repo.increment_many({"id": id}, views=1) == 1
    assert await version() == 6
    await repo.soft_delete(id)
    assert await version() == 7
    await repo.restore(id)
    assert await version() == 8
    await repo.upsert({"slug": "a", "title": "up"}, conflict=["slug"])
    assert await version() == 9
    assert (await repo.get(other["id"]))["version"] == 2  # only the rows written


async def test_data_setting_the_version_is_refused_and_nothing_is_written(
    engine: AsyncEngine,
) -> None:
    repo = await repository(engine)
    doc = await new_doc(repo)
    before = await snapshot_table(engine, docs)
    with pytest.raises(InvalidQueryError, match="maintained by VersionPlugin"):
        await repo.update(doc["id"], {"title": "x", "version": 40})
    with pytest.raises(InvalidQueryError):
        await repo.update_many({}, {"version": 40})
    with pytest.raises(InvalidQueryError):
        await repo.bulk_update([(doc["id"], {"version": 40})])
    assert await snapshot_table(engine, docs) == before


async def test_a_statement_that_sets_the_version_itself_is_left_alone(engine: AsyncEngine) -> None:
    repo = await repository(engine)
    doc = await new_doc(repo)
    orm = await create_orm(engine, plugins=[VersionPlugin()])
    await orm.execute(sa.update(docs).values(version=40))
    assert (await repo.get(doc["id"]))["version"] == 40
    await orm.execute(sa.update(docs).values(title="x"))
    assert (await repo.get(doc["id"]))["version"] == 41


# --- checked writes ---------------------------------------------------------------------------


async def test_update_with_the_current_version_writes_and_bumps(engines: list[AsyncEngine]) -> None:
    for index, engine in enumerate(engines):
        repo = await repository(engine)
        doc = await new_doc(repo, f"s{index}")
        # The same values again: MySQL counts the row as matched, not as missing.
        same = await repo.update(doc["id"], {"title": doc["title"]}, version=1)
        assert same["version"] == 2


async def test_a_stale_version_raises_conflict_with_the_current_row(
    engines: list[AsyncEngine],
) -> None:
    for index, engine in enumerate(engines):
        repo = await repository(engine)
        doc = await new_doc(repo, f"c{index}")
        await repo.update(doc["id"], {"title": "newer"})
        before = await snapshot_table(engine, docs)
        with pytest.raises(ConflictError) as raised:
            await repo.update(doc["id"], {"title": "stale"}, version=1)
        assert raised.value.code == "CONFLICT"
        assert raised.value.current is not None
        assert raised.value.current["version"] == 2
        assert raised.value.expected == {"version": 1}
        assert await snapshot_table(engine, docs) == before


async def test_a_missing_row_with_a_version_is_not_found(engine: AsyncEngine) -> None:
    repo = await repository(engine)
    with pytest.raises(NotFoundError):
        await repo.update(12345, {"title": "x"}, version=1)


async def test_two_writers_with_the_same_version_exactly_one_wins(
    engines: list[AsyncEngine],
) -> None:
    for index, engine in enumerate(engines):
        repo = await repository(engine)
        doc = await new_doc(repo, f"w{index}")
        outcomes = await asyncio.gather(
            *(repo.update(doc["id"], {"title": f"writer {n}"}, version=1) for n in range(2)),
            return_exceptions=True,
        )
        conflicts = [item for item in outcomes if isinstance(item, ConflictError)]
        written = [item for item in outcomes if not isinstance(item, BaseException)]
        assert len(conflicts) == 1, outcomes
        assert len(written) == 1
        stored = await repo.get(doc["id"])
        assert stored["version"] == 2
        assert stored["title"] == written[0]["title"]


async def test_many_writers_with_the_same_version_exactly_one_wins(engine: AsyncEngine) -> None:
    repo = await repository(engine)
    doc = await new_doc(repo)
    outcomes = await asyncio.gather(
        *(repo.update(doc["id"], {"title": f"w{n}"}, version=1) for n in range(10)),
        return_exceptions=True,
    )
    assert sum(not isinstance(item, BaseException) for item in outcomes) == 1
    assert all(
        isinstance(item, ConflictError) for item in outcomes if isinstance(item, BaseException)
    )
    assert (await repo.get(doc["id"]))["version"] == 2


# --- versioned bulk_update --------------------------------------------------------------------


async def test_versioned_bulk_update_writes_all_with_current_versions(engine: AsyncEngine) -> None:
    repo = await repository(engine)
    rows = await repo.create_many([{"slug": f"b{n}", "title": "t"} for n in range(100)])
    changed = await repo.bulk_update([(row["id"], {"title": "new"}, 1) for row in rows])
    assert [row["version"] for row in changed] == [2] * 100
    assert {row["title"] for row in changed} == {"new"}


async def test_a_stale_version_in_a_hundred_row_bulk_update_writes_nothing(
    engines: list[AsyncEngine],
) -> None:
    for index, engine in enumerate(engines):
        repo = await repository(engine)
        rows = await repo.create_many([{"slug": f"s{index}-{n}", "title": "t"} for n in range(100)])
        stale = rows[57]["id"]
        await repo.update(stale, {"title": "moved on"})
        before = await snapshot_table(engine, docs)
        with pytest.raises(ConflictError) as raised:
            await repo.bulk_update([(row["id"], {"title": "bulk"}, 1) for row in rows])
        assert raised.value.filters == stale
        assert raised.value.current is not None
        assert raised.value.current["version"] == 2
        assert await snapshot_table(engine, docs) == before


async def test_a_versioned_bulk_update_of_a_missing_key_writes_nothing(engine: AsyncEngine) -> None:
    repo = await repository(engine)
    doc = await new_doc(repo)
    before = await snapshot_table(engine, docs)
    with pytest.raises(NotFoundError):
        await repo.bulk_update([(doc["id"], {"title": "x"}, 1), (999999, {"title": "y"}, 1)])
    assert await snapshot_table(engine, docs) == before


# --- with audit and timestamps ------------------------------------------------------------------


@pytest.mark.parametrize("version_first", [True, False])
async def test_works_with_audit_and_timestamps_in_any_order(
    engine: AsyncEngine, version_first: bool
) -> None:
    audit_table = await create_audit_table(engine, AUDIT_TABLE)
    async with engine.begin() as connection:
        await connection.execute(sa.delete(audit_table))
    others: list[Any] = [TimestampsPlugin(), AuditPlugin(table=AUDIT_TABLE)]
    plugins = [VersionPlugin(), *others] if version_first else [*others, VersionPlugin()]
    orm = await create_orm(engine, plugins=plugins)
    repo: Any = orm.repository(docs)
    doc = await repo.create({"slug": "a", "title": "a"})
    assert doc["version"] == 1
    assert doc["updated_at"] is not None
    updated = await repo.update(doc["id"], {"title": "b"}, version=1)
    assert updated["version"] == 2
    with pytest.raises(ConflictError):
        await repo.update(doc["id"], {"title": "c"}, version=1)
    bulk = await repo.bulk_update([(doc["id"], {"title": "d"}, 2)])
    assert bulk[0]["version"] == 3
    history = await repo.get_audit_history(doc["id"])
    # The audit log saw the versions each write produced, and nothing of the refused one.
    versions = sorted(
        entry.new_values["version"] for entry in history if entry.new_values is not None
    )
    assert versions == [1, 2, 3]


# --- more paths and races ---------------------------------------------------------------------


async def test_upsert_many_bumps_existing_rows_and_starts_new_ones_at_one(
    engine: AsyncEngine,
) -> None:
    repo = await repository(engine)
    await new_doc(repo, "a")
    await repo.upsert_many(
        [{"slug": "a", "title": "again"}, {"slug": "b", "title": "new"}], conflict=["slug"]
    )
    stored = {row["slug"]: row["version"] for row in await repo.find_all()}
    assert stored == {"a": 2, "b": 1}


async def test_versioned_bulk_update_runs_a_constant_number_of_statements(
    engine: AsyncEngine,
) -> None:
    repo = await repository(engine)
    small = await repo.create_many([{"slug": f"s{n}", "title": "t"} for n in range(3)])
    big = await repo.create_many([{"slug": f"b{n}", "title": "t"} for n in range(300)])
    counts = []
    for rows in (small, big):
        with capture_queries(engine) as log:
            await repo.bulk_update([(row["id"], {"title": "new"}, 1) for row in rows])
        counts.append(len(log.queries))
    assert counts[0] == counts[1]


async def test_two_versioned_bulk_updates_with_the_same_versions_exactly_one_wins(
    engines: list[AsyncEngine],
) -> None:
    for index, engine in enumerate(engines):
        repo = await repository(engine)
        rows = await repo.create_many([{"slug": f"r{index}-{n}", "title": "t"} for n in range(20)])
        outcomes = await asyncio.gather(
            *(
                repo.bulk_update([(row["id"], {"title": f"writer {w}"}, 1) for row in rows])
                for w in range(2)
            ),
            return_exceptions=True,
        )
        assert sum(isinstance(item, ConflictError) for item in outcomes) == 1, outcomes
        winner = next(item for item in outcomes if not isinstance(item, BaseException))
        # This engine's rows only: the loop's earlier rounds may have had the other winner.
        stored = await repo.find_by_ids([row["id"] for row in rows])
        assert len(stored) == len(rows)
        assert {row["version"] for row in stored} == {2}
        assert {row["title"] for row in stored} == {winner[0]["title"]}


# --- the typed repository -----------------------------------------------------------------------


async def test_versioned_repository_is_typed_and_refuses_an_orm_without_the_plugin(
    engine: AsyncEngine,
) -> None:
    orm = await create_orm(engine, plugins=[VersionPlugin()])
    repo = orm.repository(docs, repository_class=VersionedRepository[Any])
    doc = await repo.create({"slug": "a", "title": "a"})
    updated = await repo.update(doc["id"], {"title": "b"}, version=1)
    assert updated["version"] == 2
    assert (await repo.bulk_update([(doc["id"], {"title": "c"}, 2)]))[0]["version"] == 3
    bare = await create_orm(engine)
    with pytest.raises(BadRequestError, match="needs an ORM with VersionPlugin"):
        bare.repository(docs, repository_class=VersionedRepository[Any])


async def test_versioned_bulk_update_with_a_composite_key(engine: AsyncEngine) -> None:
    repo = await repository(engine, table=members)
    await repo.create_many([{"org_id": 1, "user_id": n, "role": "member"} for n in range(1, 4)])
    await repo.update((1, 2), {"role": "admin"})
    before = await snapshot_table(engine, members)
    with pytest.raises(ConflictError) as raised:
        await repo.bulk_update([((1, n), {"role": "owner"}, 1) for n in range(1, 4)])
    assert raised.value.filters == (1, 2)
    assert await snapshot_table(engine, members) == before
    changed = await repo.bulk_update([((1, 1), {"role": "owner"}, 1), ((1, 2), {"role": "x"}, 2)])
    assert [row["version"] for row in changed] == [2, 3]


async def test_versioned_bulk_update_takes_keys_in_every_form_update_takes(
    engine: AsyncEngine,
) -> None:
    members_repo = await repository(engine, table=members)
    await members_repo.create({"org_id": 1, "user_id": 1, "role": "member"})
    by_dict = await members_repo.bulk_update([({"org_id": 1, "user_id": 1}, {"role": "x"}, 1)])
    assert by_dict[0]["version"] == 2

    tickets_repo = await repository(engine, table=tickets)
    ticket = await tickets_repo.create({"id": uuid.uuid4(), "title": "t"})
    by_text = await tickets_repo.bulk_update([(str(ticket["id"]), {"title": "u"}, 1)])
    assert by_text[0]["version"] == 2
    with pytest.raises(ConflictError) as raised:
        await tickets_repo.bulk_update([(str(ticket["id"]), {"title": "v"}, 1)])
    assert raised.value.current is not None
    assert raised.value.current["version"] == 2


async def test_versioned_bulk_update_refuses_a_row_given_twice(engine: AsyncEngine) -> None:
    # Two changes checked against the same version cannot both win: refused, not merged.
    repo = await repository(engine)
    doc = await new_doc(repo)
    before = await snapshot_table(engine, docs)
    with pytest.raises(InvalidQueryError, match="more than once"):
        await repo.bulk_update([(doc["id"], {"title": "a"}, 1), (doc["id"], {"title": "b"}, 1)])
    with pytest.raises(InvalidQueryError, match="more than once"):
        await repo.bulk_update([(doc["id"], {"title": "a"}, 1), ((doc["id"],), {"title": "b"}, 2)])
    assert await snapshot_table(engine, docs) == before


async def test_a_soft_deleted_row_is_missing_for_a_versioned_bulk_update(
    engine: AsyncEngine,
) -> None:
    repo = await repository(engine, SoftDeletePlugin())
    doc = await new_doc(repo)
    await repo.soft_delete(doc["id"])  # version 2
    before = await snapshot_table(engine, docs)
    for version in (2, 1):  # current or stale, the row is gone for writes
        with pytest.raises(NotFoundError):
            await repo.bulk_update([(doc["id"], {"title": "x"}, version)])
    assert await snapshot_table(engine, docs) == before
    restored = await repo.bulk_update([(doc["id"], {"title": "x"}, 2)], include_deleted=True)
    assert restored[0]["version"] == 3


async def test_an_upsert_keeps_counting_whatever_version_its_data_holds(
    engine: AsyncEngine,
) -> None:
    repo = await repository(engine)
    doc = await new_doc(repo, "a")
    await repo.update(doc["id"], {"title": "b"}, version=1)
    await repo.update(doc["id"], {"title": "c"}, version=2)
    # A writer holding version 1 cannot roll the row back to it through an upsert.
    upserted = await repo.upsert({"slug": "a", "title": "d", "version": 1}, conflict=["slug"])
    assert upserted["version"] == 4
    await repo.upsert_many([{"slug": "a", "title": "e", "version": 1}], conflict=["slug"])
    assert (await repo.get(doc["id"]))["version"] == 5
    # A new row still starts where its data says.
    assert (await repo.upsert({"slug": "n", "title": "n", "version": 9}, conflict=["slug"]))[
        "version"
    ] == 9
    with pytest.raises(ConflictError):
        await repo.update(doc["id"], {"title": "f"}, version=1)


async def test_a_versioned_bulk_update_of_more_keys_than_one_statement_binds(
    engine: AsyncEngine,
) -> None:
    # More keys than PostgreSQL (32,767) and SQLite (32,766) bind in one statement: one
    # array parameter on PostgreSQL, batches of 10,000 elsewhere.
    repo = await repository(engine)
    rows = await repo.create_many([{"slug": f"k{n}", "title": "t"} for n in range(33_000)])
    changed = await repo.bulk_update([(row["id"], {"title": "new"}, 1) for row in rows])
    assert {row["version"] for row in changed} == {2}
    assert len(changed) == len(rows)
