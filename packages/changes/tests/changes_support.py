"""Tables shared by the change feed tests."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from kysera.audit import audit_log_table
from kysera.changes import change_tables
from kysera.timestamps import UTCDateTime

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

# A key made in Python (a UUID default): the one-statement create on PostgreSQL must keep it.
tokens = sa.Table(
    "cf_tokens",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True, default=uuid.uuid4),
    sa.Column("label", sa.String(50), nullable=False),
)

feed = change_tables(metadata, CHANGES)

# For the composition tests: the audit plugin's log, and a table every plugin applies to.
AUDIT = "cf_audit_logs"
audit_logs = audit_log_table(metadata, AUDIT)
articles = sa.Table(
    "cf_articles",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("title", sa.String(100), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=True),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
)
