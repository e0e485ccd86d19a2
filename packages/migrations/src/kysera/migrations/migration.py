"""A migration: a name and the async functions that apply and revert it."""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from kysera.migrations.checksums import functions_checksum
from kysera.migrations.errors import InvalidMigrationError

__all__ = ["Direction", "Migration", "MigrationFunction", "migration"]

Direction = Literal["up", "down"]
"""Which way a migration runs."""

MigrationFunction = Callable[[AsyncConnection], Awaitable[Any]]
"""``async def up(conn: AsyncConnection) -> None``: runs inside the runner's transaction."""

# Names go into the bookkeeping table (VARCHAR(255)) and into log lines: keep them plain.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
MAX_NAME_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration. Build it with `migration()` or load files with `load_migrations()`.

    Attributes:
        name: Unique name, e.g. ``"001_create_users"``; it is what the database records.
        up: Applies the change: ``async def up(conn)``.
        down: Reverts it, or ``None`` when the migration cannot be rolled back.
        description: Free text for humans.
        breaking: Marks a change that running application code may not survive (dropping
            or renaming a column, say); informational, shown by ``status``.
        checksum: SHA-256 of the migration's code, compared with the one recorded when it
            was applied (see `kysera.migrations.checksums`).
        path: The file it was loaded from, if any.
    """

    name: str
    up: MigrationFunction
    down: MigrationFunction | None
    description: str
    breaking: bool
    checksum: str
    path: str | None = None


def migration(
    name: str,
    up: MigrationFunction,
    down: MigrationFunction | None = None,
    *,
    description: str = "",
    breaking: bool = False,
) -> Migration:
    """Define a migration in code.

    Args:
        name: Unique name; letters, digits, ``_``, ``.`` and ``-``, at most 255 characters.
            Migrations run in the order of the list given to the runner, so a numeric
            prefix (``"001_create_users"``) keeps names and order in step.
        up: ``async def up(conn: AsyncConnection) -> None``.
        down: ``async def down(conn: AsyncConnection) -> None``, or ``None`` if the migration
            cannot be reverted (rolling it back then raises `MigrationError`).
        description: Free text for humans.
        breaking: Marks a change old application code may not survive.

    Returns:
        The migration; its checksum covers the source of ``up`` and ``down``.

    Raises:
        InvalidMigrationError: The name is malformed or a function is not ``async def``.
    """
    validate_name(name)
    validate_function(name, "up", up)
    if down is not None:
        validate_function(name, "down", down)
    return Migration(
        name=name,
        up=up,
        down=down,
        description=description,
        breaking=breaking,
        checksum=functions_checksum(up, down),
    )


def validate_name(name: object, *, path: str | None = None) -> None:
    """Raise `InvalidMigrationError` unless ``name`` is a usable migration name."""
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > MAX_NAME_LENGTH:
        raise InvalidMigrationError(
            f"invalid migration name {name!r}: use letters, digits, '_', '.' and '-', "
            f"starting with a letter or digit, at most {MAX_NAME_LENGTH} characters",
            path=path,
        )


def validate_function(name: str, role: str, function: object, path: str | None = None) -> None:
    """Raise `InvalidMigrationError` unless ``function`` is an async function."""
    where = f"migration file {path!r}" if path else f"migration {name!r}"
    if not callable(function):
        raise InvalidMigrationError(
            f"{where}: {role} must be an async function, got {function!r}", path=path
        )
    if not (inspect.iscoroutinefunction(function) or _returns_awaitable_hint(function)):
        raise InvalidMigrationError(
            f"{where}: {role} must be defined with 'async def' (it receives an "
            "AsyncConnection and is awaited)",
            path=path,
        )


def _returns_awaitable_hint(function: object) -> bool:
    # A callable object whose __call__ is a coroutine function counts too.
    call = getattr(function, "__call__", None)  # noqa: B004 - we want the bound __call__
    return call is not None and inspect.iscoroutinefunction(call)
