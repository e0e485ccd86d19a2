"""Building and inserting test rows with sequences, defaults and per-build callables."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from kysera.core.errors import BadRequestError
from kysera.core.testing._executor import Executor, writing
from kysera.core.testing._tables import check_columns

__all__ = ["Factory"]


class Factory:
    """Builds rows for one table and inserts them.

    Each build merges, later winning: ``defaults``, then ``sequence(n)`` (``n`` counts this
    factory's builds from 1), then the overrides. A callable value (in ``defaults`` or the
    overrides) is called with no arguments on every build, so ``created_at=datetime.now``
    gives each row its own time.

    Example::

        users_factory = Factory(
            users, sequence=lambda n: {"email": f"user{n}@example.com"}, active=True
        )
        users_factory.build()  # {"active": True, "email": "user1@example.com"}
        user = await users_factory.create(conn, name="Ada")  # the inserted row, read back
        more = await users_factory.create_many(conn, 3, active=False)

    Args:
        table_or_model: A `sqlalchemy.Table`, or a class with a ``__table__`` (a mapped class).
        sequence: Returns the values that depend on the build number.
        **defaults: Column values for every row.

    Raises:
        InvalidQueryError: When a value names a column the table does not have.
    """

    def __init__(
        self,
        table_or_model: Any,
        sequence: Callable[[int], Mapping[str, Any]] | None = None,
        **defaults: Any,
    ) -> None:
        table = getattr(table_or_model, "__table__", table_or_model)
        if not isinstance(table, sa.Table):
            raise BadRequestError(
                f"Factory needs a sqlalchemy Table or a class with __table__, "
                f"got {table_or_model!r}"
            )
        check_columns(table, defaults)
        self.table = table
        self.sequence = sequence
        self.defaults = defaults
        self.count = 0

    def build(self, **overrides: Any) -> dict[str, Any]:
        """Return the next row as a dict, without touching the database."""
        check_columns(self.table, overrides)
        self.count += 1
        values: dict[str, Any] = {**self.defaults}
        if self.sequence is not None:
            generated = dict(self.sequence(self.count))
            check_columns(self.table, generated)
            values.update(generated)
        values.update(overrides)
        return {key: value() if callable(value) else value for key, value in values.items()}

    def build_many(self, n: int, **overrides: Any) -> list[dict[str, Any]]:
        """Return the next ``n`` rows."""
        if n < 0:
            raise BadRequestError(f"build_many needs n >= 0, got {n}")
        return [self.build(**overrides) for _ in range(n)]

    async def create(self, executor: Executor, **overrides: Any) -> dict[str, Any]:
        """Insert the next row and return it as stored (with generated keys and defaults)."""
        rows = await self._insert(executor, [self.build(**overrides)])
        return rows[0]

    async def create_many(
        self, executor: Executor, n: int, **overrides: Any
    ) -> list[dict[str, Any]]:
        """Insert the next ``n`` rows in one statement and return them as stored, in order."""
        rows = self.build_many(n, **overrides)
        return await self._insert(executor, rows) if rows else []

    async def _insert(self, executor: Executor, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        table = self.table
        async with writing(executor) as conn:
            dialect = conn.dialect
            returning = (
                dialect.insert_returning if len(rows) == 1 else dialect.insert_executemany_returning
            )
            if returning:
                statement = table.insert().returning(*table.c, sort_by_parameter_order=True)
                result = await conn.execute(statement, rows)
                return [dict(row) for row in result.mappings()]
            # No RETURNING (MySQL): insert one by one and read each row back by primary key.
            stored: list[dict[str, Any]] = []
            for row in rows:
                inserted = await conn.execute(table.insert(), row)
                key = inserted.inserted_primary_key
                if key is None or not len(table.primary_key.columns):
                    stored.append(dict(row))
                    continue
                where = [
                    column == value
                    for column, value in zip(table.primary_key.columns, key, strict=True)
                ]
                found = await conn.execute(sa.select(table).where(*where))
                stored.append(dict(found.mappings().one()))
            return stored
