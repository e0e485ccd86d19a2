"""Typing test, checked by ``mypy --strict`` (the root pyproject lists this file; nox -s typecheck).

Timestamp methods are typed on `TimestampsRepository[Post]` without a cast; a plain
repository does not pretend to have them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import assert_type  # typing.assert_type: Python 3.11+

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.repository import Repository, create_orm
from kysera.timestamps import TimestampsPlugin, TimestampsRepository

posts_table = sa.Table(
    "posts",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("title", sa.String(100)),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)


class Post(BaseModel):
    id: int
    title: str
    created_at: datetime
    updated_at: datetime


async def typed_plugin_methods(engine: AsyncEngine) -> None:
    orm = await create_orm(engine, plugins=[TimestampsPlugin()])
    posts = orm.repository(posts_table, entity=Post, repository_class=TimestampsRepository[Post])
    since = datetime(2024, 1, 1, tzinfo=UTC)

    assert_type(posts, TimestampsRepository[Post])
    assert_type(await posts.touch(1), Post)
    assert_type(await posts.touch_many([1, 2]), int)
    assert_type(await posts.find_created_after(since, limit=5), list[Post])
    assert_type(await posts.find_created_before(since), list[Post])
    assert_type(await posts.find_created_between(since, since), list[Post])
    assert_type(await posts.find_updated_after(since), list[Post])
    assert_type(await posts.find_recently_created(), list[Post])
    assert_type(await posts.find_recently_updated(5), list[Post])
    assert_type(await posts.create_without_timestamps({"title": "t"}), Post)
    assert_type(await posts.update_without_timestamp(1, {"title": "t"}), Post)
    await posts.find_created_after("2024-01-01")  # type: ignore[arg-type]
    # The repository's own methods keep their entity type.
    assert_type(await posts.find_by_id(1), Post | None)

    plain = orm.repository(posts_table, entity=Post)
    assert_type(plain, Repository[Post])
    await plain.touch(1)  # type: ignore[attr-defined]
