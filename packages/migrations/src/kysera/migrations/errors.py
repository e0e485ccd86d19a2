"""Errors raised by kysera.migrations.

```
KyseraError (kysera.core)
├── MigrationError               MIGRATION_ERROR          .name, .direction, .result, .__cause__
│   └── MigrationChangedError    MIGRATION_CHANGED        .changed
└── BadRequestError (kysera.core)
    └── InvalidMigrationError    MIGRATION_INVALID        .path
```

Database failures outside any single migration (taking the lock, reading the bookkeeping
table) are raised as the classified `kysera.core.DatabaseError` subclasses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from kysera.core import BadRequestError, KyseraError

if TYPE_CHECKING:
    from kysera.migrations.results import MigrationResult

__all__ = ["InvalidMigrationError", "MigrationChangedError", "MigrationError"]


class MigrationError(KyseraError):
    """A migration failed, or cannot run in the requested direction.

    Attributes:
        name: The migration's name (e.g. ``"003_add_email"``).
        direction: ``"up"`` or ``"down"``.
        cause: The underlying error, also set as ``__cause__``, or ``None``. Database errors
            arrive classified (a `kysera.core.DatabaseError` subclass).
        result: What the run did before it stopped (``result.failed`` is this migration),
            when the error comes from a run; otherwise ``None``.
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
        self.result: MigrationResult | None = None

    def _details(self) -> dict[str, Any]:
        return {"name": self.name, "direction": self.direction}


class MigrationChangedError(MigrationError):
    """Applied migrations' code no longer matches the checksum recorded when they ran.

    ``up`` refuses to run until the code is restored, the change is recorded
    (``runner.accept_changes()``, ``kysera-migrate accept-changes``) or the runner is told to
    go ahead (``allow_changed=True``, ``kysera-migrate up --allow-changed``). ``name`` is the
    first changed migration.

    Attributes:
        changed: The names of every changed applied migration, in the order they were applied.
    """

    code: ClassVar[str] = "MIGRATION_CHANGED"

    def __init__(self, changed: Sequence[str]) -> None:
        names = ", ".join(changed)
        super().__init__(
            changed[0],
            "up",
            message=(
                f"was changed after it was applied (checksum mismatch: {names}); restore the "
                "code, record it with accept_changes() (kysera-migrate accept-changes), or "
                "run with allow_changed=True (--allow-changed)"
            ),
        )
        self.changed = tuple(changed)

    def _details(self) -> dict[str, Any]:
        return {**super()._details(), "changed": list(self.changed)}


class InvalidMigrationError(BadRequestError):
    """A migration definition or file is invalid: bad name, duplicate, missing ``up()``.

    Attributes:
        path: The offending file, for errors found while loading a directory; else ``None``.
    """

    code: ClassVar[str] = "MIGRATION_INVALID"

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path

    def _details(self) -> dict[str, Any]:
        return {"path": self.path}
