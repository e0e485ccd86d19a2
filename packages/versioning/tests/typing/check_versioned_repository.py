"""Typing test, checked by ``mypy --strict`` (the root pyproject lists this file).

The checked writes are typed on `VersionedRepository[Post]` without a cast.
"""

from __future__ import annotations

from typing import assert_type

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.repository import create_orm
from kysera.versioning import VersionedRepository, VersionPlugin

posts_table = sa.Table(
    "posts",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("title", sa.String(100)),
    sa.Column("version", sa.Integer),
)


class Post(BaseModel):
    id: int
    title: str
    version: int


async def typed_checked_writes(engine: AsyncEngine) -> None:
    orm = await create_orm(engine, plugins=[VersionPlugin()])
    posts = orm.repository(posts_table, entity=Post, repository_class=VersionedRepository[Post])
    post = await posts.get(1)
    assert_type(await posts.update(post.id, {"title": "t"}, version=post.version), Post)
    assert_type(await posts.bulk_update([(post.id, {"title": "t"}, post.version)]), list[Post])
    assert_type(await posts.bulk_update([(post.id, {"title": "t"})]), list[Post])
