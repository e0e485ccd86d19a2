"""`ViewRepository`: the repository of a discovered view, which reads and refuses writes."""

from __future__ import annotations

from typing import Any, NoReturn, TypeVar

from kysera.repository import Repository
from kysera.schema.errors import ReadOnlyError

__all__ = ["ViewRepository"]

_EntityT = TypeVar("_EntityT")

_WRITES = (
    "bulk_update",
    "create",
    "create_many",
    "delete",
    "delete_many",
    "increment",
    "increment_many",
    "update",
    "update_many",
    "upsert",
    "upsert_many",
)


def _refusal(operation: str) -> Any:
    async def refuse(self: Repository[Any], *args: Any, **kwargs: Any) -> NoReturn:
        raise ReadOnlyError(self.table.name, operation)

    refuse.__name__ = operation
    refuse.__doc__ = f"Raises `ReadOnlyError`: a view's repository has no ``{operation}``."
    return refuse


class ViewRepository(Repository[_EntityT]):
    """A `Repository` on a view: every read works, every write raises `ReadOnlyError`
    before any SQL is sent."""


for _operation in _WRITES:
    setattr(ViewRepository, _operation, _refusal(_operation))
