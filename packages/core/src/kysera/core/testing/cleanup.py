"""Emptying tables between tests that cannot run in a rolled-back transaction."""

from __future__ import annotations

import graphlib
import itertools
from collections.abc import Callable, Iterable
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Inspector

from kysera.core.errors import BadRequestError
from kysera.core.testing import _sqlite
from kysera.core.testing._executor import Executor, writing
from kysera.core.testing._tables import TableRef, table_name, unknown_table

__all__ = ["clean_database"]

STRATEGIES = ("delete", "truncate")
DEFAULT_MIGRATIONS_TABLE = "kysera_migrations"


async def clean_database(
    engine: Executor,
    strategy: Literal["delete", "truncate"] = "delete",
    tables: Iterable[TableRef] | None = None,
    exclude: Iterable[TableRef] = (),
    *,
    migrations_table: str | None = DEFAULT_MIGRATIONS_TABLE,
) -> list[str]:
    """Remove every row from the given tables, or from all tables of the default schema.

    With ``tables=None`` the tables are discovered, minus ``exclude`` and the migrations table.
    Rows are removed children before parents, so foreign keys never get in the way:

    * ``"delete"``: ``DELETE FROM`` each table in one transaction, children first. Tables in a
      foreign-key cycle (or referencing themselves, on MySQL) first get the cycle's nullable
      foreign-key columns set to NULL; on PostgreSQL deferrable constraints are deferred
      (``SET CONSTRAINTS ALL DEFERRED``, which ends with the transaction); on SQLite
      ``PRAGMA defer_foreign_keys`` does the same. Auto-increment counters keep counting.
    * ``"truncate"``: also resets auto-increment counters. PostgreSQL: one ``TRUNCATE ...
      RESTART IDENTITY`` (no ``CASCADE``: a table outside the list that references one inside
      it is an error, never silently emptied). MySQL/MariaDB: ``TRUNCATE TABLE`` per table, with
      ``FOREIGN_KEY_CHECKS`` switched off for this connection and restored (or the connection
      discarded) before it returns to the pool; each ``TRUNCATE`` commits implicitly. SQLite:
      ``DELETE`` plus a reset of ``sqlite_sequence``.

    No superuser rights are needed (no ``session_replication_role``), and no session setting
    stays on a pooled connection.

    Args:
        engine: An `AsyncEngine` (one transaction of its own) or an `AsyncConnection` (runs in
            the caller's transaction; on MySQL a ``TRUNCATE`` commits it).
        strategy: ``"delete"`` or ``"truncate"``.
        tables: The tables to clean (`Table` objects or names); ``None`` for all.
        exclude: Tables to leave alone.
        migrations_table: Left alone when discovering tables; ``None`` to clean it as well.

    Returns:
        The names of the tables cleaned, in the order they were emptied.

    Raises:
        BadRequestError: Unknown strategy or table, or a table name with quotes, semicolons or
            control characters. Nothing is changed.
    """
    if strategy not in STRATEGIES:
        raise BadRequestError(
            f"unknown clean_database strategy {strategy!r}; use one of {', '.join(STRATEGIES)}"
        )
    wanted = None if tables is None else [table_name(t) for t in tables]
    excluded = {table_name(t) for t in exclude}

    async with writing(engine) as conn:

        def clean(sync: Connection) -> list[str]:
            inspector = sa.inspect(sync)
            existing = set(inspector.get_table_names())
            for name in [*(wanted or ()), *excluded]:
                if name not in existing:
                    raise unknown_table(name, existing)
            if wanted is None:
                skip = excluded | ({migrations_table} if migrations_table else set())
                targets = sorted(existing - skip)
            else:
                targets = [name for name in dict.fromkeys(wanted) if name not in excluded]
            if not targets:
                return []
            dialect = sync.dialect.name
            if dialect == "sqlite":
                order, _unlink = _deletion_plan(sync, inspector, targets)
                return _clean_sqlite(sync, order, reset_sequences=strategy == "truncate")
            if strategy == "truncate":
                if dialect == "postgresql":
                    return _truncate_postgresql(sync, targets)
                if dialect in ("mysql", "mariadb"):
                    return _truncate_mysql(sync, targets)
            return _delete_in_order(sync, inspector, targets)

        return await conn.run_sync(clean)


def _quoted(sync: Connection, name: str) -> str:
    return sync.dialect.identifier_preparer.quote(name)


def _clean_sqlite(sync: Connection, targets: list[str], *, reset_sequences: bool) -> list[str]:
    _sqlite.ensure_begun(sync)
    # Ends with the transaction: checks happen at commit, when every table is empty.
    sync.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
    for name in targets:
        sync.execute(sa.delete(sa.table(name)))
    if reset_sequences:
        master = sa.table("sqlite_master", sa.column("name"))
        has_sequences = sync.execute(
            sa.select(master.c.name).where(master.c.name == "sqlite_sequence")
        ).first()
        if has_sequences:
            sequence = sa.table("sqlite_sequence", sa.column("name"))
            sync.execute(sa.delete(sequence).where(sequence.c.name.in_(targets)))
    return targets


