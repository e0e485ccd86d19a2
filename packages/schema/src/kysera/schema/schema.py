"""`Schema`: what `discover` found, and the repositories built from it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from sqlalchemy import MetaData, Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.repository import Orm, Relation, Repository, create_orm
from kysera.schema.models import TableModels, schema_models
from kysera.schema.relations import schema_relations
from kysera.schema.views import ViewRepository

__all__ = ["Repositories", "Schema"]


class Schema:
    """The tables and views of a database, their models and their relations.

    Attributes:
        metadata: The reflected ``MetaData`` (it may also hold tables that discovered ones
            reference but that were not included).
        tables: Every discovered table and view by name, in name order.
        views: The names of the views among ``tables``.
        models: The `TableModels` (``Read``, ``Create``, ``Update``) of each table and view.
        relations: Relations derived from the foreign keys between discovered tables
            (`kysera.schema.schema_relations`).
    """

    def __init__(
        self, metadata: MetaData, tables: Mapping[str, Table], *, views: frozenset[str]
    ) -> None:
        self.metadata = metadata
        self.tables: Mapping[str, Table] = MappingProxyType(dict(sorted(tables.items())))
        self.views = views
        discovered = set(self.tables.values())
        self.relations: tuple[Relation, ...] = tuple(
            relation
            for relation in schema_relations(self.tables.values())
            if relation.target in discovered
            and (relation.through is None or relation.through in discovered)
        )
        self.models: Mapping[str, TableModels] = MappingProxyType(
            schema_models(self.tables, self.relations)
        )

    def __repr__(self) -> str:
        return f"<Schema: {len(self.tables)} tables and views, {len(self.relations)} relations>"

    async def create_orm(
        self,
        executor: AsyncEngine | AsyncConnection,
        plugins: Sequence[object] = (),
        **options: Any,
    ) -> Orm:
        """`kysera.repository.create_orm`, with this schema's relations declared.

        Relations declared later with ``orm.relate`` replace derived ones of the same name.
        """
        orm = await create_orm(executor, plugins, **options)
        orm.relate(*self.relations)
        return orm

    def repositories(self, orm: Orm) -> Repositories:
        """One repository per table and view of this schema, on ``orm`` (each made when
        first used).

        Each returns ``models[name].Read`` entities and validates input with ``Create`` and
        ``Update``; a view's repository is a `ViewRepository` (reads only).
        """
        return Repositories(self, orm)

    def _repository(self, orm: Orm, name: str) -> Repository[Any]:
        models = self.models[name]
        return orm.repository(
            self.tables[name],
            entity=models.Read,
            create=models.Create,
            update=models.Update,
            repository_class=ViewRepository if name in self.views else Repository,
        )


class Repositories(Mapping[str, Repository[Any]]):
    """The repositories of a `Schema`: ``repos.film`` or ``repos["film"]``."""

    __slots__ = ("_made", "_orm", "_schema")

    def __init__(self, schema: Schema, orm: Orm) -> None:
        self._schema = schema
        self._orm = orm
        self._made: dict[str, Repository[Any]] = {}

    def __getitem__(self, name: str) -> Repository[Any]:
        found = self._made.get(name)
        if found is None:
            if name not in self._schema.tables:
                raise KeyError(name)
            found = self._made[name] = self._schema._repository(self._orm, name)
        return found

    def __getattr__(self, name: str) -> Repository[Any]:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no table or view named {name!r}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._schema.tables)

    def __len__(self) -> int:
        return len(self._schema.tables)

    def __repr__(self) -> str:
        return f"<Repositories: {', '.join(self._schema.tables)}>"
