"""`SoftDeleteMethods`: the soft-delete methods as a `typing.Protocol`, for static types."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

__all__ = ["SoftDeleteMethods"]

EntityT = TypeVar("EntityT")


class SoftDeleteMethods(Protocol[EntityT]):
    """The methods `SoftDeletePlugin` adds to a repository.

    Plugin mixins are composed at run time, so type checkers do not see them on
    ``orm.repository(...)``. Ask for ``repository_class=SoftDeleteRepository[User]`` to get
    them typed without a cast, or, for code that receives any repository, cast (or annotate
    a helper's parameter):

    ```python
    users = cast(SoftDeleteMethods[User], orm.repository(users_table, entity=User))
    ```

    or compose explicitly: ``class UserRepository(SoftDeleteMixin, Repository[User])``.
    """

    async def soft_delete(self, id: Any, **options: Any) -> EntityT: ...

    async def soft_delete_many(self, ids: Iterable[Any], **options: Any) -> int: ...

    async def restore(self, id: Any, **options: Any) -> EntityT: ...

    async def restore_many(self, ids: Iterable[Any], **options: Any) -> int: ...

    async def hard_delete(self, id: Any, **options: Any) -> bool: ...

    async def hard_delete_many(self, ids: Iterable[Any], **options: Any) -> int: ...

    async def find_with_deleted(self, id: Any, **options: Any) -> EntityT | None: ...

    async def find_all_with_deleted(
        self,
        order_by: Any = None,
        limit: int | None = None,
        offset: int | None = None,
        **options: Any,
    ) -> list[EntityT]: ...

    async def find_deleted(
        self,
        where: Any = None,
        order_by: Any = None,
        limit: int | None = None,
        offset: int | None = None,
        **options: Any,
    ) -> list[EntityT]: ...
