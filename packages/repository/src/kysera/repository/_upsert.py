"""The parts of ``upsert_many`` that do not depend on plugins: checking and merging its rows,
and finding the stored rows again afterwards.

PostgreSQL and SQLite return the upserted rows (``ON CONFLICT ... RETURNING``); MySQL and
MariaDB (``ON DUPLICATE KEY UPDATE``) return nothing, so the rows are read back by conflict
key in the same transaction. Either way the database may hand a key back normalised
(case-insensitive collations, numeric types), so matching falls back to a loose comparison.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, Table, select, tuple_

from kysera.core import InvalidQueryError, NotFoundError
from kysera.repository._bulk_insert import RowGroups, group_by_columns
from kysera.repository.context import as_read_back

__all__ = ["UpsertPlan", "plan_upsert", "read_back", "returns_upserted_rows", "stored_row"]

StoredRows = dict[tuple[Any, ...], dict[str, Any]]
"""Rows as the database stored them, by conflict key."""


@dataclass(frozen=True, slots=True)
class UpsertPlan:
    """What ``upsert_many`` sends, decided before it touches the database.

    Attributes:
        conflict: The conflict columns.
        update: The columns to overwrite on conflict, or ``None`` for "every inserted column
            except the conflict columns" (decided per group, by the repository's hook).
        keys: The distinct conflict keys, in input order: one returned row each.
        groups: The rows to send (one per key, the last given wins), grouped by columns.
    """

    conflict: tuple[str, ...]
    update: tuple[str, ...] | None
    keys: list[tuple[Any, ...]]
    groups: RowGroups

    def key_of(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        """The conflict key of ``row``."""
        return tuple(row[name] for name in self.conflict)

    def collect(self, found: StoredRows, rows: Iterable[Row[Any]]) -> None:
        """Add ``rows`` (as the database returned them) to ``found``, by conflict key."""
        for row in rows:
            mapping = row._asdict()
            found[self.key_of(mapping)] = mapping


def plan_upsert(
    table: Table,
    primary_key: tuple[str, ...],
    rows: Sequence[dict[str, Any]],
    conflict: Sequence[str] | None,
    update: Sequence[str] | None,
) -> UpsertPlan:
    """Check the conflict and update columns against ``table`` and ``rows``, and merge rows
    repeating a conflict key (a single native upsert may not touch one row twice on
    PostgreSQL).

    Raises:
        InvalidQueryError: Unknown conflict/update column, or a row without a value for a
            conflict column.
    """
    conflict_names, update_names = _upsert_columns(table, primary_key, rows, conflict, update)
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        merged[tuple(row[name] for name in conflict_names)] = row
    return UpsertPlan(
        conflict=conflict_names,
        update=update_names,
        keys=list(merged),
        groups=group_by_columns(list(merged.values())),
    )


def _upsert_columns(
    table: Table,
    primary_key: tuple[str, ...],
    rows: Sequence[Mapping[str, Any]],
    conflict: Sequence[str] | None,
    update_columns: Sequence[str] | None,
) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    names = table.columns
    if isinstance(conflict, str):
        conflict = [conflict]
    conflict_names = tuple(conflict) if conflict else primary_key
    for name in conflict_names:
        if not isinstance(name, str) or name not in names:
            raise InvalidQueryError(
                f"unknown conflict column {name!r} of {table.name!r}; "
                f"columns are {sorted(names.keys())}"
            )
    for index, row in enumerate(rows):
        absent = [name for name in conflict_names if name not in row]
        if absent:
            raise InvalidQueryError(
                f"upsert needs a value for every conflict column {list(conflict_names)}; "
                f"row {index} has none for {absent}"
            )
    chosen: tuple[str, ...] | None = None
    if update_columns is not None:
        if isinstance(update_columns, str):
            update_columns = [update_columns]
        chosen = tuple(update_columns)
        for name in chosen:
            if not isinstance(name, str) or name not in names:
                raise InvalidQueryError(
                    f"unknown update column {name!r} of {table.name!r}; "
                    f"columns are {sorted(names.keys())}"
                )
    return conflict_names, chosen


def returns_upserted_rows(dialect: str) -> bool:
    """Whether the upsert statement itself returns the stored rows on ``dialect``."""
    return dialect in ("postgresql", "sqlite")


def read_back(table: Table, plan: UpsertPlan) -> Select[Any]:
    """The ``SELECT`` of the upserted rows where the upsert returned none (MySQL/MariaDB).

    Run in the upsert's transaction: its row locks hold the rows as written until commit.
    Marked with `as_read_back`, so that hiding plugins let it through.
    """
    conflict_columns = [table.c[name] for name in plan.conflict]
    condition: ColumnElement[bool] = (
        conflict_columns[0].in_([key[0] for key in plan.keys])
        if len(conflict_columns) == 1
        else tuple_(*conflict_columns).in_(plan.keys)
    )
    return as_read_back(select(table).where(condition))


def stored_row(found: StoredRows, key: tuple[Any, ...]) -> dict[str, Any]:
    """The stored row of conflict key ``key``, as given or as the database normalised it.

    Raises:
        NotFoundError: No stored row has this key, even compared loosely.
    """
    row = found.get(key)
    if row is None:
        row = _lookup_loose(found, key)
    return row


def _lookup_loose(
    rows: Mapping[tuple[Any, ...], dict[str, Any]], key: tuple[Any, ...]
) -> dict[str, Any]:
    """Find a row whose key the database normalised (case-insensitive collation, numeric
    types): compare as strings, case-insensitively."""
    wanted = tuple(str(part).casefold() for part in key)
    for found_key, row in rows.items():
        if tuple(str(part).casefold() for part in found_key) == wanted:
            return row
    raise NotFoundError(entity="upserted row", filters=key)
