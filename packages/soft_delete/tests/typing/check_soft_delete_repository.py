"""Typing test, checked by ``mypy --strict`` (the root pyproject lists this file; nox -s typecheck).

Plugin methods are typed on `SoftDeleteRepository[Book]` without a cast; a plain repository
does not pretend to have them.
"""

from __future__ import annotations

from typing import assert_type  # typing.assert_type: Python 3.11+

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.repository import Repository, create_orm
from kysera.soft_delete import SoftDeletePlugin, SoftDeleteRepository

books_table = sa.Table(
    "books",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("title", sa.String(100)),
    sa.Column("deleted_at", sa.DateTime(timezone=True)),
)


class Book(BaseModel):
    id: int
    title: str


async def typed_plugin_methods(engine: AsyncEngine) -> None:
    orm = await create_orm(engine, plugins=[SoftDeletePlugin()])
    books = orm.repository(books_table, entity=Book, repository_class=SoftDeleteRepository[Book])

    assert_type(books, SoftDeleteRepository[Book])
    assert_type(await books.soft_delete(1), Book)
    assert_type(await books.restore(1), Book)
    assert_type(await books.find_with_deleted(1), Book | None)
    assert_type(await books.find_deleted(), list[Book])
    assert_type(await books.soft_delete_many([1, 2]), int)
    assert_type(await books.hard_delete(1), bool)
    # The repository's own methods keep their entity type.
    assert_type(await books.find_by_id(1), Book | None)

    plain = orm.repository(books_table, entity=Book)
    assert_type(plain, Repository[Book])
    await plain.soft_delete(1)  # type: ignore[attr-defined]
