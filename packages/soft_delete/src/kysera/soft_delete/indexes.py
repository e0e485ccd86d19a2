"""`soft_delete_unique_index`: a unique index that deleted rows do not take part in."""

from __future__ import annotations

from typing import Any

from sqlalchemy import DDL, Dialect, Index, Table, event

from kysera.core import InvalidQueryError

__all__ = ["LIVE_MARKER_COLUMN", "soft_delete_unique_index"]

LIVE_MARKER_COLUMN = "kysera_live"
"""MySQL/MariaDB: the generated column that is 1 while a row is not deleted, NULL after."""

_MYSQL = ("mysql", "mariadb")


def _is_mysql(*args: Any, dialect: Dialect, **kwargs: Any) -> bool:
    return dialect.name in _MYSQL


def _not_mysql(*args: Any, dialect: Dialect, **kwargs: Any) -> bool:
    return dialect.name not in _MYSQL


def soft_delete_unique_index(
    table: Table, *columns: str, column: str = "deleted_at", name: str | None = None
) -> Index:
    """Make ``columns`` unique among the rows that are not deleted.

    A deleted row's values (an email, say) can then be used again by a new row.

    - PostgreSQL and SQLite: a partial unique index ``... WHERE deleted_at IS NULL``.
    - MySQL/MariaDB have no partial indexes. There the table gets a stored generated column
      ``kysera_live`` (``1`` while the row is not deleted, ``NULL`` once it is) and the
      unique index covers ``(*columns, kysera_live)``: unique indexes ignore rows with a
      NULL in them, so deleted rows never collide. The column is added right after
      ``CREATE TABLE`` (``metadata.create_all``); it is not part of ``table``, so Kysera
      never selects or writes it. In a migration, run the same DDL (see
      docs/soft-delete.md).

    Call it next to the table definition (the index joins ``table``)::

        soft_delete_unique_index(users, "email")

    Args:
        table: The soft-deletable table.
        *columns: The columns that must be unique among live rows.
        column: The deletion-time column.
        name: The index name (default ``uq_<table>_<columns>_live``).

    Returns:
        The index (already attached to ``table``).

    Raises:
        InvalidQueryError: No columns, or a column the table does not have.
    """
    if not columns:
        raise InvalidQueryError("soft_delete_unique_index needs at least one column")
    for wanted in (*columns, column):
        if wanted not in table.c:
            raise InvalidQueryError(
                f"unknown column {wanted!r} of {table.name!r}; columns are {sorted(table.c.keys())}"
            )
    index_name = name or f"uq_{table.name}_{'_'.join(columns)}_live"
    deleted = table.c[column]
    index = Index(
        index_name,
        *(table.c[item] for item in columns),
        unique=True,
        postgresql_where=deleted.is_(None),
        sqlite_where=deleted.is_(None),
    ).ddl_if(callable_=_not_mysql)
    _add_mysql_alternative(table, index_name, columns, column)
    return index


def _add_mysql_alternative(
    table: Table, index_name: str, columns: tuple[str, ...], column: str
) -> None:
    marker_column = f"{table.name}.{LIVE_MARKER_COLUMN}"
    if not table.info.get(marker_column):
        table.info[marker_column] = True
        event.listen(
            table,
            "after_create",
            DDL(  # type: ignore[no-untyped-call]
                f"ALTER TABLE %(fullname)s ADD COLUMN {LIVE_MARKER_COLUMN} TINYINT "
                f"AS (CASE WHEN {_quote(column)} IS NULL THEN 1 END) STORED"
            ).execute_if(callable_=_is_mysql),
        )
    quoted = ", ".join(_quote(item) for item in columns)
    event.listen(
        table,
        "after_create",
        DDL(  # type: ignore[no-untyped-call]
            f"CREATE UNIQUE INDEX {_quote(index_name)} ON %(fullname)s "
            f"({quoted}, {LIVE_MARKER_COLUMN})"
        ).execute_if(callable_=_is_mysql),
    )


def _quote(identifier: str) -> str:
    """Quote a MySQL identifier (the DDL above only ever runs on MySQL/MariaDB)."""
    return "`" + identifier.replace("`", "``") + "`"
