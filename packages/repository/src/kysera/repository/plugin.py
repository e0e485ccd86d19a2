"""What a plugin object looks like to Kysera."""

from __future__ import annotations

from typing import Protocol

__all__ = ["Plugin"]


class Plugin(Protocol):
    """A Kysera plugin: any object with a `name` and `@hookimpl` methods.

    Only `name` is required. A plugin may also define, as class or instance attributes:

    - `priority: int` (default 0): among plugins not ordered by `requires`, higher runs
      first, i.e. outermost.
    - `requires: tuple[str, ...]`: names of plugins that must be registered too; they run
      before this one (outside it).
    - `conflicts: tuple[str, ...]`: names of plugins that must not be registered with it.

    The hooks it may implement are listed in `kysera.repository.hooks.KyseraHookSpecs`.
    """

    @property
    def name(self) -> str:
        """The plugin's unique name, used by `requires`, `conflicts` and in errors."""
        ...
