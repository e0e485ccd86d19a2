"""The tables of the TTL tests."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["memberships", "metadata", "notes", "posts", "users"]

metadata = sa.MetaData()
users = sa.Table(
    "ttl_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(50), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
)
posts = sa.Table(  # a naive UTC expiry column
    "ttl_posts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.ForeignKey("ttl_users.id"), nullable=False),
    sa.Column("title", sa.String(50), nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=True),
)
notes = sa.Table(  # with soft delete and timestamps
    "ttl_notes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("body", sa.String(50), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
)
memberships = sa.Table(  # a composite primary key
    "ttl_memberships",
    metadata,
    sa.Column("org", sa.String(20), primary_key=True),
    sa.Column("user_id", sa.Integer, primary_key=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
)
