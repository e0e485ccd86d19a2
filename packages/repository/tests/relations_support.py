"""Tables and models of the relation tests (imported by test modules)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.repository import Orm, belongs_to, create_orm, has_many, has_one, many_to_many

metadata = sa.MetaData()

authors = sa.Table(
    "rl_authors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(50), nullable=False),
    sa.Column("country", sa.String(2), nullable=False, server_default="NL"),
)
books = sa.Table(
    "rl_books",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("author_id", sa.ForeignKey("rl_authors.id"), nullable=True, index=True),
    sa.Column("title", sa.String(50), nullable=False),
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("deleted_at", sa.DateTime, nullable=True),
)
tags = sa.Table(
    "rl_tags",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("label", sa.String(30), nullable=False),
    sa.Column("deleted_at", sa.DateTime, nullable=True),
)
book_tags = sa.Table(
    "rl_book_tags",
    metadata,
    sa.Column("book_id", sa.ForeignKey("rl_books.id"), primary_key=True),
    sa.Column("tag_id", sa.ForeignKey("rl_tags.id"), primary_key=True),
)
profiles = sa.Table(
    "rl_profiles",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("author_id", sa.ForeignKey("rl_authors.id"), nullable=False, unique=True),
    sa.Column("bio", sa.String(100), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=True),
    sa.Column("updated_at", sa.DateTime, nullable=True),
)
# Self-reference, and two foreign keys to one table.
employees = sa.Table(
    "rl_employees",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(30), nullable=False),
    sa.Column("manager_id", sa.ForeignKey("rl_employees.id"), nullable=True),
)
messages = sa.Table(
    "rl_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sender_id", sa.ForeignKey("rl_employees.id"), nullable=False),
    sa.Column("recipient_id", sa.ForeignKey("rl_employees.id"), nullable=False),
    sa.Column("body", sa.String(50), nullable=False),
)
# A self-referencing join table: who follows whom.
follows = sa.Table(
    "rl_follows",
    metadata,
    sa.Column("follower_id", sa.ForeignKey("rl_employees.id"), primary_key=True),
    sa.Column("followee_id", sa.ForeignKey("rl_employees.id"), primary_key=True),
)
# Composite keys: a region's shops, keyed by (region, code).
shops = sa.Table(
    "rl_shops",
    metadata,
    sa.Column("region", sa.String(10), primary_key=True),
    sa.Column("code", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(30), nullable=False),
)
sales = sa.Table(
    "rl_sales",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("region", sa.String(10), nullable=False),
    sa.Column("shop_code", sa.Integer, nullable=False),
    sa.Column("amount", sa.Integer, nullable=False),
    sa.ForeignKeyConstraint(["region", "shop_code"], ["rl_shops.region", "rl_shops.code"]),
)

# Tenant-scoped: the tenancy plugin of the docs (tests/tenancy_plugin.py) scopes both.
teams = sa.Table(
    "rl_teams",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("name", sa.String(30), nullable=False),
)
members = sa.Table(
    "rl_members",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("team_id", sa.ForeignKey("rl_teams.id"), nullable=False),
    sa.Column("name", sa.String(30), nullable=False),
)

# String keys without a declared foreign key: MySQL/MariaDB's default collation matches them
# ignoring case and trailing spaces, the other databases exactly.
countries = sa.Table(
    "rl_countries",
    metadata,
    sa.Column("code", sa.String(5), primary_key=True),
    sa.Column("name", sa.String(30), nullable=False),
)
cities = sa.Table(
    "rl_cities",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("country_code", sa.String(5), nullable=False),
    sa.Column("name", sa.String(30), nullable=False),
)


class Tag(BaseModel):
    id: int
    label: str
    deleted_at: datetime | None = None


class Book(BaseModel):
    id: int
    author_id: int | None
    title: str
    year: int
    deleted_at: datetime | None = None
    tags: list[Tag] = []
    author: Author | None = None


class Profile(BaseModel):
    id: int
    author_id: int
    bio: str


class Author(BaseModel):
    id: int
    name: str
    country: str
    books: list[Book] = []
    books_count: int = 0
    profile: Profile | None = None


Book.model_rebuild()


def relate_all(orm: Orm) -> Orm:
    """Declare the relations of the test schema on ``orm``."""
    orm.relate(
        has_many(authors, "books", books),
        belongs_to(books, "author", authors),
        many_to_many(books, "tags", tags, through=book_tags),
        has_one(authors, "profile", profiles),
        belongs_to(employees, "manager", employees),
        has_many(employees, "reports", employees),
        belongs_to(messages, "sender", employees, foreign_key=messages.c.sender_id),
        belongs_to(messages, "recipient", employees, foreign_key=messages.c.recipient_id),
        has_many(employees, "sent", messages, foreign_key=messages.c.sender_id),
        has_many(employees, "received", messages, foreign_key="recipient_id"),
        many_to_many(employees, "following", employees, through=follows, source_key="follower_id"),
        many_to_many(
            employees,
            "followers",
            employees,
            through=follows,
            source_key=follows.c.followee_id,
            target_key=follows.c.follower_id,
        ),
        has_many(shops, "sales", sales),
        belongs_to(sales, "shop", shops),
        has_many(teams, "members", members),
        has_many(countries, "cities", cities, foreign_key="country_code"),
    )
    return orm


async def relations_orm(engine: AsyncEngine, plugins: Any = ()) -> Orm:
    return relate_all(await create_orm(engine, plugins=plugins))


async def insert(engine: AsyncEngine, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    # An executemany takes its columns from the first row: group rows by the keys they set.
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    async with engine.begin() as connection:
        for group in groups.values():
            await connection.execute(sa.insert(table), group)
