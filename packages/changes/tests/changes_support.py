"""Tables shared by the change feed tests."""

from __future__ import annotations

import sqlalchemy as sa

from kysera.changes import change_tables

CHANGES = "cf_changes"

metadata = sa.MetaData()

accounts = sa.Table(
    "cf_accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(100), nullable=False, unique=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("balance", sa.Integer, nullable=False, server_default="0"),
)

memberships = sa.Table(
    "cf_memberships",
    metadata,
    sa.Column("org_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("role", sa.String(20), nullable=False),
)

posts = sa.Table(
    "cf_posts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("title", sa.String(100), nullable=False),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
)

feed = change_tables(metadata, CHANGES)