def _truncate_postgresql(sync: Connection, targets: list[str]) -> list[str]:
    names = ", ".join(_quoted(sync, name) for name in targets)
    sync.exec_driver_sql(f"TRUNCATE TABLE {names} RESTART IDENTITY")
    return targets


def _truncate_mysql(sync: Connection, targets: list[str]) -> list[str]:
    previous = sync.exec_driver_sql("SELECT @@SESSION.foreign_key_checks").scalar_one()
    sync.exec_driver_sql("SET SESSION foreign_key_checks = 0")
    try:
        for name in targets:
            sync.exec_driver_sql(f"TRUNCATE TABLE {_quoted(sync, name)}")
    finally:
        try:
            sync.exec_driver_sql(f"SET SESSION foreign_key_checks = {int(previous)}")
        except Exception:
            # A connection that may still have the checks off must never be reused.
            sync.invalidate()
            raise
    return targets


def _delete_in_order(sync: Connection, inspector: Inspector, targets: list[str]) -> list[str]:
    order, to_null = _deletion_plan(sync, inspector, targets)
    if sync.dialect.name == "postgresql":
        sync.exec_driver_sql("SET CONSTRAINTS ALL DEFERRED")
    for child, columns in to_null:
        nullable = {c["name"] for c in inspector.get_columns(child) if c.get("nullable", True)}
        settable = [c for c in columns if c in nullable]
        if settable:
            table = sa.table(child, *(sa.column(c) for c in settable))
            sync.execute(sa.update(table).values(dict.fromkeys(settable)))
    for name in order:
        sync.execute(sa.delete(sa.table(name)))
    return order


def _deletion_plan(
    sync: Connection, inspector: Inspector, targets: list[str]
) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Return the tables children first, and the foreign-key columns to set to NULL first
    (those closing a cycle, and on MySQL those referencing their own table)."""
    target_set = set(targets)
    all_fks = inspector.get_multi_foreign_keys()
    edges: list[tuple[str, str, list[str]]] = []  # (child, parent, child's FK columns)
    for (_schema, child), fks in all_fks.items():
        if child not in target_set:
            continue
        for fk in fks:
            parent = fk["referred_table"]
            if parent in target_set and fk.get("referred_schema") in (None, _schema):
                edges.append((child, parent, list(fk["constrained_columns"])))

    is_mysql = sync.dialect.name in ("mysql", "mariadb")
    to_null: list[tuple[str, list[str]]] = []
    if is_mysql:
        # InnoDB checks row by row, so rows referencing rows of their own table need unlinking.
        to_null += [(child, cols) for child, parent, cols in edges if child == parent]
    nullable_columns: dict[str, set[str]] = {}

    def nullable(edge: tuple[str, str, list[str]]) -> bool:
        child, _parent, columns = edge
        if child not in nullable_columns:
            nullable_columns[child] = {
                c["name"] for c in inspector.get_columns(child) if c.get("nullable", True)
            }
        return all(column in nullable_columns[child] for column in columns)

    order, cycle_edges = _children_first(
        targets, [e for e in edges if e[0] != e[1]], breakable=nullable
    )
    to_null += [(child, cols) for child, _parent, cols in cycle_edges]
    return order, to_null


def _children_first(
    tables: list[str],
    edges: list[tuple[str, str, list[str]]],
    breakable: Callable[[tuple[str, str, list[str]]], bool],
) -> tuple[list[str], list[tuple[str, str, list[str]]]]:
    """Order tables so that every child comes before its parents; break cycles by dropping
    edges (nullable ones first), which are returned so the caller can unlink those rows first."""
    remaining = list(edges)
    removed: list[tuple[str, str, list[str]]] = []
    while True:
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for name in tables:
            sorter.add(name)
        for child, parent, _cols in remaining:
            sorter.add(parent, child)  # a parent waits for its children
        try:
            return list(sorter.static_order()), removed
        except graphlib.CycleError as error:
            cycle: list[Any] = error.args[1]
            # The cycle lists nodes n0, n1, ... where n1 waits for n0: child n0, parent n1.
            pairs = set(itertools.pairwise(cycle))
            in_cycle = [edge for edge in remaining if (edge[0], edge[1]) in pairs]
            if not in_cycle:  # pragma: no cover - graphlib reports a cycle made of our edges
                raise
            chosen = next((edge for edge in in_cycle if breakable(edge)), in_cycle[0])
            remaining.remove(chosen)
            removed.append(chosen)
