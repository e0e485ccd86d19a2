"""Errors raised by kysera.repository.

```
KyseraError (kysera.core)
├── PluginError        PLUGIN_ERROR    .plugins
└── ConflictError      CONFLICT        .entity, .filters, .expected, .current
```

`ConflictError` is raised by a compare-and-set (`update(id, data, expected={...})`) whose
row no longer holds the expected values; ``current`` holds the row as it is now.

Database, validation and lookup failures use kysera.core's errors (`DatabaseError`,
`ValidationError`, `NotFoundError`, `InvalidQueryError`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from kysera.core import KyseraError

__all__ = ["ConflictError", "PluginError"]


class PluginError(KyseraError):
    """The plugin set is invalid: duplicate name, missing requirement, conflict or cycle.

    Attributes:
        plugins: The names of the plugins involved.
    """

    code: ClassVar[str] = "PLUGIN_ERROR"

    def __init__(self, message: str = "", *, plugins: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.plugins = tuple(plugins)

    def _details(self) -> dict[str, Any]:
        return {"plugins": list(self.plugins)}


class ConflictError(KyseraError):
    """A compare-and-set found the row changed: it no longer holds the expected values.

    Nothing was written. Read ``current``, decide, and try again with new expectations.

    Attributes:
        entity: The table name.
        filters: The key of the row.
        expected: The values the caller expected, by column.
        current: The row's values as they are now (every column), or ``None`` when the
            row could not be read.
    """

    code: ClassVar[str] = "CONFLICT"

    def __init__(
        self,
        message: str = "",
        *,
        entity: str | None = None,
        filters: Any = None,
        expected: Mapping[str, Any] | None = None,
        current: Mapping[str, Any] | None = None,
    ) -> None:
        if not message and entity is not None:
            message = f"{entity} {filters!r} changed: it no longer holds the expected values"
        super().__init__(message)
        self.entity = entity
        self.filters = filters
        self.expected = dict(expected) if expected is not None else {}
        self.current = dict(current) if current is not None else None

    def _details(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "filters": self.filters,
            "expected": self.expected,
            "current": self.current,
        }
