"""The hooks a Kysera plugin can implement, and the pluggy markers for them.

```python
from kysera.repository import hookimpl


class TenantPlugin:
    name = "tenant"

    @hookimpl
    def kysera_intercept_query(self, context): ...
```

All hooks are synchronous: they build statements and classes, they do no I/O. The host calls
them in plugin order (see `PluginRegistry`), never in pluggy's registration order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pluggy
from sqlalchemy import Table
from sqlalchemy.sql.base import Executable

from kysera.repository.context import QueryContext

__all__ = ["KyseraHookSpecs", "hookimpl", "hookspec"]

# The pluggy project name shared by every Kysera hook (repository and migrations).
PROJECT_NAME = "kysera"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marks a hook specification of the `"kysera"` project."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a plugin method as the implementation of a Kysera hook of the same name."""


class KyseraHookSpecs:
    """The repository hooks. Implement any subset; parameters you don't need may be omitted."""

    @hookspec
    def kysera_configure(self, orm: Any) -> None:
        """Called once when the ORM is created, in plugin order.

        Validate tables or options here and raise a `KyseraError` to refuse the setup.

        Args:
            orm: The ORM object the plugins are being installed into.
        """

    @hookspec
    def kysera_intercept_query(self, context: QueryContext) -> Executable | None:
        """Called for every statement a repository or `orm.execute` runs, in plugin order.

        Args:
            context: The statement and what is known about the call. `context.options`
                holds the caller's keyword options; `context.metadata` is shared with the
                other plugins for this call.

        Returns:
            A replacement statement, or `None` to keep `context.statement` (which the
            implementation may also have assigned itself).
        """

    @hookspec
    def kysera_repository_mixin(self, table: Table, orm: Any) -> type | None:
        """Called when a repository class is built for `table`.

        The returned classes are composed in plugin order in front of the base repository
        class, so the first plugin's override runs first and reaches the next one (and
        finally the base repository) through `super()`.

        Args:
            table: The repository's table.
            orm: The ORM object the repository belongs to.

        Returns:
            A mixin class, or `None` to leave this table's repository alone.
        """

    @hookspec
    def kysera_follow_changes(
        self,
        orm: Any,
        tables: tuple[str, ...] | None,
        after: int,
        poll_interval: float,
        batch_size: int,
    ) -> AsyncIterator[Any] | None:
        """Called by `Orm.changes`: give the ORM's change stream, if this plugin keeps one.

        The first plugin in plugin order that returns a stream wins. Build the stream and
        check the arguments here; its I/O starts when the caller iterates it.

        Args:
            orm: The ORM object `changes` was called on.
            tables: Only changes of these tables, or `None` for every recorded table.
            after: The cursor: only changes with a higher id.
            poll_interval: Seconds between reads that found nothing new.
            batch_size: The most changes read per statement.

        Returns:
            An async iterator of changes in commit order, or `None` to leave it to another
            plugin.
        """
