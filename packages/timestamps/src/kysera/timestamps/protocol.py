"""`TimestampedRepository`: the methods the plugin adds, as a static type."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

__all__ = ["TimestampedRepository"]

EntityT = TypeVar("EntityT")


@runtime_checkable
class TimestampedRepository(Protocol[EntityT]):
    """What a repository of a timestamped table adds to `Repository`.

    Plugin mixins are composed at run time, invisible to type checkers. Ask for
    ``repository_class=TimestampsRepository[User]`` to get them typed without a cast; for
    code that receives any repository, annotate with this protocol (or compose
    `TimestampsMixin` explicitly) to call the added methods with types:

    ```python
    def audit_trail(users: TimestampedRepository[User]) -> ...: ...
    ```
    """

    async def touch(self, id: Any, **options: Any) -> EntityT:
        """Set the row's ``updated_at`` to now; return the row."""
        ...

    async def touch_many(self, ids: Iterable[Any], **options: Any) -> int:
        """Set ``updated_at`` to now on these rows; return how many were found."""
        ...

    async def find_created_after(
        self, dt: datetime, *, limit: int | None = None, **options: Any
    ) -> list[EntityT]:
        """Rows created strictly after ``dt``, oldest first."""
        ...

    async def find_created_before(
        self, dt: datetime, *, limit: int | None = None, **options: Any
    ) -> list[EntityT]:
        """Rows created strictly before ``dt``, oldest first."""
        ...

    async def find_created_between(
        self, start: datetime, end: datetime, *, limit: int | None = None, **options: Any
    ) -> list[EntityT]:
        """Rows created from ``start`` to ``end``, both included, oldest first."""
        ...

    async def find_updated_after(
        self, dt: datetime, *, limit: int | None = None, **options: Any
    ) -> list[EntityT]:
        """Rows updated strictly after ``dt``, least recent first."""
        ...

    async def find_recently_created(self, limit: int = 10, **options: Any) -> list[EntityT]:
        """The newest rows by ``created_at``, newest first."""
        ...

    async def find_recently_updated(self, limit: int = 10, **options: Any) -> list[EntityT]:
        """The most recently updated rows, most recent first."""
        ...

    async def create_without_timestamps(self, data: Any, **options: Any) -> EntityT:
        """`create` without filling in any timestamp."""
        ...

    async def update_without_timestamp(self, id: Any, data: Any, **options: Any) -> EntityT:
        """`update` that leaves ``updated_at`` alone."""
        ...
