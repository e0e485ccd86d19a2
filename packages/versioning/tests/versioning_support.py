"""Tables shared by the versioning tests."""

from __future__ import annotations

import sqlalchemy as sa

from kysera.timestamps import UTCDateTime

AUDIT_TABLE = "vr_audit_logs"

metadata = sa.MetaData()

docs = sa.Table(
    "vr_docs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("slug", sa.String(50), nullable=False, unique=True),
    sa.Column("title", sa.String(100), nullable=False),
    sa.Column("views", sa.Integer, nullable=False, server_default="0"),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("deleted_at", sa.DateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=True),
)

defaulted = sa.Table(  # the column's own default wins over the plugin's 1
    "vr_defaulted",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("title", sa.String(100), nullable=False),
    sa.Column("version", sa.Integer, nullable=False, server_default="100"),
)

plain = sa.Table(  # no version column: untouched
    "vr_plain",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("title", sa.String(100), nullable=False),
)

members = sa.Table(  # a composite primary key
    "vr_members",
    metadata,
    sa.Column("org_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)

tickets = sa.Table(  # a UUID key
    "vr_tickets",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("title", sa.String(100), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)
