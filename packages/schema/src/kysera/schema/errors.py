"""Errors raised by kysera.schema.

```
KyseraError (kysera.core)
├── UnknownTableError     SCHEMA_UNKNOWN_TABLE   .names
└── ReadOnlyError         SCHEMA_READ_ONLY       .table
```
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from kysera.core import KyseraError

__all__ = ["ReadOnlyError", "UnknownTableError"]


class UnknownTableError(KyseraError):
    """``include=`` named tables or views the database does not have.

    Attributes:
        names: The missing names, sorted.
    """

    code: ClassVar[str] = "SCHEMA_UNKNOWN_TABLE"

    def __init__(self, names: Iterable[str], *, schema: str | None = None) -> None:
        self.names = sorted(names)
        where = f" in schema {schema!r}" if schema else ""
        super().__init__(f"no table or view named {', '.join(map(repr, self.names))}{where}")

    def _details(self) -> dict[str, Any]:
        return {"names": self.names}


class ReadOnlyError(KyseraError):
    """A write through the repository of a view (discovered views are read-only).

    Attributes:
        table: The view's name.
    """

    code: ClassVar[str] = "SCHEMA_READ_ONLY"

    def __init__(self, table: str, operation: str) -> None:
        self.table = table
        super().__init__(f"{table!r} is a view: {operation} is not available on its repository")

    def _details(self) -> dict[str, Any]:
        return {"table": self.table}
