"""Errors raised by kysera.soft_delete.

```
KyseraError (kysera.core)
└── RecordNotDeletedError     RECORD_NOT_DELETED    .entity, .key
```

A missing row raises kysera.core's `NotFoundError`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from kysera.core import KyseraError

__all__ = ["RecordNotDeletedError"]


class RecordNotDeletedError(KyseraError):
    """`restore` was asked for a row that is not soft-deleted.

    Attributes:
        entity: The table's name.
        key: The primary key of the row.
    """

    code: ClassVar[str] = "RECORD_NOT_DELETED"

    def __init__(self, message: str = "", *, entity: str | None = None, key: Any = None) -> None:
        super().__init__(message or f"{entity} {key!r} is not deleted")
        self.entity = entity
        self.key = key

    def _details(self) -> dict[str, Any]:
        return {"entity": self.entity, "key": self.key}
