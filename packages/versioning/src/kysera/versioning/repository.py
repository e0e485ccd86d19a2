"""`VersionedRepository[E]`: a repository type whose checked writes are typed for mypy.

`VersionPlugin` mixes its methods in at run time, so ``orm.repository(...)`` is typed as a
plain ``Repository[E]`` and ``repo.update(id, data, version=3)`` is an error for a type
checker. Passing this class as ``repository_class`` gives the repository a type that has
both, without a cast:

```python
posts = orm.repository(posts_table, entity=Post, repository_class=VersionedRepository[Post])
await posts.update(post.id, {"title": "New"}, version=post.version)  # a Post, for mypy too
```
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from kysera.core import BadRequestError
from kysera.repository import Repository
from kysera.versioning.mixin import VersionMixin

__all__ = ["VersionedRepository"]

EntityT = TypeVar("EntityT")


class VersionedRepository(Repository[EntityT]):
    """A `Repository` whose type includes `VersionPlugin`'s checked writes.

    At run time it is a plain `Repository` base: the ORM composes the plugin's mixin in front
    of it. An ORM without `VersionPlugin` (or a table without the version column) is refused
    when the repository is built, not at the first call.

    Raises:
        BadRequestError: The repository got no versioning from its ORM.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self, VersionMixin):
            raise BadRequestError(
                f"VersionedRepository for {self.table.name!r} needs an ORM with VersionPlugin "
                "and a table with its version column"
            )

    if TYPE_CHECKING:
        # The signatures of VersionMixin's checked writes, with the entity type filled in.
        async def update(
            self,
            id: Any,
            data: Any,
            *,
            savepoint: bool = False,
            expected: Mapping[str, Any] | None = None,
            version: int | None = None,
            **options: Any,
        ) -> EntityT:
            raise NotImplementedError

        async def bulk_update(
            self,
            changes: Iterable[tuple[Any, Any] | tuple[Any, Any, int]],
            *,
            savepoint: bool = False,
            **options: Any,
        ) -> list[EntityT]:
            raise NotImplementedError
