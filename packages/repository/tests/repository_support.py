"""Tables, models and helpers shared by the repository tests (imported by test modules)."""

from __future__ import annotations

import enum

import sqlalchemy as sa
from pydantic import BaseModel, Field

from kysera.core.capture import QueryProfiler

WRITE_VERBS = ("INSERT", "UPDATE", "DELETE")

metadata = sa.MetaData()

users = sa.Table(
    "rp_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(100), nullable=False, unique=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("age", sa.Integer, nullable=True),
    sa.Column("status", sa.String(20), nullable=False, server_default="active"),
)

memberships = sa.Table(
    "rp_memberships",
    metadata,
    sa.Column("org_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("role", sa.String(20), nullable=False),
)

counters = sa.Table(
    "rp_counters",
    metadata,
    sa.Column("name", sa.String(50), primary_key=True),
    sa.Column("value", sa.Integer, nullable=False),
    sa.Column("note", sa.String(50), nullable=True),
)


class User(BaseModel):
    id: int
    email: str
    name: str
    age: int | None
    status: str


class UserCreate(BaseModel):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=100)
    name: str = Field(min_length=1, max_length=100)
    age: int | None = Field(default=None, ge=0)
    status: str = "active"


class Membership(BaseModel):
    org_id: int
    user_id: int
    role: str


def writes(captured: QueryProfiler) -> list[str]:
    """The INSERT, UPDATE and DELETE statements among those captured."""
    return [query.sql for query in captured.queries if query.sql.startswith(WRITE_VERBS)]


notes = sa.Table(
    "rp_notes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("body", sa.String(200), nullable=False),
)


class Kind(enum.Enum):
    SIGNUP = "signup"
    LOGIN = "login"


events = sa.Table(
    "rp_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.Enum(Kind, name="rp_event_kind"), nullable=False),
    sa.Column("payload", sa.JSON, nullable=True),
    sa.Column("happened_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("email", sa.String(100), nullable=True, unique=True),
)
