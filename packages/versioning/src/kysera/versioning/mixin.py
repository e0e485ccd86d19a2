"""`VersionMixin`: the checked writes the plugin adds to repositories of versioned tables."""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, TypeVar, cast

from sqlalchemy import Select, Table, false, select
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

    def upsert_update_columns(self, columns: tuple[str, ...]) -> tuple[str, ...]:
        """Keep the stored version when an upsert meets an existing row: its update branch
        increments the version instead of copying the one in the data (a stale version
        there would otherwise roll the row back to it). A new row still takes it."""
        name = self._version_name()
        return super().upsert_update_columns(tuple(c for c in columns if c != name))

    async def bulk_update(
        self, changes: Iterable[Any], *, savepoint: bool = False, **options: Any
    ) -> list[EntityT]:
        """`Repository.bulk_update`; ``(id, data, version)`` triples are checked, all or none.

        With versions, one ``SELECT ... FOR UPDATE`` per batch of keys (one on PostgreSQL)
        reads and locks the versions in the same transaction as the update, through the
        plugins like every read: a row the caller cannot see (another tenant's, soft
        deleted, expired) is missing, not stale. Any stale version raises and nothing is
        written.

        Raises:
            ConflictError: A row's version differs from the one given (the first such row
                is reported, with its current values); nothing is written.
            NotFoundError: A key matches no row (``filters`` lists the missing keys);
                nothing is written.
            InvalidQueryError: A key is malformed, or names a row a second time (each row's
                version is checked once: merge its changes).
        """
        items = list(changes)
        if not any(isinstance(item, tuple) and len(item) == 3 for item in items):
            return await super().bulk_update(items, savepoint=savepoint, **options)
        if not all(isinstance(item, tuple) and len(item) == 3 for item in items):
            raise InvalidQueryError(
                "bulk_update takes either (id, data) pairs or (id, data, version) triples"
            )
        name = self._version_name()
        key = self._key
        ids = [id for id, _, _ in items]
        # The form the lock's rows give back (a dict or a UUID string becomes the stored form).
        keys = [key.normalize(id) for id in ids]
        seen: set[Any] = set()
        for id, normalized in zip(ids, keys, strict=True):
            if normalized in seen:
                raise InvalidQueryError(
                    f"bulk_update with versions changes each row once; {id!r} is given "
                    "more than once: merge its changes into one"
                )
            seen.add(normalized)
        versions = [version for _, _, version in items]
        pairs = [(id, data) for id, data, _ in items]
        values = [key.values(k) if key.composite else key.values(k)[0] for k in keys]
        lock = _versions_lock(self.table, key, name)
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
            statement = self.intercept("select", lock, options)
            stored: dict[Any, Any] = {}
            for batch in key.batches(values, connection.dialect.name):
                result = await connection.execute(statement, key.batch_params(batch))
                for row in result:
                    found = row._asdict()
                    stored[key.of_row(found)] = found[name]
            # Keys the database matched its own way (case-insensitive collations, trailing
            # spaces), as the repository's bulk_update allows them.
            loosely = {key.loose(found): version for found, version in stored.items()}
            found_versions = [stored.get(k, loosely.get(key.loose(k), _MISSING)) for k in keys]
            missing = [id for id, v in zip(ids, found_versions, strict=True) if v is _MISSING]
            if missing:
                raise NotFoundError(entity=self.table.name, filters=missing)
            for id, version, found in zip(ids, versions, found_versions, strict=True):
                if found != version:
                    read = self.intercept("select", self._statements.by_id, options)
                    current = (await connection.execute(read, key.params(id))).mappings().first()
                    raise ConflictError(
                        entity=self.table.name,
                        filters=id,
                        expected={name: version},
                        current=None if current is None else dict(current),
                    )
            # The rest of the chain (other plugins' mixins, then the repository) on this
            # transaction's connection: the versions stay locked until the update commits.
            bound = cast("VersionMixin[EntityT]", self.with_executor(connection))
            written: list[EntityT] = await super(VersionMixin, bound).bulk_update(pairs, **options)
            return written

        return await self._write(work, savepoint=savepoint)


_MISSING: Any = object()
_VERSION_LOCKS: weakref.WeakKeyDictionary[Table, dict[str, Select[Any]]] = (
    weakref.WeakKeyDictionary()
)


def _versions_lock(table: Table, key: Any, name: str) -> Select[Any]:
    """``SELECT key, version FROM table WHERE key IN (...) FOR UPDATE``, one per table and
    version column (the plugins' rewrite of it is then cached too)."""
    by_column = _VERSION_LOCKS.setdefault(table, {})
    found = by_column.get(name)
    if found is None:
        columns = [*key.columns, table.c[name]]
        found = by_column[name] = select(*columns).where(key.in_condition).with_for_update()
    return found
