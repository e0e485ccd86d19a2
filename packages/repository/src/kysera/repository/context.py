"""The per-call context that `kysera_intercept_query` implementations receive, and the
read-back marker that tells a write's re-select apart from a read."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, TypeVar, final

from sqlalchemy import Table
from sqlalchemy.sql.base import Executable

__all__ = ["QueryContext", "QueryOperation", "as_read_back"]

_StatementT = TypeVar("_StatementT", bound=Executable)

QueryOperation = Literal["select", "insert", "update", "delete", "count"]
"""What a statement does; `"count"` marks the COUNT/EXISTS statements of reads."""

# The execution option marking a read-back. An execution option travels with the statement
# (and with what a plugin derives from it through `.where()` and friends), costs nothing
# when nobody asks for it, and is not part of SQLAlchemy's compiled-cache key.
_READ_BACK = "kysera_read_back"

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
        hand_written: Whether the application passed the statement to `Orm.execute`, rather
            than a repository (or a plugin's mixin) building it. A repository's INSERT
            carries values its preparation hooks have seen; a hand-written one does not.
    """

    __slots__ = ("hand_written", "metadata", "operation", "options", "statement", "table")

    operation: QueryOperation
    table: Table | None
    statement: Executable
    options: Mapping[str, Any]
    metadata: dict[str, Any]
    hand_written: bool

    def __init__(
        self,
        operation: QueryOperation,
        table: Table | None,
        statement: Executable,
        options: Mapping[str, Any] = _NO_OPTIONS,
        metadata: dict[str, Any] | None = None,
        *,
        hand_written: bool = False,
    ) -> None:
        self.operation = operation
        self.table = table
        self.statement = statement
        self.options = options
        self.metadata = {} if metadata is None else metadata
        self.hand_written = hand_written

    @property
    def read_back(self) -> bool:
        """Whether this SELECT reads back the rows its own call has just written.

        MySQL and MariaDB have no ``RETURNING``: after an INSERT, UPDATE or upsert a
        repository reads the written rows back by key, in the same transaction, and returns
        them. That re-select is a `"select"` like any other (scoping plugins still apply),
        but a plugin that *hides* rows (soft delete, archiving) should let it through:
        hiding the row just written would fail the write that made it. Plugin mixins mark
        their own re-selects with `as_read_back`; ``False`` for every other statement.
        """
        return bool(self.statement.get_execution_options().get(_READ_BACK, False))

    def __repr__(self) -> str:
        table = None if self.table is None else self.table.name
        return (
            f"QueryContext(operation={self.operation!r}, table={table!r}, "
            f"options={dict(self.options)!r}, metadata={self.metadata!r})"
        )


def as_read_back(statement: _StatementT) -> _StatementT:
    """Return ``statement`` marked as the read-back of rows its call has just written.

    For plugin mixins that write rows and then select them again (on MySQL/MariaDB, which
    have no ``RETURNING``): interceptors see `QueryContext.read_back` as ``True`` for the
    marked statement, and hiding plugins leave it alone. The repository marks its own
    re-selects.

    ```python
    statement = self.intercept("select", as_read_back(select(table).where(key)), options)
    ```
    """
    return statement.execution_options(**{_READ_BACK: True})
