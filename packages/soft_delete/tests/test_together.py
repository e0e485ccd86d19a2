"""Soft delete, timestamps and a third-party plugin in one ORM.

Whatever order they are registered in, the plugins run in the same order (it comes from
their priorities) and every operation gives the same result. Needs kysera-timestamps, a
test-only requirement of this package.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import NotFoundError
from kysera.core.capture import capture_queries
from kysera.repository import QueryContext, Repository, create_orm, hookimpl
from kysera.soft_delete import SoftDeletePlugin

# A test-only requirement: [dependency-groups] test in pyproject.toml, installed by nox.
from kysera.timestamps import TimestampsPlugin, UTCDateTime

metadata = sa.MetaData()
documents = sa.Table(
    "sd_tg_documents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("title", sa.String(50), nullable=False),
    sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("deleted_at", UTCDateTime, nullable=True),
)
comments = sa.Table(
    "sd_tg_comments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("document_id", sa.ForeignKey("sd_tg_documents.id"), nullable=False),
    sa.Column("body", sa.String(50), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("deleted_at", UTCDateTime, nullable=True),
)


class ArchiveMixin(Repository[Any]):
    async def archive(self, id: Any, **options: Any) -> Any:
        return await self.update(id, {"archived": True}, **options)


class ArchivePlugin:
    """A third-party plugin: hides archived rows (unless `include_archived=True`) and adds
    `archive(id)`."""

    name = "archive"
    priority = 10

    @hookimpl
    def kysera_intercept_query(self, context: QueryContext) -> Any:
        table = context.table
        if (
            context.operation in ("select", "count")
            and table is not None
            and "archived" in table.c
            and not context.options.get("include_archived")
            # MySQL/MariaDB read an archived row back after archiving it: let that through.
            and not context.read_back
        ):
            return context.statement.where(table.c.archived.is_(False))  # type: ignore[attr-defined]
        return None

    @hookimpl
    def kysera_repository_mixin(self, table: sa.Table) -> type | None:
        return ArchiveMixin if "archived" in table.c else None


class Clock:
    def __init__(self) -> None:
        self.value = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.value

    def advance(self) -> datetime:
        self.value += timedelta(minutes=1)
        return self.value


@pytest_asyncio.fixture(loop_scope="session")
async def engine(kysera_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
    yield kysera_engine
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)


async def empty_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            await connection.execute(table.delete())


async def documents_with_both_plugins(engine: AsyncEngine) -> tuple[Any, Clock]:
    """Empty tables and the documents repository of an ORM with soft delete and timestamps
    on one clock."""
    await empty_tables(engine)
    clock = Clock()
    orm = await create_orm(
        engine, plugins=[SoftDeletePlugin(now=clock), TimestampsPlugin(now=clock)]
    )
    return orm.repository(documents), clock


async def scenario(engine: AsyncEngine, order: tuple[int, ...]) -> list[Any]:
    """Run the same operations with the plugins registered in ``order``; return what they
    gave."""
    await empty_tables(engine)
    clock = Clock()
    plugins: list[object] = [
        SoftDeletePlugin(now=clock),
        TimestampsPlugin(now=clock),
        ArchivePlugin(),
    ]
    orm = await create_orm(engine, plugins=[plugins[index] for index in order])
    docs: Any = orm.repository(documents)
    notes: Any = orm.repository(comments)
    seen: list[Any] = [orm.registry.names]

    first, _second, third = await docs.create_many(
        [{"id": n, "title": f"doc-{n}"} for n in (1, 2, 3)]
    )
    seen.append((first["created_at"], first["updated_at"], first["deleted_at"]))
    await notes.create_many(
        [{"id": 1, "document_id": 1, "body": "a"}, {"id": 2, "document_id": 2, "body": "b"}]
    )

    deleted_at = clock.advance()
    deleted = await docs.soft_delete(1)
    assert deleted["deleted_at"] == deleted_at  # read back aware UTC on every database
    assert deleted["updated_at"] == deleted_at  # timestamps sees the soft delete
    assert deleted["created_at"] == first["created_at"]
    seen.append((deleted["updated_at"], deleted["deleted_at"]))

    archived_at = clock.advance()
    archived = await docs.archive(2)
    assert (archived["archived"], archived["updated_at"]) == (True, archived_at)
    with pytest.raises(NotFoundError):
        await docs.archive(1)  # deleted: the third-party update cannot reach it
    with pytest.raises(NotFoundError):
        await docs.update(1, {"title": "x"})

    seen.append([d["id"] for d in await docs.find_all(order_by="id")])
    seen.append(await docs.count())
    seen.append(await docs.count(include_deleted=True))
    seen.append(await docs.count(include_archived=True))
    seen.append(await docs.count(include_deleted=True, include_archived=True))
    seen.append([d["id"] for d in await docs.find_deleted(include_archived=True)])
    page = await docs.paginate(page=1, limit=10, include_archived=True)
    seen.append(([d["id"] for d in page.items], page.total))

    joined = (
        sa.select(documents.c.id, comments.c.body)
        .outerjoin_from(documents, comments)
        .order_by(documents.c.id)
    )
    seen.append([tuple(row) for row in await orm.execute(joined)])

    restored_at = clock.advance()
    restored = await docs.restore(1)
    assert (restored["deleted_at"], restored["updated_at"]) == (None, restored_at)
    seen.append([d["id"] for d in await docs.find_all(order_by="id")])
    seen.append(await docs.delete(third["id"]))
    seen.append(await docs.find_with_deleted(third["id"]))
    return seen


async def test_three_plugins_in_any_registration_order_behave_the_same(
    engine: AsyncEngine,
) -> None:
    results = [await scenario(engine, order) for order in itertools.permutations(range(3))]
    assert all(result == results[0] for result in results)
    names, *_ = results[0]
    assert names == ("archive", "soft_delete", "timestamps")  # by priority: 10, 0, -100
    assert results[0][3:11] == [
        [3],  # 1 deleted, 2 archived
        1,
        2,
        2,
        3,
        [1],
        ([2, 3], 2),
        [(2, "b"), (3, None)],  # the archive plugin leaves orm.execute alone
    ]
    assert results[0][11:] == [[1, 3], True, None]


async def test_soft_delete_passes_its_options_to_the_other_plugins(engine: AsyncEngine) -> None:
    """``timestamps=False`` on a soft delete reaches the timestamps plugin's
    ``prepare_update`` (through ``prepared_update``) and its interceptor."""
    docs, clock = await documents_with_both_plugins(engine)
    await docs.create_many([{"id": n, "title": f"doc-{n}"} for n in (1, 2, 3)])
    created_at = clock.value
    deleted_at = clock.advance()

    quiet = await docs.soft_delete(1, timestamps=False)
    assert (quiet["deleted_at"], quiet["updated_at"]) == (deleted_at, created_at)
    assert await docs.soft_delete_many([2], timestamps=False) == 1
    assert (await docs.restore(2, timestamps=False))["updated_at"] == created_at
    loud = await docs.soft_delete(3)
    assert loud["updated_at"] == deleted_at

    stored = await docs.find_all_with_deleted(order_by="id")
    assert [row["updated_at"] for row in stored] == [created_at, created_at, deleted_at]


async def test_create_many_through_both_plugins_stays_one_array_insert(
    engine: AsyncEngine,
) -> None:
    """Neither plugin rewrites create_many's INSERT (timestamps stamps the validated rows
    before it), so PostgreSQL still gets the one-statement array insert: one INSERT for
    any number of rows. Every row comes back stamped with the call's one instant, not
    deleted, in input order, and is stored so."""
    docs, clock = await documents_with_both_plugins(engine)
    titles = [f"bulk-{n}" for n in range(300)]

    with capture_queries(engine) as log:
        created = await docs.create_many([{"title": title} for title in titles])
    again = await docs.create_many([{"title": "again-1"}, {"title": "again-2"}])

    assert [row["title"] for row in created] == titles
    stamped = (clock.value, clock.value, None)
    assert {(row["created_at"], row["updated_at"], row["deleted_at"]) for row in created} == {
        stamped
    }
    assert [row["title"] for row in again] == ["again-1", "again-2"]
    stored = await docs.find_all(order_by="id")
    assert [row["title"] for row in stored] == [*titles, "again-1", "again-2"]
    assert stored[: len(titles)] == created
    inserts = [query.sql for query in log.queries if query.sql.startswith("INSERT")]
    if engine.dialect.name == "postgresql":
        assert len(inserts) == 1
        assert "unnest" in inserts[0]
