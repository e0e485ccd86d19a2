"""Errors raised by kysera.migrations.

```
KyseraError (kysera.core)
└── MigrationError     MIGRATION_ERROR    .name, .direction, .__cause__
```
"""

from __future__ import annotations

from typing import Any, ClassVar

from kysera.core import KyseraError

__all__ = ["MigrationError"]


class MigrationError(KyseraError):
    """A migration failed, or cannot run in the requested direction.

    Attributes:
        name: The migration's name (e.g. ``"003_add_email"``).
        direction: ``"up"`` or ``"down"``.
        cause: The underlying error, also set as ``__cause__``, or ``None``.
    """

    code: ClassVar[str] = "MIGRATION_ERROR"

    def __init__(
        self, name: str, direction: str, cause: BaseException | None = None, message: str = ""
    ) -> None:
        reason = message or (f"{type(cause).__name__}: {cause}" if cause else "failed")
        super().__init__(f"migration {name!r} ({direction}) {reason}")
        self.name = name
        self.direction = direction
        self.cause = cause
        self.__cause__ = cause

    def _details(self) -> dict[str, Any]:
        return {"name": self.name, "direction": self.direction}
