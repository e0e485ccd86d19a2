"""`TimestampsRepository[E]`: a repository type that carries the timestamp methods for mypy.

`TimestampsPlugin` mixes its methods in at run time, so ``orm.repository(...)`` is typed as a
plain ``Repository[E]`` and ``repo.touch(...)`` is an error for a type checker. Passing this
class as ``repository_class`` gives the repository a type that has both, without a cast:

```python
posts = orm.repository(posts_table, entity=Post, repository_class=TimestampsRepository[Post])
await posts.find_recently_created(5)  # a list[Post], for mypy too
```
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from kysera.core import BadRequestError
from kysera.repository import Repository
from kysera.timestamps.mixin import TimestampsMixin

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["TimestampsRepository"]

EntityT = TypeVar("EntityT")


class TimestampsRepository(Repository[EntityT]):
    """A `Repository` whose type includes `TimestampsPlugin`'s added methods.

    At run time it is a plain `Repository` base: the ORM composes the plugin's mixin in front
    of it, as for any ``repository_class``. An ORM without `TimestampsPlugin` (or a table the
    plugin does not timestamp) is refused when the repository is built, not at the first call.

    Raises:
        BadRequestError: The repository got no timestamp methods from its ORM.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self, TimestampsMixin):
            raise BadRequestError(
                f"TimestampsRepository for {self.table.name!r} needs an ORM with "
                "TimestampsPlugin that timestamps this table"
            )

    if TYPE_CHECKING:
        # The signatures of TimestampsMixin's added methods, with the entity type filled in.

        async def touch(self, id: Any, **options: Any) -> EntityT:
            raise NotImplementedError

        async def touch_many(self, ids: Iterable[Any], **options: Any) -> int:
            raise NotImplementedError

        async def find_created_after(
            self, dt: datetime, *, limit: int | None = None, **options: Any
        ) -> list[EntityT]:
            raise NotImplementedError

        async def find_created_before(
            self, dt: datetime, *, limit: int | None = None, **options: Any
        ) -> list[EntityT]:
            raise NotImplementedError

        async def find_created_between(
            self, start: datetime, end: datetime, *, limit: int | None = None, **options: Any
        ) -> list[EntityT]:
            raise NotImplementedError

        async def find_updated_after(
            self, dt: datetime, *, limit: int | None = None, **options: Any
        ) -> list[EntityT]:
            raise NotImplementedError

        async def find_recently_created(self, limit: int = 10, **options: Any) -> list[EntityT]:
            raise NotImplementedError

        async def find_recently_updated(self, limit: int = 10, **options: Any) -> list[EntityT]:
            raise NotImplementedError

        async def create_without_timestamps(self, data: Any, **options: Any) -> EntityT:
            raise NotImplementedError

        async def update_without_timestamp(self, id: Any, data: Any, **options: Any) -> EntityT:
            raise NotImplementedError
