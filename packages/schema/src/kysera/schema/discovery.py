"""`discover`: reflect a database into a `Schema` of tables, models and relations.

Reflection is SQLAlchemy's ``MetaData.reflect``, which since SQLAlchemy 2.0 reads the catalog
with its bulk ("multi") inspector methods: a fixed number of catalog queries for the columns,
keys, indexes and constraints of all tables at once, however many tables there are.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ARRAY,
    JSON,
    Column,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    inspect,
    text,
)
from sqlalchemy.engine import Connection, Inspector
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.core import InvalidQueryError, classify_database_errors
from kysera.schema.errors import UnknownTableError
from kysera.schema.models import column_python_type
from kysera.schema.schema import Schema

__all__ = ["discover"]


def _names(value: Iterable[str] | str | None, argument: str) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset([value])
    names = frozenset(value)
    if not all(isinstance(name, str) for name in names):
        raise TypeError(f"{argument} must be table names (strings)")
    return names


async def discover(
    executor: AsyncEngine | AsyncConnection,
    schema: str | None = None,
    include: Iterable[str] | str | None = None,
    exclude: Iterable[str] | str | None = None,
    *,
    view_keys: Mapping[str, Sequence[str]] | None = None,
) -> Schema:
    """Reflect the tables and views of a database (or of one of its schemas).

    ```python
    schema = await discover(engine)
    film = schema.tables["film"]
    orm = await schema.create_orm(engine)
    repos = schema.repositories(orm)
    await repos.film.find({"rating": "PG"}, include="actor")
    ```

    Args:
        executor: An engine (a connection is taken for the reflection) or a connection.
        schema: The database schema to read (default: the connection's default schema).
        include: Only these tables and views (tables they reference are read too, to
            resolve the foreign keys, but are not part of the result).
        exclude: Leave these tables and views out.
        view_keys: The columns that identify a row of a view (``{"film_list": ["fid"]}``):
            a view has no primary key in the catalog, and a repository needs one (for
            ``get`` and keyset pages). A view without one here is keyed by all its columns
            of scalar types (not JSON, arrays, sets or large binary columns, which a keyset
            cursor cannot carry or which are costly to compare), or by all its columns if
            it has no such column.

    Raises:
        UnknownTableError: ``include`` names a table or view that does not exist.
        InvalidQueryError: ``view_keys`` names a column a view does not have.
        DatabaseError: The catalog could not be read.
    """
    included = _names(include, "include")
    excluded = _names(exclude, "exclude") or frozenset()

    def reflect(connection: Connection) -> Schema:
        inspector = inspect(connection)
        tables = inspector.get_table_names(schema)
        views = inspector.get_view_names(schema) + _materialized_views(inspector, schema)
        available = set(tables) | set(views)
        if included is not None and not included <= available:
            raise UnknownTableError(included - available, schema=schema)
        wanted = sorted(
            name
            for name in available
            if (included is None or name in included) and name not in excluded
        )
        metadata = MetaData()
        metadata.reflect(connection, schema=schema, views=True, only=wanted)
        prefix = f"{schema}." if schema else ""
        found = {name: metadata.tables[prefix + name] for name in wanted}
        found_views = frozenset(views) & set(wanted)
        for name in found_views:
            _key_view(found[name], (view_keys or {}).get(name))
        if connection.dialect.name == "sqlite":
            for name in set(wanted) - found_views:
                _mark_rowid_alias(connection, found[name], schema)
        if connection.dialect.name == "postgresql":
            for name in _partitioned(connection, schema) & set(wanted):
                found[name].info["partitioned"] = True
        return Schema(metadata, found, views=found_views)

    if view_keys is not None and not isinstance(view_keys, Mapping):
        raise TypeError("view_keys must map view names to column names")
    with classify_database_errors():
        if isinstance(executor, AsyncConnection):
            return await executor.run_sync(reflect)
        async with executor.connect() as connection:
            result: Any = await connection.run_sync(reflect)
            return result  # type: ignore[no-any-return]


def _materialized_views(inspector: Inspector, schema: str | None) -> list[str]:
    """PostgreSQL's materialized views (read-only, like views); other databases have none."""
    try:
        return inspector.get_materialized_view_names(schema)
    except NotImplementedError:
        return []


_PARTITIONED = text(
    "SELECT c.relname FROM pg_catalog.pg_class AS c "
    "JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace "
    "WHERE (c.relkind = 'p' OR c.relispartition) "
    "AND n.nspname = coalesce(:schema, current_schema())"
)


def _partitioned(connection: Connection, schema: str | None) -> set[str]:
    """PostgreSQL's partitioned tables and their partitions (a row goes to the partition
    whose range holds its partition key: no partition may hold a made-up one)."""
    return set(connection.execute(_PARTITIONED, {"schema": schema}).scalars())


def _mark_rowid_alias(connection: Connection, table: Table, schema: str | None) -> None:
    """Say whether SQLite fills a table's integer key: only a sole primary key column
    declared ``INTEGER`` (exactly; not ``INT``) is the rowid. Reflection cannot tell, as both
    reflect as INTEGER, and leaves ``autoincrement="auto"``, which would make an application
    key such as Chinook's ``ArtistId INT`` look generated."""
    key = list(table.primary_key.columns)
    if len(key) != 1 or key[0].autoincrement != "auto":
        return
    quote = connection.dialect.identifier_preparer.quote_identifier
    prefix = f"{quote(schema)}." if schema else ""
    rows = connection.exec_driver_sql(f"PRAGMA {prefix}table_info({quote(table.name)})")
    declared = {row[1]: str(row[2]).strip().upper() for row in rows}
    key[0].autoincrement = declared.get(key[0].name) == "INTEGER"


def _key_view(view: Table, names: Sequence[str] | None) -> None:
    """Give ``view`` the primary key ``names`` (default: all its columns of scalar types)."""
    if names is None:
        columns = [column for column in view.columns if _scalar(column)] or list(view.columns)
    else:
        missing = [name for name in names if name not in view.c]
        if missing or isinstance(names, str) or not names:
            raise InvalidQueryError(
                f"view_keys[{view.name!r}] must list columns of the view; "
                f"it has {', '.join(view.c.keys())}"
            )
        columns = [view.c[name] for name in names]
    view.append_constraint(PrimaryKeyConstraint(*columns))


def _scalar(column: Column[Any]) -> bool:
    """Whether a view's column can be part of its default key: a keyset cursor carries and
    the database orders its values cheaply (JSON, arrays, sets and large binaries not)."""
    if isinstance(column.type, (JSON, ARRAY, LargeBinary)):
        return False
    python_type = column_python_type(column)
    if python_type is Any or python_type in (dict, list, set):
        return False
    return typing.get_origin(python_type) in (None, typing.Literal)
