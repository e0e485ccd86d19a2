"""The tables of the soft-delete tests."""

from __future__ import annotations

import sqlalchemy as sa

from kysera.soft_delete import soft_delete_unique_index

__all__ = [
    "audit_logs",
    "memberships",
    "metadata",
    "migrations_table",
    "post_tags",
    "posts",
    "tags",
    "users",
]

metadata = sa.MetaData()
users = sa.Table(
    "sd_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(100), nullable=False),
    sa.Column("name", sa.String(50), nullable=False),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
)
soft_delete_unique_index(users, "email")
posts = sa.Table(
    "sd_posts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.ForeignKey("sd_users.id"), nullable=False),
    sa.Column("title", sa.String(50), nullable=False),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
)
memberships = sa.Table(  # a composite primary key
    "sd_memberships",
    metadata,
    sa.Column("org", sa.String(20), primary_key=True),
    sa.Column("user_id", sa.Integer, primary_key=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("deleted_at", sa.DateTime, nullable=True),
)
tags = sa.Table(  # no deletion column: never filtered
    "sd_tags",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("label", sa.String(50), nullable=False),
)
post_tags = sa.Table(  # a join table whose links are soft-deleted
    "sd_post_tags",
    metadata,
    sa.Column("post_id", sa.ForeignKey("sd_posts.id"), primary_key=True),
    sa.Column("tag_id", sa.ForeignKey("sd_tags.id"), primary_key=True),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
)
audit_logs = sa.Table(  # has the column, but audit logs are never filtered
    "audit_logs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("note", sa.String(50), nullable=False),
    sa.Column("deleted_at", sa.DateTime, nullable=True),
)
migrations_table = sa.Table(
    "kysera_migrations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50), nullable=False),
    sa.Column("deleted_at", sa.DateTime, nullable=True),
)
