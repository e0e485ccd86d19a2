"""Tables, models, a controllable clock and helpers shared by the timestamps tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

from kysera.core.capture import QueryProfiler
from kysera.timestamps import UTCDateTime

WRITE_VERBS = ("INSERT", "UPDATE", "DELETE")

metadata = sa.MetaData()

posts = sa.Table(
    "ts_posts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("slug", sa.String(50), nullable=False, unique=True),
    sa.Column("title", sa.String(100), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

memberships = sa.Table(  # a composite primary key
    "ts_memberships",
    metadata,
    sa.Column("org_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

events = sa.Table(  # append-only: only created_at
    "ts_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(50), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=True),
)

legacy = sa.Table(  # plain DateTime columns: naive UTC readings
    "ts_legacy",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(50), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=True),
    sa.Column("updated_at", sa.DateTime, nullable=True),
)

tags = sa.Table(  # no timestamp columns: the plugin leaves it alone
    "ts_tags",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(50), nullable=False),
)

articles = sa.Table(  # a soft-deletable table, for a stand-in soft delete plugin
    "ts_articles",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("title", sa.String(100), nullable=False),
    sa.Column("deleted_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)


class Post(BaseModel):
    id: int
    slug: str
    title: str
    created_at: datetime
    updated_at: datetime


class PostCreate(BaseModel):
    """Forbids unknown fields: timestamps are no input of the caller's."""

    model_config = ConfigDict(extra="forbid")

    slug: str
    title: str


class PostUpdate(BaseModel):
    """Ignores (strips) unknown fields, the pydantic default."""

    title: str | None = None


T0 = datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


class Clock:
    """A clock the tests move by hand; `TimestampsPlugin(now=clock)`."""

    def __init__(self, start: datetime = T0) -> None:
        self.current = start
        self.reads = 0

    def __call__(self) -> datetime:
        self.reads += 1
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


def writes(captured: QueryProfiler) -> list[str]:
    """The INSERT, UPDATE and DELETE statements among those captured."""
    return [query.sql for query in captured.queries if query.sql.startswith(WRITE_VERBS)]
