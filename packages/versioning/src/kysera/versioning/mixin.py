"""`VersionMixin`: the checked writes the plugin adds to repositories of versioned tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, TypeVar, cast

from sqlalchemy import false, select, tuple_
from sqlalchemy import update as update_statement
from sqlalchemy.ext.asyncio import AsyncConnection

from kysera.core import InvalidQueryError, NotFoundError
from kysera.repository import ConflictError, PluginError, Repository

__all__ = ["VersionMixin"]

EntityT = TypeVar("EntityT")


class VersionMixin(Repository[EntityT]):
    """Optimistic locking for a repository of a versioned table (see `VersionPlugin`)."""

    version_column: ClassVar[str | None] = None
    """Set on the subclass the plugin builds; ``None`` on this class itself."""

    def _version_name(self) -> str:
        name = self.version_column
        if name is None or name not in self.table.c:
            raise PluginError(
                f"{type(self).__name__} needs a repository created by an ORM with "
                f"VersionPlugin() on a table with its version column ({self.table.name!r})",
                plugins=["versioning"],
            )
        return name

    def prepare_update(self, values: dict[str, Any]) -> dict[str, Any]:
        """Refuse a version in the data of an update: the plugin maintains the column.

        Raises:
            InvalidQueryError: ``values`` sets the version column.
        """
        name = self._version_name()
        if name in values:
            raise InvalidQueryError(
                f"{name!r} of {self.table.name!r} is maintained by VersionPlugin: every update "
                f"increments it; pass version=n to update() to check it instead of setting it"
            )
        return super().prepare_update(values)

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
        """`Repository.update`, checked against ``version`` when it is given.

        Raises:
            ConflictError: The row's version is no longer ``version``; nothing is written.
            NotFoundError: No row has this key.
        """
        if version is not None:
            expected = {**(expected or {}), self._version_name(): version}
        return await super().update(id, data, savepoint=savepoint, expected=expected, **options)

    async def bulk_update(
        self, changes: Iterable[Any], *, savepoint: bool = False, **options: Any
    ) -> list[EntityT]:
        """`Repository.bulk_update`; ``(id, data, version)`` triples are checked, all or none.

        With versions, one ``SELECT ... FOR UPDATE`` reads (and locks) the versions of every
        key in the same transaction as the update; any stale version raises and nothing is
        written.

        Raises:
            ConflictError: A row's version differs from the one given (the first such row
                is reported); nothing is written.
            NotFoundError: A key matches no row; nothing is written.
        """
        items = list(changes)
        if not any(isinstance(item, tuple) and len(item) == 3 for item in items):
            return await super().bulk_update(items, savepoint=savepoint, **options)
        if not all(isinstance(item, tuple) and len(item) == 3 for item in items):
            raise InvalidQueryError(
                "bulk_update takes either (id, data) pairs or (id, data, version) triples"
            )
        name = self._version_name()
        pairs = [(id, data) for id, data, _ in items]
        versions = [version for _, _, version in items]
        key_columns = [self.table.c[column] for column in self.primary_key]
        composite = len(key_columns) > 1
        keys = [tuple(id) if composite else id for id, _, _ in items]
        key_expression = tuple_(*key_columns) if composite else key_columns[0]
        lock = (
            select(*key_columns, self.table.c[name])
            .where(key_expression.in_(keys))
            .with_for_update()
        )

        take_write_lock = (
            update_statement(self.table).where(false()).values({name: self.table.c[name]})
        )

        async def work(connection: AsyncConnection) -> list[EntityT]:
            if connection.dialect.name == "sqlite":
                # SQLite has no FOR UPDATE: take the database's write lock first (an UPDATE
                # matching no row), so that a concurrent versioned bulk update waits for this
                # one and then sees its versions, instead of both reading and one failing to
                # upgrade its read lock.
                await connection.execute(take_write_lock)
            rows = (await connection.execute(lock)).all()
            stored = {(tuple(row[:-1]) if composite else row[0]): row[-1] for row in rows}
            missing = [key for key in keys if key not in stored]
            if missing:
                raise NotFoundError(entity=self.table.name, filters=missing)
            for key, version in zip(keys, versions, strict=True):
                if stored[key] != version:
                    current = (
                        await connection.execute(select(self.table).where(key_expression == key))
                    ).first()
                    raise ConflictError(
                        entity=self.table.name,
                        filters=key,
                        expected={name: version},
                        current=None if current is None else dict(current._mapping),
                    )
            # The rest of the chain (other plugins' mixins, then the repository) on this
            # transaction's connection: the versions stay locked until the update commits.
            bound = cast("VersionMixin[EntityT]", self.with_executor(connection))
            written: list[EntityT] = await super(VersionMixin, bound).bulk_update(pairs, **options)
            return written

        return await self._write(work, savepoint=savepoint)
