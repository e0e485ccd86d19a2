"""`SoftDeleteRepository[E]`: a repository type that carries the soft-delete methods for mypy.

The plugin's methods are mixed in at run time, so ``orm.repository(...)`` is typed as a plain
``Repository[E]`` and ``repo.soft_delete(...)`` is an error for a type checker. Passing this
class as ``repository_class`` gives the repository a type that has both, without a cast:

```python
books = orm.repository(books_table, entity=Book, repository_class=SoftDeleteRepository[Book])
await books.soft_delete(1)  # returns a Book, for mypy too
```
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from kysera.core import BadRequestError
from kysera.repository import Repository
from kysera.soft_delete.mixin import SoftDeleteMixin

__all__ = ["SoftDeleteRepository"]

EntityT = TypeVar("EntityT")


class SoftDeleteRepository(Repository[EntityT]):
    """A `Repository` whose type includes `SoftDeletePlugin`'s methods.

    At run time it is a plain `Repository` base: the ORM composes the plugin's mixin in front
    of it, as for any ``repository_class``. An ORM without `SoftDeletePlugin` (or a table the
    plugin excludes) is refused when the repository is built, not at the first call.

    Raises:
        BadRequestError: The repository got no soft-delete methods from its ORM.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self, SoftDeleteMixin):
            raise BadRequestError(
                f"SoftDeleteRepository for {self.table.name!r} needs an ORM with "
                "SoftDeletePlugin that covers this table"
            )

    if TYPE_CHECKING:
        # The signatures of SoftDeleteMixin's methods, with the entity type filled in.

        async def soft_delete(self, id: Any, **options: Any) -> EntityT:
            raise NotImplementedError

        async def soft_delete_many(self, ids: Iterable[Any], **options: Any) -> int:
            raise NotImplementedError

        async def restore(self, id: Any, **options: Any) -> EntityT:
            raise NotImplementedError

        async def restore_many(self, ids: Iterable[Any], **options: Any) -> int:
            raise NotImplementedError

        async def hard_delete(self, id: Any, **options: Any) -> bool:
            raise NotImplementedError

        async def hard_delete_many(self, ids: Iterable[Any], **options: Any) -> int:
            raise NotImplementedError

        async def find_with_deleted(self, id: Any, **options: Any) -> EntityT | None:
            raise NotImplementedError

        async def find_all_with_deleted(
            self,
            order_by: Any = None,
            limit: int | None = None,
            offset: int | None = None,
            **options: Any,
        ) -> list[EntityT]:
            raise NotImplementedError

        async def find_deleted(
            self,
            where: Any = None,
            order_by: Any = None,
            limit: int | None = None,
            offset: int | None = None,
            **options: Any,
        ) -> list[EntityT]:
            raise NotImplementedError
