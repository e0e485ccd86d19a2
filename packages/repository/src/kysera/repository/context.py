"""The per-call context that `kysera_intercept_query` implementations receive."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, final

from sqlalchemy import Table
from sqlalchemy.sql.base import Executable

__all__ = ["QueryContext", "QueryOperation"]

QueryOperation = Literal["select", "insert", "update", "delete", "count"]
"""What a statement does; `"count"` marks the COUNT/EXISTS statements of reads."""

# Shared by every context built without options, so a call without options allocates nothing.
_NO_OPTIONS: Mapping[str, Any] = MappingProxyType({})


@final
class QueryContext:
    """One statement on its way to the database, as the plugins see it.

    A repository (or `orm.execute`) builds one context per statement and folds it through
    every plugin's `kysera_intercept_query` in plugin order. A plugin replaces the statement
    by returning a new one (or by assigning `context.statement`); returning `None` keeps it.

    Attributes:
        operation: `"select"`, `"insert"`, `"update"`, `"delete"` or `"count"`.
        table: The repository's table, or `None` when the statement is not tied to one table
            (a user's statement passed to `orm.execute`; inspect `statement` then).
        statement: The SQLAlchemy Core statement that will run; replaceable.
        options: The per-call keyword options (for example `include_deleted=True`); read-only.
        metadata: A dict shared by all plugins during this one call, for passing notes
            between them; empty at the start of every call.
    """

    __slots__ = ("metadata", "operation", "options", "statement", "table")

    operation: QueryOperation
    table: Table | None
    statement: Executable
    options: Mapping[str, Any]
    metadata: dict[str, Any]

    def __init__(
        self,
        operation: QueryOperation,
        table: Table | None,
        statement: Executable,
        options: Mapping[str, Any] = _NO_OPTIONS,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.operation = operation
        self.table = table
        self.statement = statement
        self.options = options
        self.metadata = {} if metadata is None else metadata

    def __repr__(self) -> str:
        table = None if self.table is None else self.table.name
        return (
            f"QueryContext(operation={self.operation!r}, table={table!r}, "
            f"options={dict(self.options)!r}, metadata={self.metadata!r})"
        )
