"""What a run did (`MigrationResult`) and where the database stands (`MigrationStatus`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from kysera.migrations.migration import Direction

__all__ = ["AppliedMigration", "MigrationResult", "MigrationStatus"]


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    """A row of the bookkeeping table: one applied migration.

    Attributes:
        id: Monotonic id; applied migrations are ordered by it.
        name: The migration's name.
        checksum: The checksum of its code when it was applied.
        applied_at: When it was applied (UTC).
        duration_ms: How long ``up()`` took.
    """

    id: int
    name: str
    checksum: str
    applied_at: dt.datetime
    duration_ms: int


@dataclass(frozen=True, slots=True)
class MigrationResult:
    """The outcome of ``up``, ``up_to``, ``down`` or ``reset``.

    Attributes:
        applied: Migrations this call ran, in order: applied for ``up``, rolled back for
            ``down``. With ``dry_run`` these are the migrations that *would* run.
        skipped: For ``up``/``up_to``: the migrations in range that were already applied,
            including any a concurrent runner applied while this one waited for the lock.
        failed: The migration that failed, or ``None``. A failure raises `MigrationError`;
            its ``result`` attribute carries this object.
        duration_ms: Wall time of the whole call.
        dry_run: Whether this was a dry run (nothing changed).
        direction: ``"up"`` (``up``, ``up_to``) or ``"down"`` (``down``, ``reset``).
    """

    applied: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    failed: str | None = None
    duration_ms: float = 0.0
    dry_run: bool = False
    direction: Direction = "up"


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    """Where the database stands against the code.

    Attributes:
        applied: Names of applied migrations, ordered by their monotonic id.
        pending: Names of migrations in code that are not applied, in code order.
        changed: Applied migrations whose code changed since they ran (checksum mismatch).
        missing: Migrations recorded in the database that the code no longer has.
        records: The bookkeeping rows behind ``applied``.
    """

    applied: tuple[str, ...]
    pending: tuple[str, ...]
    changed: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    records: tuple[AppliedMigration, ...] = ()

    @property
    def up_to_date(self) -> bool:
        """True when nothing is pending, changed or missing."""
        return not (self.pending or self.changed or self.missing)
