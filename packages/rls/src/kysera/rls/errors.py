"""Errors raised by kysera.rls.

```
KyseraError (kysera.core)
└── RLSError                  RLS_ERROR
    ├── RLSContextError       RLS_CONTEXT_REQUIRED   .tables
    ├── RLSPolicyError        RLS_POLICY_VIOLATION   .table
    └── RLSScopeError         RLS_UNSCOPABLE         .tables
```

Each is raised before the statement is sent: nothing is read or written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from kysera.core import KyseraError

__all__ = ["RLSContextError", "RLSError", "RLSPolicyError", "RLSScopeError"]


class RLSError(KyseraError):
    """A statement was refused by row-level security."""

    code: ClassVar[str] = "RLS_ERROR"


class RLSContextError(RLSError):
    """A statement on a protected table ran outside `rls_context` (and `system_context`).

    Attributes:
        tables: The protected tables the statement touches.
    """

    code: ClassVar[str] = "RLS_CONTEXT_REQUIRED"

    def __init__(self, message: str = "", *, tables: Sequence[str] = ()) -> None:
        names = ", ".join(repr(name) for name in tables)
        super().__init__(
            message
            or f"no rls_context for a statement on {names}: run it inside "
            "rls_context(tenant_id=...) (or system_context() for maintenance)"
        )
        self.tables = tuple(tables)

    def _details(self) -> dict[str, Any]:
        return {"tables": list(self.tables)}


class RLSPolicyError(RLSError):
    """A statement breaks a policy: another tenant's row in the data, a row moved to another
    tenant, a failed `policy.check`, or a table without policies while the default denies.

    Attributes:
        table: The table's name.
    """

    code: ClassVar[str] = "RLS_POLICY_VIOLATION"

    def __init__(self, message: str = "", *, table: str | None = None) -> None:
        super().__init__(message or f"row-level security refused a statement on {table!r}")
        self.table = table

    def _details(self) -> dict[str, Any]:
        return {"table": self.table}


class RLSScopeError(RLSError):
    """A hand-written statement row-level security cannot check: an INSERT into a protected
    table passed to ``orm.execute`` (the repository's inserts fill and check the tenant).

    Attributes:
        tables: The protected tables concerned.
    """

    code: ClassVar[str] = "RLS_UNSCOPABLE"

    def __init__(self, message: str = "", *, tables: Sequence[str] = ()) -> None:
        super().__init__(message or f"cannot scope {list(tables)} in this statement")
        self.tables = tuple(tables)

    def _details(self) -> dict[str, Any]:
        return {"tables": list(self.tables)}
