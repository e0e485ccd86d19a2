"""The service's tables, models and migrations (plain SQLAlchemy Core and pydantic)."""

from __future__ import annotations

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from kysera.audit import audit_migration
from kysera.migrations import Migration, migration

metadata = sa.MetaData()

users_table = sa.Table(
    "svc_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(200), nullable=False, unique=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("post_count", sa.Integer, nullable=False, server_default="0"),
)

posts_table = sa.Table(
    "svc_posts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("author_id", sa.ForeignKey("svc_users.id"), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.UniqueConstraint("author_id", "title", name="uq_svc_posts_author_title"),
)


class User(BaseModel):
    id: int
    email: str
    name: str
    post_count: int


class UserCreate(BaseModel):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=200)
    name: str = Field(min_length=1, max_length=100)


class UserUpdate(BaseModel):
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$", max_length=200)
    name: str | None = Field(default=None, min_length=1, max_length=100)


class Post(BaseModel):
    id: int
    author_id: int
    title: str
    body: str


class PostCreate(BaseModel):
    author_id: int
    title: str = Field(min_length=1, max_length=200)
    body: str = ""


async def _create_tables(conn: AsyncConnection) -> None:
    await conn.run_sync(metadata.create_all)


async def _drop_tables(conn: AsyncConnection) -> None:
    await conn.run_sync(metadata.drop_all)


AUDIT_TABLE = "svc_audit_logs"
_create_audit_log, _drop_audit_log = audit_migration(AUDIT_TABLE)

MIGRATIONS: list[Migration] = [
    migration("001_users_and_posts", up=_create_tables, down=_drop_tables),
    migration("002_audit_log", up=_create_audit_log, down=_drop_audit_log),
]
MIGRATIONS_TABLE = "svc_migrations"
