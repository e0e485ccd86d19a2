"""Loading relations onto parent rows: one statement per included relation, whatever the
number of parents.

For each relation the parents' key values are collected and deduplicated, and the related
rows of all of them are read at once:

- PostgreSQL binds the keys as one array parameter (``col = ANY(:keys)``; a composite key
  compares the key tuple with ``unnest`` of one array per column), so one statement serves
  any number of parents and its text never changes;
- SQLite and MySQL/MariaDB get an ``IN`` list (a tuple ``IN`` for a composite key), split
  into as few statements as their bind-parameter limits allow: one below the limit.

A per-parent ``limit`` numbers each parent's rows with ``ROW_NUMBER() OVER (PARTITION BY
key ORDER BY ...)`` in a subquery and keeps the first ``limit``; ``count`` groups by the key.
Every statement passes through the plugins' ``kysera_intercept_query`` (``"select"``, or
``"count"`` for counts, on the related table, with the call's options) before any wrapping,
so the plugins' filters apply before rows are numbered.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Final

import pydantic
import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from kysera.core import InvalidQueryError
from kysera.repository._include import IncludePlan
from kysera.repository.context import QueryOperation
from kysera.repository.validation import EntityBuilder, _to_kysera_error

__all__ = ["Intercept", "load_includes", "load_with"]

Intercept = Callable[[QueryOperation, sa.Table, Any], Any]
"""Passes a statement on a table through the plugins: (operation, table, statement)."""

_KEY_LABEL: Final = "kysera_parent_key_"
_RANK_LABEL: Final = "kysera_rank"
_COUNT_LABEL: Final = "kysera_count"

# Bind-parameter limits per dialect (SPEC §7): SQLite since 3.32 (999 before), MySQL and
# MariaDB's 16-bit parameter count. PostgreSQL binds arrays, so it has no list to split.
_SQLITE_LIMIT: Final = 32_766 if sqlite3.sqlite_version_info >= (3, 32) else 999
_BIND_LIMITS: Final = {"sqlite": _SQLITE_LIMIT, "mysql": 65_535, "mariadb": 65_535}
_DEFAULT_LIMIT: Final = 999
# Below this many key values no statement can come near a limit: skip counting parameters.
_SMALL: Final = 1_000


async def load_includes(
    connection: AsyncConnection,
    parents: Sequence[Any],
    plans: Sequence[IncludePlan],
    intercept: Intercept,
    *,
    validate: bool,
) -> None:
    """Load every planned relation (and its nested ones) onto ``parents``, in place.

    Parents without related rows get ``[]`` (lists), ``None`` (one row) or ``0`` (counts).
    """
    for plan in plans:
        await _load(connection, parents, plan, intercept, validate)


async def _load(
    connection: AsyncConnection,
    parents: Sequence[Any],
    plan: IncludePlan,
    intercept: Intercept,
    validate: bool,
) -> None:
    relation = plan.relation
    local = [column.key for column in relation.local]
    keys_of_parents = [_key_of(parent, local, plan) for parent in parents]
    distinct = list(dict.fromkeys(key for key in keys_of_parents if key is not None))
    empty: Any = 0 if plan.count else None
    if not distinct:
        for parent in parents:
            _assign(parent, plan.field, [] if relation.many and not plan.count else empty)
        return
    run = _Runner(connection, plan, intercept)
    if plan.count:
        counts: dict[tuple[Any, ...], int] = {}
        owners = _Owners(distinct)
        for rows in await run.chunks(distinct):
            for row, found_key in rows:
                owner = owners.of(found_key)
                if owner is not None:
                    counts[owner] = counts.get(owner, 0) + row[_COUNT_LABEL]
        for parent, key in zip(parents, keys_of_parents, strict=True):
            _assign(parent, plan.field, 0 if key is None else counts.get(key, 0))
        return
    grouped: dict[tuple[Any, ...], list[Any]] = {}
    children: list[Any] = []
    builder = _builder(relation.target, plan.model, validate)
    owners = _Owners(distinct)
    for rows in await run.chunks(distinct):
        try:
            built = builder.build_many([row for row, _key in rows])
        except pydantic.ValidationError as error:
            raise _to_kysera_error(relation.target, error) from None
        for child, (_row, found_key) in zip(built, rows, strict=True):
            owner = owners.of(found_key)
            if owner is not None:
                grouped.setdefault(owner, []).append(child)
        children.extend(built)
    for parent, key in zip(parents, keys_of_parents, strict=True):
        found = grouped.get(key, ()) if key is not None else ()
        if relation.many:
            _assign(parent, plan.field, list(found))
        else:
            _assign(parent, plan.field, found[0] if found else None)
    if plan.children and children:
        await load_includes(connection, children, plan.children, intercept, validate=validate)


class _Owners:
    """Files rows under the parent key the database matched them to.

    A case-insensitive collation (MySQL/MariaDB's default) or a PAD SPACE comparison matches
    ``'NL'`` to ``'nl '``: the related row comes back with its own spelling of the key, which
    equals no requested key in Python. Such a row belongs to the one requested key that is
    equal after folding case and trailing spaces. Where the database compares exactly, every
    row carries a requested key and this costs one set lookup per row.
    """

    __slots__ = ("_loose", "_requested", "_wanted")

    def __init__(self, requested: list[tuple[Any, ...]]) -> None:
        self._requested = requested
        self._wanted = set(requested)
        self._loose: dict[tuple[Any, ...], list[tuple[Any, ...]]] | None = None

    def of(self, key: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """The requested key ``key`` belongs to (``None``: none, or no single one)."""
        if key in self._wanted:
            return key
        if self._loose is None:
            self._loose = {}
            for requested in self._requested:
                self._loose.setdefault(_loose(requested), []).append(requested)
        candidates = self._loose.get(_loose(key), [])
        return candidates[0] if len(candidates) == 1 else None


def _loose(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(value.rstrip(" ").casefold() if isinstance(value, str) else value for value in key)


class _Runner:
    """Builds and runs the statement(s) of one relation for a list of parent keys."""

    def __init__(self, connection: AsyncConnection, plan: IncludePlan, intercept: Intercept):
        self.connection = connection
        self.plan = plan
        self.intercept = intercept
        self.dialect = connection.dialect
        relation = plan.relation
        self.match = relation.match
        self.width = len(relation.match)

    async def chunks(
        self, keys: list[tuple[Any, ...]]
    ) -> list[list[tuple[dict[str, Any], tuple[Any, ...]]]]:
        """The rows for ``keys`` as (row dict without the key labels, parent key) pairs."""
        if self.dialect.name == "postgresql":
            statement = self._statement(self._array_condition(keys))
            return [await self._run(statement)]
        parameter: Any = sa.bindparam("kysera_parent_keys", expanding=True)
        statement = self._statement(self._in_condition(parameter))
        size = self._chunk_size(statement, len(keys))
        found = []
        for start in range(0, len(keys), size):
            part = keys[start : start + size]
            values: list[Any] = part if self.width > 1 else [key[0] for key in part]
            found.append(await self._run(statement, {"kysera_parent_keys": values}))
        return found

    async def _run(
        self, statement: Any, params: dict[str, Any] | None = None
    ) -> list[tuple[dict[str, Any], tuple[Any, ...]]]:
        result = await self.connection.execute(statement, params)
        names = list(result.keys())
        labels = [f"{_KEY_LABEL}{index}" for index in range(self.width)]
        positions = [names.index(label) for label in labels]
        kept = [
            (index, name)
            for index, name in enumerate(names)
            if name not in labels and name != _RANK_LABEL
        ]
        return [
            (
                {name: row[index] for index, name in kept},
                tuple(row[position] for position in positions),
            )
            for row in result.all()
        ]

    def _array_condition(self, keys: list[tuple[Any, ...]]) -> sa.ColumnElement[bool]:
        """PostgreSQL: one array parameter per key column, whatever the number of keys."""
        columns = self.match
        if self.width == 1:
            column = columns[0]
            array = sa.bindparam(
                "kysera_parent_keys", [key[0] for key in keys], type_=sa.ARRAY(column.type)
            )
            return column == sa.any_(array)
        arrays = [
            sa.func.unnest(
                sa.bindparam(
                    f"kysera_parent_keys_{index}",
                    [key[index] for key in keys],
                    type_=sa.ARRAY(column.type),
                )
            )
            for index, column in enumerate(columns)
        ]
        return sa.tuple_(*columns).in_(sa.select(*arrays))

    def _in_condition(self, parameter: Any) -> sa.ColumnElement[bool]:
        if self.width == 1:
            return self.match[0].in_(parameter)
        return sa.tuple_(*self.match).in_(parameter)

    def _chunk_size(self, statement: Any, count: int) -> int:
        """How many keys fit in one statement under the dialect's bind-parameter limit."""
        limit = _BIND_LIMITS.get(self.dialect.name, _DEFAULT_LIMIT)
        if count * self.width <= min(_SMALL, limit // 2):
            return count
        compiled = statement.compile(dialect=self.dialect)
        other = 0
        for name, bind in compiled.binds.items():
            if name == "kysera_parent_keys":
                continue
            value = bind.effective_value
            other += len(value) if bind.expanding and value is not None else 1
        room = (limit - other) // self.width
        if room < 1:
            raise InvalidQueryError(
                f"loading {self.plan.relation.name!r}: the filters bind {other} parameters, "
                f"leaving no room for keys under the {self.dialect.name} limit of {limit}"
            )
        return max(1, min(count, room))

    def _statement(self, condition: sa.ColumnElement[bool]) -> Any:
        plan = self.plan
        relation = plan.relation
        target = relation.target
        labels = [column.label(f"{_KEY_LABEL}{index}") for index, column in enumerate(self.match)]
        source: Any = target
        if relation.through is not None:
            links = [
                link == key
                for link, key in zip(relation.through_target, relation.target_key, strict=True)
            ]
            # The join table's rows pass the plugins too (a soft-deleted or another tenant's
            # link pairs nothing): their conditions on it hold in the join.
            through_rows = self.intercept("select", relation.through, _rows_of(relation.through))
            if through_rows.whereclause is not None:
                links.append(through_rows.whereclause)
            source = target.join(relation.through, sa.and_(*links))
        if plan.count:
            statement: Any = (
                sa.select(*labels, sa.func.count().label(_COUNT_LABEL))
                .select_from(source)
                .where(condition)
                .group_by(*self.match)
            )
            if plan.where is not None:
                statement = statement.where(plan.where)
            return self.intercept("count", target, statement)
        # The primary key last: a total order, so lists (and the one row of a has_one) are
        # the same on every call.
        order = [*plan.order_by, *target.primary_key.columns]
        statement = sa.select(target, *labels).select_from(source).where(condition)
        if plan.where is not None:
            statement = statement.where(plan.where)
        if plan.limit is None:
            return self.intercept("select", target, statement.order_by(*order))
        rank = sa.func.row_number().over(partition_by=list(self.match), order_by=order)
        statement = self.intercept("select", target, statement.add_columns(rank.label(_RANK_LABEL)))
        numbered = statement.subquery("kysera_numbered")
        return (
            sa.select(numbered)
            .where(numbered.c[_RANK_LABEL] <= plan.limit)
            .order_by(*(numbered.c[label.name] for label in labels), numbered.c[_RANK_LABEL])
        )


# ``SELECT * FROM through`` per join table, the same statement every time, so plugins that
# keep their rewrite per statement (soft delete, RLS) build it once. Bounded: tables made per
# test (or per tenant schema) come and go.
_THROUGH_ROWS: dict[sa.Table, sa.Select[Any]] = {}
_THROUGH_ROWS_KEPT: Final = 256


def _rows_of(through: sa.Table) -> sa.Select[Any]:
    found = _THROUGH_ROWS.get(through)
    if found is None:
        if len(_THROUGH_ROWS) >= _THROUGH_ROWS_KEPT:
            _THROUGH_ROWS.clear()
        found = _THROUGH_ROWS[through] = sa.select(through)
    return found


def _key_of(parent: Any, names: list[str], plan: IncludePlan) -> tuple[Any, ...] | None:
    """The parent's key for the relation, or ``None`` when a key column is NULL."""
    try:
        if isinstance(parent, dict):
            values = tuple(parent[name] for name in names)
        else:
            values = tuple(getattr(parent, name) for name in names)
    except (KeyError, AttributeError):
        raise InvalidQueryError(
            f"cannot load {plan.relation.name!r}: the rows lack its key column(s) {names} "
            "(include them in columns=)"
        ) from None
    return None if any(value is None for value in values) else values


def _assign(parent: Any, field: str, value: Any) -> None:
    if isinstance(parent, dict):
        parent[field] = value
    elif isinstance(parent, BaseModel):
        # Straight into the instance: works for frozen models too, and skips assignment
        # validation (the value was built by the field's own model).
        parent.__dict__[field] = value
        parent.__pydantic_fields_set__.add(field)
    else:
        setattr(parent, field, value)


_BUILDERS: weakref.WeakKeyDictionary[
    sa.Table, dict[tuple[type[BaseModel] | None, bool], EntityBuilder]
] = weakref.WeakKeyDictionary()


def _builder(table: sa.Table, model: type[BaseModel] | None, validate: bool) -> EntityBuilder:
    per_table = _BUILDERS.get(table)
    if per_table is None:
        per_table = _BUILDERS[table] = {}
    found = per_table.get((model, validate))
    if found is None:
        found = per_table[(model, validate)] = EntityBuilder(table, model, validate=validate)
    return found


async def load_with(
    read: Callable[[Callable[[AsyncConnection], Awaitable[None]]], Awaitable[None]],
    parents: Iterable[Any],
    plans: Sequence[IncludePlan],
    intercept: Intercept,
    *,
    validate: bool,
) -> None:
    """Run `load_includes` through a repository's read runner (its connection rules)."""
    found = [parent for parent in parents if parent is not None]
    if not found or not plans:
        return

    async def work(connection: AsyncConnection) -> None:
        await load_includes(connection, found, plans, intercept, validate=validate)

    await read(work)
