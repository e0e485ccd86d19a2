"""Tables (the audit log among them), models and helpers shared by the audit tests."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel

from kysera.audit import audit_log_table

AUDIT_TABLE = "au_audit_logs"

metadata = sa.MetaData()

accounts = sa.Table(
    "au_accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(100), nullable=False, unique=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("balance", sa.Numeric(20, 6), nullable=True),
    sa.Column("seen_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("token", sa.Uuid, nullable=True),
    sa.Column("avatar", sa.LargeBinary, nullable=True),
)

memberships = sa.Table(
    "au_memberships",
    metadata,
    sa.Column("org_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("role", sa.String(20), nullable=False),
)

notes = sa.Table(
    "au_notes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("body", sa.String(100), nullable=False),
)

# The plugins' log (AuditPlugin(table=AUDIT_TABLE)), created and emptied with the tables above.
audit_logs = audit_log_table(metadata, AUDIT_TABLE)


class Account(BaseModel):
    id: int
    email: str
    name: str
    balance: Any = None
    seen_at: Any = None
    token: Any = None
    avatar: Any = None
