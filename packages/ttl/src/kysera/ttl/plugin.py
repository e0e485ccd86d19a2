"""`TTLPlugin`: rows that expire; reads hide them once the database's clock passes."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Alias, ColumnElement, FromClause, Select, Table, or_
from sqlalchemy.sql.base import Executable

from kysera.repository import QueryContext, hookimpl
from kysera.ttl.clock import database_now
from kysera.ttl.filtering import filter_select
from kysera.ttl.mixin import TTLMixin

__all__ = ["TTLPlugin"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TTLPlugin:
    """Expiring rows: a nullable ``expires_at`` column; a row whose time has come is hidden.

    A table expires rows when it has ``column``. Every SELECT and COUNT/EXISTS of such a
    table (repository reads, relation includes, hand-written SELECTs passed to
    ``orm.execute``), and every UPDATE, gets ``column IS NULL OR column > <database now>``
    unless the call passes ``include_expired=True``. NULL never expires. INSERT and DELETE
    are left alone. Repositories of such tables accept ``ttl="5m"`` (or a `timedelta`) on
    ``create``/``create_many``/``upsert``/``upsert_many`` and gain ``touch_ttl`` and
    ``purge_expired`` (see `TTLMixin`).

    Whose clock: *expiry* is decided by the database's clock (see `kysera.ttl.clock`), so
    every application host agrees on which rows are visible and the purge deletes exactly
    what readers no longer see. *Writing* ``expires_at = now + ttl`` uses ``now=`` (the
    application's UTC clock by default): a skewed host makes that one row live a little
    longer or shorter, but all readers still agree about it.

    Args:
        column: The nullable datetime column holding the expiry time (UTC).
        now: The clock for ``now + ttl`` on writes (default: aware UTC now).
    """

    name = "ttl"

    def __init__(self, column: str = "expires_at", *, now: Callable[[], datetime] | None = None):
        self.column = column
        self.now: Callable[[], datetime] = _utc_now if now is None else now
        self._conditions: dict[Table, ColumnElement[bool] | None] = {}
        # Repository statements are reused; their filtered forms are kept while they live.
        self._filtered: weakref.WeakKeyDictionary[Executable, Executable] = (
            weakref.WeakKeyDictionary()
        )
        self.mixin: type[TTLMixin] = type(
            "TTLMixin",
            (TTLMixin,),
            {"ttl_column": column, "ttl_now": lambda _repository: self.now()},
        )

    def __repr__(self) -> str:
        return f"TTLPlugin(column={self.column!r})"

    def live_condition(self, source: FromClause) -> ColumnElement[bool] | None:
        """``column IS NULL OR column > <database now>`` for a table (or alias of one) that
        has the column, else ``None``."""
        table: Any = source.element if isinstance(source, Alias) else source
        if not isinstance(table, Table) or self.column not in table.c:
            return None
        expires = source.c[self.column]
        return or_(expires.is_(None), expires > database_now(expires.type))

    def _table_condition(self, table: Table) -> ColumnElement[bool] | None:
        try:
            return self._conditions[table]
        except KeyError:
            condition = self._conditions[table] = self.live_condition(table)
            return condition

    @hookimpl
    def kysera_repository_mixin(self, table: Table, orm: Any) -> type | None:
        return self.mixin if self.column in table.c else None

    @hookimpl
    def kysera_intercept_query(self, context: QueryContext) -> Any:
        operation = context.operation
        if operation == "insert" or operation == "delete":
            return None
        if context.options.get("include_expired"):
            return None
        statement = context.statement
        cached = self._filtered.get(statement)
        if cached is not None:
            return cached
        if context.read_back:
            # A write's re-select on MySQL/MariaDB: the row just written, expired or not.
            return None
        table = context.table
        filtered: Any
        if table is not None:
            condition = self._table_condition(table)
            if condition is None:
                return None
            filtered = statement.where(condition)  # type: ignore[attr-defined]
        elif isinstance(statement, Select):
            filtered = filter_select(statement, self.live_condition)
            if filtered is None:
                return None
        else:
            return None
        self._filtered[statement] = filtered
        return filtered
