"""PostgreSQL enforcement: the context as transaction-local settings, sent first in every
transaction of the engine.

``set_config(name, value, true)`` lasts until the transaction ends, so nothing stays on a
pooled connection and a transaction-mode pooler (PgBouncer) cannot hand one tenant's setting
to another client. No session-level ``SET`` is ever sent.
"""

from __future__ import annotations

import weakref
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.repository import require_transactions
from kysera.rls.context import current_context

__all__ = ["SETTINGS", "install_transaction_settings", "settings_statement"]

SETTINGS = ("kysera.tenant_id", "kysera.user_id", "kysera.roles", "kysera.system")

_installed: weakref.WeakSet[Engine] = weakref.WeakSet()


def settings_statement() -> sa.Select[Any] | None:
    """``SELECT set_config(...)`` for the current context, or ``None`` outside one."""
    context = current_context()
    if context is None:
        return None
    values = (
        "" if context.tenant_id is None else str(context.tenant_id),
        "" if context.user_id is None else str(context.user_id),
        ",".join(sorted(context.roles)),
        "on" if context.system else "",
    )
    return sa.select(
        *(
            sa.func.set_config(name, sa.literal(value, sa.Text), sa.true())
            for name, value in zip(SETTINGS, values, strict=True)
        )
    )


def _send_settings(connection: Connection) -> None:
    statement = settings_statement()
    if statement is not None:
        connection.execute(statement)


def install_transaction_settings(engine: AsyncEngine) -> None:
    """Send the context's settings as the first statement of every transaction of ``engine``
    (once per engine, however many ORMs use it)."""
    require_transactions(engine)  # settings are transaction-local: no autocommit statements
    sync = engine.sync_engine
    if sync in _installed:
        return
    event.listen(sync, "begin", _send_settings)
    _installed.add(sync)
