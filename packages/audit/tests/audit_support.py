"""Tables, models and helpers shared by the audit tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

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


class Account(BaseModel):
    id: int
    email: str
    name: str
    balance: Any = None
    seen_at: Any = None
    token: Any = None
    avatar: Any = None


class StatementLog:
    """The statements sent to the database, one entry per cursor call (an executemany is one)."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __len__(self) -> int:
        return len(self.statements)


@contextmanager
def count_statements(engine: AsyncEngine) -> Iterator[StatementLog]:
    """Record every statement sent through ``engine`` inside the block."""
    log = StatementLog()

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        log.statements.append(statement)

    sa.event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield log
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", record)
