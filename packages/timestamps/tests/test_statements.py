"""Statements that do not come from the repository's own write methods: another plugin's
UPDATEs (a soft delete, a restore) and `orm.execute`; on every configured database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from timestamps_support import T0, Clock, articles, posts

from kysera.core.testing import snapshot_table
from kysera.repository import (
    Orm,
    PluginError,
    QueryContext,
    Repository,
    create_orm,
    hookimpl,
)
from kysera.timestamps import TimestampsPlugin, without_timestamps

EARLY = datetime(2001, 1, 1, tzinfo=UTC)
LATER = T0 + timedelta(hours=1)


class ArchiveMixin(Repository[Any]):
    """Like a soft delete plugin: writes its own UPDATE, through the other plugins."""

    async def archive(self, id: Any, **options: Any) -> int:
        statement = self.intercept(
            "update",
            sa.update(self.table).where(self.table.c.id == id).values(deleted_at=datetime.now(UTC)),
            options,
        )
        async with self.atomic() as repository:
            connection = repository.executor
            assert isinstance(connection, AsyncConnection)
            return int((await connection.execute(statement)).rowcount)

    async def archive_prepared(self, id: Any, **options: Any) -> int:
        """The same, with the values passed through prepare_update first (the other plugins
        see them as an update's values), as the soft delete plugin does."""
        values = self.prepare_update({"deleted_at": datetime.now(UTC)})
        statement = self.intercept(
            "update", sa.update(self.table).where(self.table.c.id == id).values(values), options
        )
        async with self.atomic() as repository:
            connection = repository.executor
            assert isinstance(connection, AsyncConnection)
            return int((await connection.execute(statement)).rowcount)

    async def archive_with_options(self, id: Any, **options: Any) -> int:
        """The same, preparing the values through prepared_update with the call's options,
        as the soft delete plugin does: the other mixins see them in call_options."""
        values = self.prepared_update({"deleted_at": datetime.now(UTC)}, options)
        statement = self.intercept(
            "update", sa.update(self.table).where(self.table.c.id == id).values(values), options
        )
        async with self.atomic() as repository:
            connection = repository.executor
            assert isinstance(connection, AsyncConnection)
            return int((await connection.execute(statement)).rowcount)


class ArchivePlugin:
    name = "archive"

    @hookimpl
    def kysera_repository_mixin(self, table: sa.Table) -> type | None:
        return ArchiveMixin if "deleted_at" in table.c else None


@pytest.mark.parametrize("order", ["archive-first", "timestamps-first"])
async def test_another_plugins_update_gets_updated_at(
    engine: AsyncEngine, clock: Clock, order: str
) -> None:
    plugins: list[Any] = [ArchivePlugin(), TimestampsPlugin(now=clock)]
    if order == "timestamps-first":
        plugins.reverse()
    orm = await create_orm(engine, plugins=plugins)
    repo = orm.repository(articles)
    article = await repo.create({"title": "Draft"})
    clock.advance(hours=1)

    assert await repo.archive(article["id"]) == 1
    assert await repo.archive(article["id"], timestamps=False) == 1

    [stored] = await snapshot_table(engine, articles)
    assert stored["deleted_at"] is not None
    assert (stored["created_at"], stored["updated_at"]) == (T0, LATER)


async def test_other_plugins_values_from_prepare_update_get_updated_at(
    engine: AsyncEngine, clock: Clock
) -> None:
    orm = await create_orm(engine, plugins=[ArchivePlugin(), TimestampsPlugin(now=clock)])
    repo = orm.repository(articles)
    first = await repo.create({"title": "First"})
    second = await repo.create({"title": "Second"})
    clock.advance(hours=1)

    assert await repo.archive_prepared(first["id"]) == 1
    with without_timestamps():  # reaches writes that take no timestamps=False
        assert await repo.archive_prepared(second["id"]) == 1

    stored = await snapshot_table(engine, articles)
    assert [(r["deleted_at"] is not None, r["updated_at"]) for r in stored] == [
        (True, LATER),
        (True, T0),
    ]


async def test_another_plugins_prepared_values_honour_timestamps_false(
    engine: AsyncEngine, clock: Clock
) -> None:
    orm = await create_orm(engine, plugins=[ArchivePlugin(), TimestampsPlugin(now=clock)])
    repo = orm.repository(articles)
    first = await repo.create({"title": "First"})
    second = await repo.create({"title": "Second"})
    clock.advance(hours=1)

    assert await repo.archive_with_options(first["id"]) == 1
    assert await repo.archive_with_options(second["id"], timestamps=False) == 1

    stored = await snapshot_table(engine, articles)
    assert [(r["deleted_at"] is not None, r["updated_at"]) for r in stored] == [
        (True, LATER),
        (True, T0),
    ]


async def test_without_timestamps_covers_every_write_in_the_block(
    orm: Orm, engine: AsyncEngine
) -> None:
    repo = orm.repository(posts)
    with without_timestamps():
        await repo.create({"slug": "a", "title": "A", "created_at": EARLY, "updated_at": EARLY})
        await repo.update_many({}, {"title": "B"})
        await orm.execute(sa.update(posts).values(title="C"))
    await repo.update_many({}, {"title": "D"})

    [stored] = await snapshot_table(engine, posts)
    assert (stored["title"], stored["created_at"], stored["updated_at"]) == ("D", EARLY, T0)


class DeleteToArchivePlugin:
    """Like soft delete's replace_delete: turns the repository's DELETE into an UPDATE."""

    name = "delete-to-archive"

    @hookimpl
    def kysera_intercept_query(self, context: QueryContext) -> Any:
        statement = context.statement
        if isinstance(statement, sa.Delete) and "deleted_at" in statement.table.c:
            table = statement.table
            return (
                sa.update(table).where(statement.whereclause).values(deleted_at=datetime.now(UTC))
            )
        return None


async def test_an_update_another_plugin_made_of_a_delete_gets_updated_at(
    engine: AsyncEngine, clock: Clock
) -> None:
    orm = await create_orm(engine, plugins=[TimestampsPlugin(now=clock), DeleteToArchivePlugin()])
    repo = orm.repository(articles)
    article = await repo.create({"title": "Draft"})
    clock.advance(hours=1)

    assert await repo.delete(article["id"]) is True

    [stored] = await snapshot_table(engine, articles)
    assert stored["deleted_at"] is not None
    assert (stored["created_at"], stored["updated_at"]) == (T0, LATER)


async def test_orm_execute_updates_get_updated_at(
    orm: Orm, engine: AsyncEngine, clock: Clock
) -> None:
    await orm.repository(posts).create_many(
        [{"slug": "a", "title": "A"}, {"slug": "b", "title": "B"}, {"slug": "c", "title": "C"}]
    )
    clock.advance(hours=1)

    await orm.execute(sa.update(posts).where(posts.c.slug == "a").values(title="A2"))
    await orm.execute(sa.update(posts).where(posts.c.slug == "b").values(updated_at=EARLY))
    await orm.execute(
        sa.update(posts).where(posts.c.slug == "c").values(title="C2"), timestamps=False
    )

    stored = await snapshot_table(engine, posts)
    assert [(r["title"], r["updated_at"]) for r in stored] == [
        ("A2", LATER),
        ("B", EARLY),
        ("C2", T0),
    ]


async def test_orm_execute_inserts_get_both_columns(orm: Orm, engine: AsyncEngine) -> None:
    await orm.execute(sa.insert(posts).values(slug="a", title="A"))
    await orm.execute(sa.insert(posts).values(slug="b", title="B", created_at=EARLY))

    stored = await snapshot_table(engine, posts)
    assert [(r["created_at"], r["updated_at"]) for r in stored] == [(T0, T0), (EARLY, T0)]


async def test_orm_execute_multi_row_values_run_as_written(orm: Orm, engine: AsyncEngine) -> None:
    # SQLAlchemy cannot add a value to a multi-row VALUES: such INSERTs must carry their
    # own timestamps (or go through create_many, which stamps every row).
    rows = [{"slug": s, "title": s, "created_at": EARLY, "updated_at": EARLY} for s in "ab"]
    await orm.execute(sa.insert(posts).values(rows))

    stored = await snapshot_table(engine, posts)
    assert [(r["created_at"], r["updated_at"]) for r in stored] == [(EARLY, EARLY)] * 2


async def test_an_ordered_values_update_must_set_updated_at_itself(orm: Orm) -> None:
    statement = sa.update(posts).ordered_values((posts.c.title, "T"))

    with pytest.raises(PluginError, match="ordered_values"):
        await orm.execute(statement)
    result = await orm.execute(
        sa.update(posts).ordered_values((posts.c.title, "T"), (posts.c.updated_at, EARLY))
    )
    assert result.rowcount == 0
