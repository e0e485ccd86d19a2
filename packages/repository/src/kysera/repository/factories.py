"""Repositories without an ORM: `create_repository` and `create_repositories_factory`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Table

from kysera.repository.repository import Executor, Repository

__all__ = ["create_repositories_factory", "create_repository"]


def create_repository(
    executor: Executor,
    table: Table,
    *,
    entity: type[BaseModel] | None = None,
    create: type[BaseModel] | None = None,
    update: type[BaseModel] | None = None,
    validate_results: bool | None = None,
) -> Repository[Any]:
    """Create a plain repository (no plugins, no ORM transactions) on ``executor``.

    ```python
    users = create_repository(engine, users_table, entity=User, create=UserCreate)
    ```
    """
    return Repository(
        executor,
        table,
        entity=entity,
        create=create,
        update=update,
        validate_results=validate_results,
    )


def create_repositories_factory(
    makers: Mapping[str, Callable[[Executor], Any]],
) -> Callable[[Executor], SimpleNamespace]:
    """Bundle repository makers into one factory that binds them all to an executor.

    ```python
    make_repositories = create_repositories_factory({
        "users": lambda executor: create_repository(executor, users_table),
        "posts": lambda executor: create_repository(executor, posts_table),
    })
    async with engine.begin() as conn:
        repos = make_repositories(conn)  # every repository in this transaction
        await repos.users.create({...})
    ```

    Returns:
        A function of an executor returning a namespace with one attribute per maker.
    """
    bundled = dict(makers)
    for name, maker in bundled.items():
        if not name.isidentifier() or not callable(maker):
            raise TypeError(f"repository maker {name!r} must be a callable under an identifier")

    def make(executor: Executor) -> SimpleNamespace:
        return SimpleNamespace(**{name: maker(executor) for name, maker in bundled.items()})

    return make
