"""Hooks for migration plugins (pluggy, project name ``"kysera"``).

A plugin is any object with hook implementations; pass it to
``MigrationRunner(..., plugins=[...])``::

    from kysera.migrations import hookimpl


    class Timing:
        @hookimpl
        def kysera_after_migration(self, migration, direction, duration_ms):
            print(f"{migration.name} {direction} took {duration_ms:.0f} ms")

Implementations may accept any subset of a hook's arguments. Hooks are synchronous and fire
for ``up``, ``up_to``, ``down`` and ``reset`` (not for dry runs):

* ``kysera_before_migration`` inside the migration's transaction, just before ``up()`` /
  ``down()``; raising there fails the migration (it is rolled back).
* ``kysera_after_migration`` after the transaction committed.
* ``kysera_migration_error`` after the failed migration was rolled back, with the
  `MigrationError` about to be raised.

The last two observe what already happened: an exception they raise is logged (logger
``kysera.migrations``) and does not stop the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pluggy

from kysera.migrations.errors import InvalidMigrationError, MigrationError
from kysera.migrations.migration import Direction, Migration

__all__ = ["MigrationHookSpec", "hookimpl", "hookspec"]

PROJECT_NAME = "kysera"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marks hook specifications of the ``kysera`` project."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks hook implementations; the same marker as ``kysera.repository.hookimpl``."""


class MigrationHookSpec:
    """The migration hooks a plugin may implement."""

    @hookspec
    def kysera_before_migration(self, migration: Migration, direction: Direction) -> None:
        """A migration is about to run in ``direction`` (inside its transaction)."""

    @hookspec
    def kysera_after_migration(
        self, migration: Migration, direction: Direction, duration_ms: float
    ) -> None:
        """A migration ran in ``direction`` and was committed."""

    @hookspec
    def kysera_migration_error(
        self, migration: Migration, direction: Direction, error: MigrationError
    ) -> None:
        """A migration failed and was rolled back; ``error`` is raised next."""


class MigrationHooks:
    """A typed facade over a plugin manager holding the migration hooks.

    Args:
        plugins: Plugin objects to register, in order.

    Raises:
        InvalidMigrationError: A plugin was registered twice or its hooks do not match the
            specifications (a wrong argument name, say).
    """

    __slots__ = ("_manager",)

    def __init__(self, plugins: Sequence[object] = ()) -> None:
        self._manager = pluggy.PluginManager(PROJECT_NAME)
        self._manager.add_hookspecs(MigrationHookSpec)
        for plugin in plugins:
            try:
                self._manager.register(plugin)
            except (ValueError, pluggy.PluginValidationError) as exc:
                raise InvalidMigrationError(f"cannot register plugin {plugin!r}: {exc}") from exc

    def before(self, migration: Migration, direction: Direction) -> None:
        """Fire ``kysera_before_migration``."""
        self._call("kysera_before_migration", migration=migration, direction=direction)

    def after(self, migration: Migration, direction: Direction, duration_ms: float) -> None:
        """Fire ``kysera_after_migration``."""
        self._call(
            "kysera_after_migration",
            migration=migration,
            direction=direction,
            duration_ms=duration_ms,
        )

    def error(self, migration: Migration, direction: Direction, error: MigrationError) -> None:
        """Fire ``kysera_migration_error``."""
        self._call("kysera_migration_error", migration=migration, direction=direction, error=error)

    def _call(self, hook: str, **arguments: Any) -> None:
        getattr(self._manager.hook, hook)(**arguments)
