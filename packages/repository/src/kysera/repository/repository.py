"""The repository: CRUD, bulk writes and native upserts over one plain SQLAlchemy table.

Who commits (SPEC §0): a repository created on an `AsyncEngine` runs every write in a
transaction of its own and commits it; on an `AsyncConnection` (or inside
``orm.transaction()``) it runs in the caller's transaction and never commits. Reads never
open a transaction of their own.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Generic, Literal, NoReturn, TypeVar, overload

import pydantic
from pydantic import BaseModel
from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.base import Executable

from kysera.core import (
    BadRequestError,
    CursorPage,
    InvalidQueryError,
    NotFoundError,
    OffsetPage,
    classify_database_errors,
    guard_engine,
    paginate,
    paginate_cursor,
)
from kysera.core._affected_rows import affected_rows
from kysera.core._direct import fetch_all, fetch_first
from kysera.repository._bulk_insert import (
    group_by_columns,
    insert_counting,
    insert_many_returning,
    insert_one_by_one,
    returns_inserted_rows,
)
from kysera.repository._bulk_update import plan_bulk_update
from kysera.repository._call_options import call_with_options, current_options
from kysera.repository._counters import (
    check_deltas,
    expected_condition,
    increment_params,
    increment_values,
    split_increment,
)
from kysera.repository._execution import Work, autocommit_engine, run_read, run_unit, run_write
from kysera.repository._include import IncludePlan, plan_includes
from kysera.repository._keys import IDS_PARAM
from kysera.repository._loading import load_with
from kysera.repository._queries import (
    exists_of,
)
from kysera.repository._shapes import count_and_params, exists_and_params, select_and_params
from kysera.repository._statements import statements_of
from kysera.repository._upsert import plan_upsert, read_back, returns_upserted_rows, stored_row
from kysera.repository.context import QueryContext, QueryOperation
from kysera.repository.errors import ConflictError
from kysera.repository.ordering import compile_order_by
from kysera.repository.transaction import _ACTIVE
from kysera.repository.validation import (
    EntityBuilder,
    InputValidator,
    _to_kysera_error,
    default_validate_results,
    partial_model,
)
from kysera.repository.where import compile_where

if TYPE_CHECKING:
    from kysera.repository.orm import Orm
    from kysera.repository.registry import PluginRegistry

__all__ = ["Executor", "Repository"]


def _no_relations(table: Table) -> Mapping[str, Any]:
    """Repositories without an ORM have no relations."""
    return {}


Executor = AsyncEngine | AsyncConnection
"""Where a repository runs its statements: an engine (own transactions) or a connection."""

EntityT = TypeVar("EntityT")
_T = TypeVar("_T")


class Repository(Generic[EntityT]):
    """Reads and writes one table, returning ``entity`` instances (or dicts without one).

    Create repositories with `Orm.repository` (plugins and ``orm.transaction()`` included)
    or `create_repository` (no ORM). Every method accepts per-call keyword ``options``
    (for example ``include_deleted=True``), which plugins read: interceptors in
    `QueryContext.options`, mixins' preparation hooks in `call_options`.

    Args:
        executor: An `AsyncEngine` (each write commits its own transaction) or an
            `AsyncConnection` (the caller's transaction; never committed here).
        table: The table; composite primary keys are supported.
        entity: Pydantic model for rows; ``None`` returns plain dicts.
        create: Pydantic model validating `create`/`create_many`/`upsert` input; ``None``
            accepts dicts whose keys are columns.
        update: Pydantic model validating `update`/`update_many`/`bulk_update` input;
            defaults to an all-optional copy of ``create``.
        validate_results: Validate rows with ``entity`` (``True``) or trust the database
            (``False``); defaults to ``KYSERA_VALIDATION_MODE`` (``always`` when unset).
        orm: The ORM this repository belongs to (its transactions and plugins).

    Raises:
        BadRequestError: A column of ``table`` has a ``key`` other than its name (not
            supported: rows come back keyed by name).

    Attributes:
        table: The table.
        entity: The entity model, or ``None``.
        create_model: The create model, or ``None``.
        update_model: The update model, or ``None``.
        primary_key: The names of the primary key columns, in order.
        orm: The owning ORM, or ``None``.
        registry: The ORM's plugin registry, or ``None``.
        validate_results: Whether rows are validated.
    """

    table: Table
    entity: type[BaseModel] | None
    create_model: type[BaseModel] | None
    update_model: type[BaseModel] | None
    orm: Orm | None
    registry: PluginRegistry | None
    validate_results: bool

    def __init__(
        self,
        executor: Executor,
        table: Table,
        *,
        entity: type[BaseModel] | None = None,
        create: type[BaseModel] | None = None,
        update: type[BaseModel] | None = None,
        validate_results: bool | None = None,
        orm: Orm | None = None,
    ) -> None:
        if not isinstance(executor, (AsyncEngine, AsyncConnection)):
            raise TypeError(
                f"executor must be an AsyncEngine or AsyncConnection, not {type(executor).__name__}"
            )
        if not isinstance(table, Table):
            raise TypeError(f"table must be a sqlalchemy.Table, not {type(table).__name__}")
        renamed = [column for column in table.columns if column.key != column.name]
        if renamed:
            # Rows come back keyed by column name, values go in by key: the two must agree.
            raise BadRequestError(
                f"table {table.name!r}: columns whose key differs from their name are not "
                f"supported ({', '.join(f'{c.name!r} as {c.key!r}' for c in renamed)}); "
                f"declare them without key="
            )
        self.table = table
        self.entity = entity
        self.create_model = create
        if update is None and create is not None:
            update = partial_model(create)
        self.update_model = update
        self.orm = orm
        self.registry = orm.registry if orm is not None else None
        self.validate_results = (
            default_validate_results() if validate_results is None else validate_results
        )
        self._statements = statements_of(table)
        self._key = self._statements.key
        self.primary_key: tuple[str, ...] = self._key.names
        self._create = InputValidator(table, create, partial=False)
        self._update = InputValidator(table, update, partial=True)
        self._entities = EntityBuilder(table, entity, validate=self.validate_results)
        self._build = self._entities.build
        self._build_many = self._entities.build_many
        self._binding: object | None = orm.binding if orm is not None else None
        self._intercepts = self.registry is not None and self.registry.intercepts
        self._bound: AsyncConnection | None
        self._engine: AsyncEngine | None
        if isinstance(executor, AsyncConnection):
            self._bound = executor
            self._engine = None
            guard_engine(executor.engine)
        else:
            self._bound = None
            self._engine = guard_engine(executor)
        self._single: AsyncEngine | None = (
            None if self._engine is None else autocommit_engine(self._engine)
        )

    # --- plumbing (also the API for plugin mixins) ------------------------------------------

    @property
    def executor(self) -> Executor:
        """Where the next statement runs: the bound connection, the ORM's open transaction,
        or the engine."""
        return self._connection() or self._engine  # type: ignore[return-value]

    def key_values(self, id: Any) -> tuple[Any, ...]:
        """Return the column values of the primary key ``id``, in key column order.

        Raises:
            InvalidQueryError: The key has the wrong shape for this table.
        """
        return self._key.values(id)

    def key_condition(self, id: Any) -> ColumnElement[bool]:
        """Return a condition matching the row whose primary key is ``id``.

        For statements built per call, such as a plugin mixin's own methods. ``id`` takes the
        shapes every method accepts: a bare value, or a tuple / dict for a composite key.

        Raises:
            InvalidQueryError: The key has the wrong shape for this table.
        """
        return self._key.where_values(self._key.values(id))

    def keys_condition(self, ids: Iterable[Any]) -> ColumnElement[bool]:
        """Return a condition matching the rows whose primary keys are in ``ids``.

        A tuple comparison for a composite key; matches nothing when ``ids`` is empty.

        Raises:
            InvalidQueryError: A key has the wrong shape for this table.
        """
        return self._key.where_keys(ids)

    def with_executor(self, executor: Executor) -> Repository[EntityT]:
        """Return this repository (same class, plugins and models) bound to ``executor``.

        Given a connection, every statement runs on it, in the caller's transaction.
        """
        clone = copy.copy(self)
        clone._write_savepoints = True
        if isinstance(executor, AsyncConnection):
            clone._bound, clone._engine = executor, None
            guard_engine(executor.engine)
            clone._single = None
        elif isinstance(executor, AsyncEngine):
            clone._bound, clone._engine = None, guard_engine(executor)
            clone._single = autocommit_engine(executor)
        else:
            raise TypeError(
                f"executor must be an AsyncEngine or AsyncConnection, not {type(executor).__name__}"
            )
        return clone

    def _dialect_name(self) -> str:
        executor = self._bound if self._bound is not None else self._engine
        assert executor is not None
        return executor.dialect.name

    def _connection(self) -> AsyncConnection | None:
        if self._bound is not None:
            return self._bound
        if self._binding is not None:
            return _ACTIVE.get().get(self._binding)
        return None

    def intercept(
        self, operation: QueryOperation, statement: Executable, options: Mapping[str, Any]
    ) -> Any:
        """Pass a statement through the plugins' ``kysera_intercept_query``, in order.

        Plugin mixins building their own statements call this too, so that other plugins
        (tenant scoping, soft delete) still apply.
        """
        if not self._intercepts:
            return statement
        assert self.registry is not None
        return self.registry.intercept(QueryContext(operation, self.table, statement, options))

    def to_entity(self, row: Mapping[str, Any]) -> EntityT:
        """Build the returned object from a row (validated or trusted, per
        ``validate_results``)."""
        try:
            result: EntityT = self._build(dict(row))
        except pydantic.ValidationError as error:
            raise _to_kysera_error(self.table, error) from None
        return result

    def _entities_fetched(
        self, fetched: tuple[Sequence[Sequence[Any]], tuple[str, ...]]
    ) -> list[EntityT]:
        rows, keys = fetched
        return self._entities_from([dict(zip(keys, row, strict=True)) for row in rows])

    def _entities_from(self, rows: list[dict[str, Any]]) -> list[EntityT]:
        try:
            return self._build_many(rows)
        except pydantic.ValidationError as error:
            raise _to_kysera_error(self.table, error) from None

    async def _read(self, work: Work[_T]) -> _T:
        return await run_read(work, self._connection(), self._single)

    async def _write(self, work: Work[_T], *, single: bool = False, savepoint: bool = False) -> _T:
        """Run ``work`` in the caller's transaction, or in one of its own (see `run_write`).

        ``savepoint`` puts even a single statement in a SAVEPOINT on the caller's connection.
        """
        return await run_write(
            work,
            self._connection(),
            self._engine,
            self._single,
            # Inside a unit without savepoints, every write is as one statement would be.
            single=single or not self._write_savepoints,
            in_savepoint=savepoint,
        )

    # Whether a multi-statement write on a caller's connection runs in a SAVEPOINT of its
    # own (see `atomic`'s ``savepoints``).
    _write_savepoints = True

    @asynccontextmanager
    async def atomic(self, *, savepoints: bool = True) -> AsyncIterator[Repository[EntityT]]:
        """Run several operations as one unit: ``async with repo.atomic() as tx_repo:``.

        Yields this repository bound to a connection inside a transaction: a new one that
        commits at the end on an engine, a SAVEPOINT inside the caller's transaction
        otherwise. An exception rolls the block back. Plugin mixins use it to write their
        own rows (audit logs) in the same transaction as the change.

        Args:
            savepoints: Whether a write of several statements through the yielded
                repository runs in a SAVEPOINT of its own, so that the block can catch its
                failure and go on (PostgreSQL otherwise aborts the transaction). ``False``
                saves two round trips per such write, for blocks that let every error
                propagate (as plugin mixins recording a write do).
        """
        async with run_unit(self._connection(), self._engine) as connection:
            bound = self.with_executor(connection)
            if not savepoints:
                bound._write_savepoints = False
            yield bound

    def _where(self, where: Any) -> ColumnElement[bool] | None:
        return compile_where(self.table, where)

    def _select(
        self,
        where: Any = None,
        order_by: Any = None,
        limit: int | None = None,
        offset: int | None = None,
        columns: Sequence[str] | None = None,
    ) -> tuple[Select[Any], dict[str, Any] | None]:
        """The SELECT of these arguments and its parameters: the same statement for every
        call of a read shape (see ``_shapes``), else one built for this call."""
        return select_and_params(
            self._statements, self._dialect_name(), where, order_by, limit, offset, columns
        )

    @property
    def call_options(self) -> Mapping[str, Any]:
        """The per-call keyword options of the call whose values are being prepared.

        Read it in `prepare_insert`, `prepare_update` and `upsert_update_columns`:
        ``repo.create(data, actor="ada")`` shows ``{"actor": "ada"}`` there. The hooks keep
        their one-argument signatures (a mixin written before options reached them still
        works, and still passes them on through ``super()``); the options travel beside
        the hook chain, for as long as it runs. Elsewhere the mapping is empty. Read-only.
        """
        return current_options()

    def prepared_insert(
        self, rows: list[dict[str, Any]], options: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """Return ``rows`` as `prepare_insert` leaves them, for a call made with ``options``.

        Every insert path prepares its rows through this method; a plugin mixin that
        inserts rows of its own calls it too, so that the other mixins see its options in
        `call_options`.
        """
        return call_with_options(self.prepare_insert, rows, options)

    def prepared_update(self, values: dict[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
        """Return ``values`` as `prepare_update` leaves them, for a call made with ``options``.

        Every update path prepares its values through this method; a plugin mixin that
        updates rows itself (a soft delete, say) calls it too, so that the other mixins see
        its options (``timestamps=False``, say) in `call_options`.
        """
        return call_with_options(self.prepare_update, values, options)

    def prepare_insert(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Hook for plugin mixins: adjust validated rows before they are inserted.

        Called by every insert path (`create`, `create_many`, `upsert`, `upsert_many`) after
        validation, through `prepared_insert`; the call's options are in `call_options`.
        Overrides call ``super().prepare_insert(rows)`` and return the result. The base
        implementation returns ``rows`` unchanged.
        """
        return rows

    def prepare_update(self, values: dict[str, Any]) -> dict[str, Any]:
        """Hook for plugin mixins: adjust validated values before an update writes them.

        Called by every update path (`update`, `update_many`, `bulk_update`) after
        validation, through `prepared_update`; the call's options are in `call_options`.
        Overrides call ``super().prepare_update(values)`` and return the result. The base
        implementation returns ``values`` unchanged.
        `increment` / `increment_many` pass their deltas here as SQL expressions
        (``column + delta``).
        """
        return values

    def upsert_update_columns(self, columns: tuple[str, ...]) -> tuple[str, ...]:
        """Hook for plugin mixins: the columns an upsert overwrites on conflict by default.

        Called when the caller gave no ``update=``, once per set of inserted columns, with
        every inserted column except the conflict columns (after `prepare_insert`); the
        call's options are in `call_options`. Drop a column here to keep an existing row's
        value (a creation time, the user who created the row). An explicit ``update=[...]``
        is the caller's choice and is used as given, without this hook. The base
        implementation returns ``columns``.
        """
        return columns

    # --- relations (loading lives in _include and _loading) ----------------------------------

    def _plan_includes(self, include: Any) -> tuple[IncludePlan, ...]:
        """Check an ``include=`` spec before the read runs (``()`` for ``None``)."""
        if include is None:
            return ()
        relations_of = self.orm.relations.of if self.orm is not None else _no_relations
        return plan_includes(relations_of, self.table, self.entity, include)

    async def _load_plans(
        self, parents: Iterable[Any], plans: tuple[IncludePlan, ...], options: Mapping[str, Any]
    ) -> None:
        if not plans:
            return

        def intercept(operation: QueryOperation, table: Table, statement: Any) -> Any:
            if not self._intercepts:
                return statement
            assert self.registry is not None
            return self.registry.intercept(QueryContext(operation, table, statement, options))

        await load_with(self._read, parents, plans, intercept, validate=self.validate_results)

    async def load(self, entities: Any, include: Any, **options: Any) -> Any:
        """Load relations onto entities read earlier; return ``entities``.

        ``await authors.load(rows, "books")`` or ``await authors.load(rows, {"books":
        {"limit": 3}})``: the same spec and the same statements as ``include=`` (one per
        relation and level, whatever the number of entities), on the entities (or dicts)
        given, in place.

        Args:
            entities: A list of this repository's entities (or dicts), or one of them.
            include: A relation name, a list of names or a dict of names to options.
            **options: Per-call options for plugins (``include_deleted=True``).

        Raises:
            InvalidQueryError: Unknown relation or option, or a field missing from the
                entity model.
        """
        plans = self._plan_includes(include)
        if entities is None:
            return None
        parents = entities if isinstance(entities, (list, tuple)) else [entities]
        await self._load_plans(parents, plans, options)
        return entities

    # --- reads ------------------------------------------------------------------------------

    async def find_by_id(self, id: Any, *, include: Any = None, **options: Any) -> EntityT | None:
        """Return the row with this primary key, or ``None``.

        Args:
            id: The key: a value, or a tuple / dict for a composite key.
            include: Relations to load onto the row (see docs/relations.md).
            **options: Per-call options for plugins.
        """
        params = self._key.params(id)
        plans = self._plan_includes(include) if include is not None else ()
        statement = self._statements.by_id
        if self._intercepts:
            statement = self.intercept("select", statement, options)
        with classify_database_errors():
            connection = self._bound
            if connection is None and self._binding is not None:
                connection = _ACTIVE.get().get(self._binding)
            if connection is not None:
                row, keys = await fetch_first(connection, statement, params)
            else:
                assert self._single is not None
                async with self._single.connect() as connection:
                    row, keys = await fetch_first(connection, statement, params)
        if row is None:
            return None
        try:
            entity: EntityT = self._build(dict(zip(keys, row, strict=True)))
        except pydantic.ValidationError as error:
            raise _to_kysera_error(self.table, error) from None
        if plans:
            await self._load_plans([entity], plans, options)
        return entity

    async def get(self, id: Any, *, include: Any = None, **options: Any) -> EntityT:
        """Return the row with this primary key (``include=`` as for `find_by_id`).

        Raises:
            NotFoundError: No such row.
        """
        found = await self.find_by_id(id, include=include, **options)
        if found is None:
            raise NotFoundError(entity=self.table.name, filters=id)
        return found

    async def find_by_ids(
        self, ids: Iterable[Any], *, include: Any = None, **options: Any
    ) -> list[EntityT]:
        """Return the rows with these keys (in no particular order); no query for ``[]``.

        ``include=`` loads relations onto the rows (see docs/relations.md)."""
        keys = self._key.key_list(ids)
        plans = self._plan_includes(include) if include is not None else ()
        if not keys:
            return []
        key = self._key
        params = key.ids_params(keys)
        statement = self.intercept("select", self._statements.by_ids, options)

        async def work(connection: AsyncConnection) -> list[EntityT]:
            batches = key.batches(params[IDS_PARAM], connection.dialect.name)
            if len(batches) == 1:
                return self._entities_fetched(await fetch_all(connection, statement, params))
            found: list[EntityT] = []
            for batch in batches:  # no dialect's bind-parameter limit is reached
                fetched = await fetch_all(connection, statement, key.batch_params(batch))
                found += self._entities_fetched(fetched)
            return found

        found = await self._read(work)
        if plans:
            await self._load_plans(found, plans, options)
        return found

    async def find_all(
        self,
        order_by: Any = None,
        limit: int | None = None,
        offset: int | None = None,
        *,
        include: Any = None,
        **options: Any,
    ) -> list[EntityT]:
        """Return every row (optionally ordered and sliced; ``include=`` as for `find`)."""
        return await self.find(
            None, order_by=order_by, limit=limit, offset=offset, include=include, **options
        )

    async def find(
        self,
        where: Any = None,
        order_by: Any = None,
        limit: int | None = None,
        offset: int | None = None,
        columns: Sequence[str] | None = None,
        *,
        include: Any = None,
        **options: Any,
    ) -> list[Any]:
        """Return the rows matching ``where``.

        Args:
            where: A where-dict (see docs/where.md) or a SQLAlchemy boolean expression.
            order_by: ``"col"``, ``"-col"``, ``("col", "desc")``, an expression, or a list.
            limit: At most this many rows.
            offset: Skip this many rows.
            columns: Only these columns; rows are then returned as dicts, not entities.
            include: Relations to load onto the rows: a name, a list of names, or a dict of
                names to options (``where``, ``order_by``, ``limit`` per parent, ``count``,
                nested ``include``); one statement per relation and level, whatever the
                number of rows (see docs/relations.md).
            **options: Per-call options for plugins.

        Raises:
            InvalidQueryError: Unknown column or operator, bad limit or offset, unknown
                relation or include option.
        """
        plans = self._plan_includes(include) if include is not None else ()
        built, params = self._select(where, order_by, limit, offset, columns)
        statement = self.intercept("select", built, options)

        async def work(connection: AsyncConnection) -> list[Any]:
            fetched = await fetch_all(connection, statement, params)
            if columns is not None:
                rows, keys = fetched
                return [dict(zip(keys, row, strict=True)) for row in rows]
            return self._entities_fetched(fetched)

        found = await self._read(work)
        if plans:
            await self._load_plans(found, plans, options)
        return found

    async def find_one(
        self, where: Any = None, *, include: Any = None, **options: Any
    ) -> EntityT | None:
        """Return one row matching ``where`` (``LIMIT 1``), or ``None``; ``include=`` as for
        `find`."""
        found: list[EntityT] = await self.find(where, limit=1, include=include, **options)
        return found[0] if found else None

    def _count_statement(
        self, where: Any, options: Mapping[str, Any]
    ) -> tuple[Any, dict[str, Any] | None]:
        """The (intercepted) count of ``where`` and its parameters."""
        built, params = count_and_params(self._statements, self._dialect_name(), where)
        return self.intercept("count", built, options), params

    async def count(self, where: Any = None, **options: Any) -> int:
        """Return the number of rows matching ``where``."""
        statement, params = self._count_statement(where, options)

        async def work(connection: AsyncConnection) -> int:
            row, _ = await fetch_first(connection, statement, params)
            assert row is not None  # an aggregate without GROUP BY returns one row
            return int(row[0])

        return await self._read(work)

    async def exists(self, where: Any = None, **options: Any) -> bool:
        """Tell whether any row matches ``where`` (``SELECT EXISTS (...)``)."""
        built, params = exists_and_params(self._statements, self._dialect_name(), where)
        statement = exists_of(self.intercept("count", built, options))

        async def work(connection: AsyncConnection) -> bool:
            row, _ = await fetch_first(connection, statement, params)
            assert row is not None
            return bool(row[0])

        return await self._read(work)

    async def find_and_count(
        self,
        where: Any = None,
        order_by: Any = None,
        limit: int | None = None,
        offset: int | None = None,
        *,
        include: Any = None,
        **options: Any,
    ) -> tuple[list[EntityT], int]:
        """Return ``(rows, total)``: a slice of the matching rows and how many match in all.

        ``include=`` loads relations onto the rows (as for `find`)."""
        plans = self._plan_includes(include) if include is not None else ()
        rows_statement, rows_params = self._select(where, order_by, limit, offset)
        rows_statement = self.intercept("select", rows_statement, options)
        count_statement, count_params = self._count_statement(where, options)

        async def work(connection: AsyncConnection) -> tuple[list[EntityT], int]:
            items = self._entities_fetched(await fetch_all(connection, rows_statement, rows_params))
            row, _ = await fetch_first(connection, count_statement, count_params)
            assert row is not None
            return items, int(row[0])

        found = await self._read(work)
        if plans:
            await self._load_plans(found[0], plans, options)
        return found

    # --- pagination -------------------------------------------------------------------------

    def _row_to_entity(self, row: dict[str, Any]) -> EntityT:
        try:
            entity: EntityT = self._build(row)
        except pydantic.ValidationError as error:
            raise _to_kysera_error(self.table, error) from None
        return entity

    async def paginate(
        self,
        page: int = 1,
        limit: int = 20,
        where: Any = None,
        order_by: Any = None,
        *,
        include: Any = None,
        **options: Any,
    ) -> OffsetPage[EntityT]:
        """Return one page of the matching rows, with the total count (offset paging).

        Without ``order_by`` the rows are ordered by primary key, so pages are stable.
        ``include=`` loads relations onto the page's rows (as for `find`).

        Raises:
            InvalidQueryError: ``page < 1``, ``limit`` outside 1..1000, or a bad
                ``where``/``order_by``.
        """
        plans = self._plan_includes(include) if include is not None else ()
        statement, params = self._select(where, self._key.names if order_by is None else order_by)
        statement = self.intercept("select", statement, options)

        async def work(connection: AsyncConnection) -> OffsetPage[EntityT]:
            found: OffsetPage[Any] = await paginate(
                connection, statement, page=page, limit=limit, parameters=params
            )
            # Entities built from the whole page at once (one validation call, not one per
            # row), as `find` builds them.
            return replace(found, items=self._entities_from(found.items))

        found = await self._read(work)
        if plans:
            await self._load_plans(found.items, plans, options)
        return found

    async def paginate_cursor(
        self,
        limit: int = 20,
        after: str | None = None,
        before: str | None = None,
        where: Any = None,
        order_by: Any = None,
        *,
        secret: str | bytes | None = None,
        unique: bool = False,
        include: Any = None,
        **options: Any,
    ) -> CursorPage[EntityT]:
        """Return the page after (or before) a cursor, in keyset order.

        Cost does not grow with depth (see kysera.core.paginate_cursor). The primary key is
        appended to ``order_by`` (default: the primary key) so the order is unique; a table
        without one (a view) is refused unless ``unique=True`` asserts that ``order_by``
        identifies a row. ``include=`` loads relations onto the page's rows (as for `find`).

        Raises:
            InvalidCursorError: The cursor is garbage, tampered with (with ``secret``) or
                from another ordering.
            InvalidQueryError: Bad ``limit``, ``where`` or ``order_by``.
        """
        plans = self._plan_includes(include) if include is not None else ()
        clauses = compile_order_by(self.table, self._key.names if order_by is None else order_by)
        statement, params = self._select(where)
        statement = self.intercept("select", statement, options)

        async def work(connection: AsyncConnection) -> CursorPage[EntityT]:
            found: CursorPage[Any] = await paginate_cursor(
                connection,
                statement,
                order_by=clauses,
                limit=limit,
                after=after,
                before=before,
                secret=secret,
                unique=unique,
                parameters=params,
            )
            return replace(found, items=self._entities_from(found.items))

        found = await self._read(work)
        if plans:
            await self._load_plans(found.items, plans, options)
        return found

    # --- inserts ----------------------------------------------------------------------------

    async def create(self, data: Any, *, savepoint: bool = False, **options: Any) -> EntityT:
        """Validate ``data`` and insert one row; return it as stored (defaults included).

        One ``INSERT ... RETURNING`` where the database has it; elsewhere (MySQL) the
        insert and a re-select by the new key, in one transaction.

        Args:
            data: The row (a mapping or a create-model instance).
            savepoint: Inside the caller's transaction, run the write in a SAVEPOINT, so
                that its failure (a unique violation, say) leaves the transaction usable
                (PostgreSQL otherwise aborts it). Ignored on an engine: the write has a
                transaction of its own.
            **options: Per-call options for plugins.

        Raises:
            ValidationError: ``data`` is invalid; nothing is written.
            DatabaseError: The database refused the row (for example
                `UniqueConstraintError`).
        """
        values = self.prepared_insert([self._create.one(data)], options)[0]
        statements = self._statements

        async def work(connection: AsyncConnection) -> EntityT:
            if connection.dialect.insert_returning:
                statement = self.intercept("insert", statements.insert_returning, options)
                row, keys = await fetch_first(connection, statement, values)
                if row is None:  # pragma: no cover - INSERT ... RETURNING returns its row
                    raise NotFoundError(entity=self.table.name, filters=values)
                return self._row_to_entity(dict(zip(keys, row, strict=True)))
            statement = self.intercept("insert", statements.insert, options)
            result = await connection.execute(statement, values)
            key = tuple(result.inserted_primary_key or ())
            found: list[EntityT] = await self._reselect_keys(connection, [key], options)
            return found[0]

        return await self._write(work, single=True, savepoint=savepoint)

    async def _reselect_keys(
        self, connection: AsyncConnection, keys: Sequence[Any], options: Mapping[str, Any]
    ) -> list[EntityT]:
        """Read rows back by key after a write that could not return them, in key order.

        The SELECT is marked as a read-back (`QueryContext.read_back`): a plugin that hides
        rows lets it find the rows just written.
        """
        statement = self.intercept("select", self._statements.read_back_by_ids, options)
        values = self._key.ids_params(keys)[IDS_PARAM]
        rows = {}
        for batch in self._key.batches(values, connection.dialect.name):
            result = await connection.execute(statement, self._key.batch_params(batch))
            rows.update({self._key.of_row(row._asdict()): row._asdict() for row in result})
        loose: dict[tuple[str, ...], dict[str, Any]] | None = None
        found = []
        for key in keys:
            row = rows.get(self._key.normalize(key))
            if row is None:
                # The database matched the key its own way (a case-insensitive collation,
                # trailing spaces): the row it matched has the key as stored.
                if loose is None:
                    loose = {self._key.loose(stored): row for stored, row in rows.items()}
                row = loose.get(self._key.loose(key))
            if row is None:
                raise NotFoundError(entity=self.table.name, filters=key)
            found.append(self.to_entity(row))
        return found

    @overload
    async def create_many(
        self,
        rows: Iterable[Any],
        *,
        returning: Literal[True] = True,
        savepoint: bool = False,
        **options: Any,
    ) -> list[EntityT]: ...

    @overload
    async def create_many(
        self,
        rows: Iterable[Any],
        *,
        returning: Literal[False],
        savepoint: bool = False,
        **options: Any,
    ) -> int: ...

    async def create_many(
        self,
        rows: Iterable[Any],
        *,
        returning: bool = True,
        savepoint: bool = False,
        **options: Any,
    ) -> list[EntityT] | int:
        """Validate every row, then insert them all in one transaction.

        Rows go in as one ``INSERT ... RETURNING`` per set of columns the rows set: on
        PostgreSQL one statement carrying each column as an array (``unnest``), whatever the
        number of rows, where the column types and the key allow; otherwise SQLAlchemy's
        multi-row VALUES batches (MySQL 8: row by row, then one re-select).

        Args:
            rows: The rows (mappings or create-model instances).
            returning: ``False`` skips RETURNING and returns the number of rows inserted:
                the fastest bulk path. On PostgreSQL (asyncpg) batches of 500 rows or more
                go in through ``COPY`` when no plugin changed the INSERT statement (COPY is
                not a SQL statement: SQL capture and cursor events don't see it); otherwise
                a plain executemany.
            savepoint: Accepted for symmetry with the other writes: a bulk insert always
                runs in a SAVEPOINT inside the caller's transaction.
            **options: Per-call options for plugins.

        Returns:
            The inserted rows as entities, in input order (or their number).

        Raises:
            ValidationError: Any row is invalid; nothing is written.
        """
        values = self.prepared_insert(self._create.many(rows), options)
        if not values:
            return [] if returning else 0
        groups = group_by_columns(values)
        count = len(values)
        statements = self._statements

        async def insert_only(connection: AsyncConnection) -> int:
            statement = self.intercept("insert", statements.insert, options)
            return await insert_counting(
                connection,
                self.table,
                statement,
                groups,
                count,
                copy_allowed=statement is statements.insert,
            )

        async def insert_returning(connection: AsyncConnection) -> list[EntityT]:
            if returns_inserted_rows(connection):
                statement = self.intercept("insert", statements.insert_many_returning, options)
                unchanged = statement is statements.insert_many_returning
                inserted = await insert_many_returning(
                    connection,
                    statement,
                    groups,
                    count,
                    arrays=statements.array_insert if unchanged else None,
                )
                return self._entities_from(inserted)
            # MySQL: no RETURNING; insert row by row, then read all rows back at once.
            statement = self.intercept("insert", statements.insert, options)
            keys = await insert_one_by_one(connection, statement, groups, count)
            return await self._reselect_keys(connection, keys, options)

        if not returning:
            return await self._write(insert_only)
        return await self._write(insert_returning)

    # --- updates ----------------------------------------------------------------------------

    async def update(
        self,
        id: Any,
        data: Any,
        *,
        savepoint: bool = False,
        expected: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> EntityT:
        """Validate ``data`` (a partial update) and apply it to one row; return the row.

        Args:
            id: The row's primary key.
            data: The changes (a mapping or an update-model instance).
            expected: Make the update a compare-and-set: change the row only if these
                columns still hold these values (``None`` matches NULL), checked by the
                UPDATE itself, atomically. Otherwise `ConflictError`, carrying the
                current values, and nothing is written.
            savepoint: Inside the caller's transaction, run the write in a SAVEPOINT, so
                that its failure (a unique violation, say) leaves the transaction usable
                (PostgreSQL otherwise aborts it). Ignored on an engine: the write has a
                transaction of its own.
            **options: Per-call options for plugins.

        Raises:
            ValidationError: ``data`` is invalid; nothing is written.
            NotFoundError: No row has this key.
            ConflictError: With ``expected``: the row does not hold those values.
        """
        params = self._key.params(id)
        if expected is not None:
            return await self._compare_and_set(id, data, expected, savepoint, options)
        values = self.prepared_update(self._update.one(data), options)
        if not values:
            return await self.get(id, **options)
        statements = self._statements
        new_key = self._key.after_update(id, values)

        async def work(connection: AsyncConnection) -> EntityT:
            if connection.dialect.update_returning:
                statement = self.intercept("update", statements.update_by_id_returning, options)
                row, keys = await fetch_first(connection, statement, {**values, **params})
                if row is None:
                    raise NotFoundError(entity=self.table.name, filters=id)
                return self._row_to_entity(dict(zip(keys, row, strict=True)))
            # MySQL/MariaDB: no UPDATE ... RETURNING; read the row back in the same
            # transaction (the row lock taken by the UPDATE keeps it as written).
            statement = self.intercept("update", statements.update_by_id, options)
            result = await connection.execute(statement, {**values, **params})
            if await affected_rows(connection, result) == 0:
                raise NotFoundError(entity=self.table.name, filters=id)
            found: list[EntityT] = await self._reselect_keys(connection, [new_key], options)
            return found[0]

        return await self._write(work, single=True, savepoint=savepoint)

    async def _compare_and_set(
        self,
        id: Any,
        data: Any,
        expected: Mapping[str, Any],
        savepoint: bool,
        options: Mapping[str, Any],
    ) -> EntityT:
        """`update` with ``expected``: one UPDATE whose WHERE also checks the expected
        values; when it matches no row, a re-read in the same transaction tells a missing
        row (`NotFoundError`) from a changed one (`ConflictError`)."""
        params = self._key.params(id)
        condition = and_(self._key.condition, expected_condition(self.table, expected))
        values = self.prepared_update(self._update.one(data), options)
        new_key = self._key.after_update(id, values)

        async def outcome(connection: AsyncConnection) -> NoReturn:
            statement = self.intercept("select", self._statements.by_id, options)
            row = (await connection.execute(statement, params)).mappings().first()
            if row is None:
                raise NotFoundError(entity=self.table.name, filters=id)
            raise ConflictError(
                entity=self.table.name, filters=id, expected=expected, current=dict(row)
            )

        async def work(connection: AsyncConnection) -> EntityT:
            if not values:
                # Nothing to write: the check alone, as a read.
                check = self.intercept("select", select(self.table).where(condition), options)
                row = (await connection.execute(check, params)).mappings().first()
                if row is None:
                    await outcome(connection)
                return self._row_to_entity(dict(row))
            statement: Any = update(self.table).where(condition).values(values)
            if connection.dialect.update_returning:
                statement = self.intercept(
                    "update", statement.returning(*self.table.columns), options
                )
                found = (await connection.execute(statement, params)).mappings().first()
                if found is None:
                    await outcome(connection)
                return self._row_to_entity(dict(found))
            # MySQL/MariaDB: no UPDATE ... RETURNING (rowcount counts matched rows).
            statement = self.intercept("update", statement, options)
            if (await connection.execute(statement, params)).rowcount == 0:
                await outcome(connection)
            rows: list[EntityT] = await self._reselect_keys(connection, [new_key], options)
            return rows[0]

        # One statement where RETURNING reads the row; MySQL's re-read joins the UPDATE's
        # transaction (one of its own on an engine).
        single = (
            not values
            or bool(self.executor.dialect.update_returning)
            or self._connection() is not None
        )
        return await self._write(work, single=single, savepoint=savepoint)

    def increment_arguments(
        self, deltas: Mapping[str, Any] | None, keywords: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Return the checked ``(deltas, options)`` of an `increment` call.

        Deltas come as keywords, or as a mapping followed by per-call options as keywords.
        Plugin mixins overriding `increment` / `increment_many` call it first, so that a
        bad delta is refused before any statement runs.

        Raises:
            InvalidQueryError: No delta, or a column that is unknown, part of the key or
                not numeric.
            ValidationError: A delta of the wrong type, not finite or out of range.
        """
        changes, options = split_increment(deltas, keywords)
        check_deltas(self.table, self._key.names, changes)
        return changes, options

    async def increment(
        self,
        id: Any,
        deltas: Mapping[str, Any] | None = None,
        /,
        *,
        savepoint: bool = False,
        **keywords: Any,
    ) -> EntityT:
        """Add to numeric columns of one row atomically; return the row as written.

        ``await repo.increment(7, views=1, likes=-2)`` runs one ``UPDATE ... SET views =
        views + 1, likes = likes - 2`` (``RETURNING`` the row; on MySQL/MariaDB a re-read
        in the same transaction), so concurrent increments never lose one. Plugins see an
        update: timestamps sets ``updated_at``, soft delete leaves deleted rows alone,
        audit logs it.

        Args:
            id: The row's primary key.
            deltas: The deltas as a mapping (then ``keywords`` are per-call options for
                plugins, such as ``include_deleted=True``); or pass them as keywords.
            savepoint: As for `update`.
            **keywords: The deltas by column (without ``deltas``), or per-call options.

        Raises:
            InvalidQueryError: No delta, or a column that is unknown, part of the key or
                not numeric.
            ValidationError: A delta of the wrong type, not finite or out of range.
            NotFoundError: No (visible) row has this key. In every case nothing is written.
        """
        changes, options = self.increment_arguments(deltas, keywords)
        names = tuple(sorted(changes))
        params = {**self._key.params(id), **increment_params(names, changes)}
        shape, prebuilt, prebuilt_returning = self._statements.increment(names)
        values = self.prepared_update(dict(shape), options)
        new_key = self._key.after_update(id, values)
        # One statement per shape of deltas, unless a plugin changes the values or the
        # statement (then it is built for this call, as every other write is).
        reuse = not self._intercepts and values.keys() == shape.keys()
        reuse = reuse and all(values[name] is shape[name] for name in shape)
        statement: Any = prebuilt if reuse else self._statements.update_by_id.values(values)

        async def work(connection: AsyncConnection) -> EntityT:
            if connection.dialect.update_returning:
                returning = (
                    prebuilt_returning
                    if reuse
                    else self.intercept("update", statement.returning(*self.table.columns), options)
                )
                row = (await connection.execute(returning, params)).mappings().first()
                if row is None:
                    raise NotFoundError(entity=self.table.name, filters=id)
                return self._row_to_entity(dict(row))
            # MySQL/MariaDB: read the row back in the same transaction; the UPDATE's row
            # lock keeps it as written until the commit.
            plain = self.intercept("update", statement, options)
            if (await connection.execute(plain, params)).rowcount == 0:
                raise NotFoundError(entity=self.table.name, filters=id)
            rows: list[EntityT] = await self._reselect_keys(connection, [new_key], options)
            return rows[0]

        # RETURNING: one statement. MySQL: UPDATE + re-read, which need a transaction of
        # their own on an engine; the caller's transaction needs no SAVEPOINT around them.
        single = bool(self.executor.dialect.update_returning) or self._connection() is not None
        return await self._write(work, single=single, savepoint=savepoint)

    async def increment_many(
        self,
        where: Any,
        deltas: Mapping[str, Any] | None = None,
        /,
        *,
        savepoint: bool = False,
        **keywords: Any,
    ) -> int:
        """Add to numeric columns of every row matching ``where`` in one atomic UPDATE.

        ``where={}`` means every row. Deltas and options as for `increment`.

        Returns:
            The number of rows matched.

        Raises:
            InvalidQueryError: ``where`` is invalid, or a bad delta column (see `increment`).
            ValidationError: A bad delta value; nothing is written.
        """
        if where is None:
            raise InvalidQueryError("increment_many needs a where (use {} for every row)")
        changes, options = self.increment_arguments(deltas, keywords)
        condition = self._where(where)
        names = tuple(changes)
        values = self.prepared_update(increment_values(self.table, names), options)
        statement: Any = update(self.table).values(values)
        if condition is not None:
            statement = statement.where(condition)
        statement = self.intercept("update", statement, options)
        params = increment_params(names, changes)

        async def work(connection: AsyncConnection) -> int:
            return await affected_rows(connection, await connection.execute(statement, params))

        return await self._write(work, single=True, savepoint=savepoint)

    async def update_many(
        self, where: Any, data: Any, *, savepoint: bool = False, **options: Any
    ) -> int:
        """Apply one validated partial update to every row matching ``where``.

        One ``UPDATE``; returns the number of rows matched. ``where={}`` means every row.

        Raises:
            ValidationError: ``data`` is invalid; nothing is written.
            InvalidQueryError: ``where`` is invalid.
        """
        if where is None:
            raise InvalidQueryError("update_many needs a where (use {} to update every row)")
        values = self.prepared_update(self._update.one(data), options)
        condition = self._where(where)
        if not values:
            return 0
        statement: Any = update(self.table).values(values)
        if condition is not None:
            statement = statement.where(condition)
        statement = self.intercept("update", statement, options)

        async def work(connection: AsyncConnection) -> int:
            return await affected_rows(connection, await connection.execute(statement))

        return await self._write(work, single=True, savepoint=savepoint)

    async def bulk_update(
        self, changes: Iterable[tuple[Any, Any]], *, savepoint: bool = False, **options: Any
    ) -> list[EntityT]:
        """Apply a different partial update to each of several rows, all or none.

        Every change is validated first. Then, in one transaction: one ``SELECT ... FOR
        UPDATE`` checks (and locks) every key, one executemany ``UPDATE`` per distinct set of
        changed columns writes, and one ``SELECT`` reads the rows back. The number of
        statements does not grow with the number of rows.

        Args:
            changes: ``(id, data)`` pairs.

        Returns:
            The updated rows, in the order of ``changes``.

        Raises:
            ValidationError: Any change is invalid; nothing is written.
            NotFoundError: Any key matches no row (``filters`` lists the missing keys);
                nothing is written.
        """
        plan = plan_bulk_update(
            changes, lambda data: self.prepared_update(self._update.one(data), options), self._key
        )
        if not plan.keys:
            return []
        key = self._key

        async def work(connection: AsyncConnection) -> list[EntityT]:
            lock = self.intercept("select", self._statements.lock_keys, options)
            present = set()
            values = key.ids_params(plan.keys)[IDS_PARAM]
            for batch in key.batches(values, connection.dialect.name):
                result = await connection.execute(lock, key.batch_params(batch))
                present |= {key.of_row(row._asdict()) for row in result}
            missing = [item for item in dict.fromkeys(plan.keys) if item not in present]
            if missing:
                # Keys the database matched its own way (see `_reselect_keys`).
                present_loosely = {key.loose(stored) for stored in present}
                missing = [item for item in missing if key.loose(item) not in present_loosely]
            if missing:
                raise NotFoundError(entity=self.table.name, filters=missing)
            statement = self.intercept("update", self._statements.update_by_id, options)
            for parameter_sets in plan.parameter_sets:
                await connection.execute(statement, parameter_sets)
            return await self._reselect_keys(connection, plan.final_keys, options)

        return await self._write(work)

    # --- deletes ----------------------------------------------------------------------------

    async def delete(self, id: Any, *, savepoint: bool = False, **options: Any) -> bool:
        """Delete the row with this key; return whether there was one.

        ``savepoint=True`` runs it in a SAVEPOINT inside the caller's transaction (see
        `create`)."""
        params = self._key.params(id)
        statement = self.intercept("delete", self._statements.delete_by_id, options)

        async def work(connection: AsyncConnection) -> bool:
            result = await connection.execute(statement, params)
            return bool(await affected_rows(connection, result))

        return await self._write(work, single=True, savepoint=savepoint)

    async def delete_many(
        self, ids: Iterable[Any], *, savepoint: bool = False, **options: Any
    ) -> int:
        """Delete the rows with these keys (one statement); return how many were deleted.

        ``savepoint=True`` runs it in a SAVEPOINT inside the caller's transaction (see
        `create`)."""
        keys = self._key.key_list(ids)
        if not keys:
            return 0
        key = self._key
        values = key.ids_params(keys)[IDS_PARAM]
        statement = self.intercept("delete", self._statements.delete_by_ids, options)
        # One statement where the keys fit one (always for a single-column key on
        # PostgreSQL); otherwise batches in one transaction, so all rows go or none.
        single = len(key.batches(values, self._dialect_name())) == 1

        async def work(connection: AsyncConnection) -> int:
            deleted = 0
            for batch in key.batches(values, connection.dialect.name):
                result = await connection.execute(statement, key.batch_params(batch))
                deleted += await affected_rows(connection, result)
            return deleted

        return await self._write(work, single=single, savepoint=savepoint)

    # --- upserts ----------------------------------------------------------------------------

    async def upsert(
        self,
        data: Any,
        conflict: Sequence[str] | None = None,
        update: Sequence[str] | None = None,
        *,
        savepoint: bool = False,
        **options: Any,
    ) -> EntityT:
        """Insert a row, or update the existing row with the same conflict key; atomically.

        Uses the database's native upsert (``ON CONFLICT ... DO UPDATE`` on PostgreSQL and
        SQLite, ``ON DUPLICATE KEY UPDATE`` on MySQL/MariaDB), so concurrent upserts of one
        key never fail and never create two rows.

        Args:
            data: The row, validated with the create model.
            conflict: The columns of the unique key that decides "existing" (default: the
                primary key). MySQL reacts to any unique key of the table.
            update: The columns to overwrite on conflict (default: every given column
                except the conflict columns).
            savepoint: Inside the caller's transaction, run the write in a SAVEPOINT, so
                that its failure (a unique violation, say) leaves the transaction usable
                (PostgreSQL otherwise aborts it). Ignored on an engine: the write has a
                transaction of its own.
            **options: Per-call options for plugins.

        Returns:
            The row as stored after the upsert.
        """
        found = await self.upsert_many(
            [data], conflict=conflict, update=update, savepoint=savepoint, **options
        )
        return found[0]

    async def upsert_many(
        self,
        rows: Iterable[Any],
        conflict: Sequence[str] | None = None,
        update: Sequence[str] | None = None,
        *,
        savepoint: bool = False,
        **options: Any,
    ) -> list[EntityT]:
        """`upsert` for several rows, in one transaction; returns one row per distinct key.

        Rows repeating a conflict key are merged: the last one wins (a single native upsert
        statement may not touch one row twice on PostgreSQL).

        Raises:
            ValidationError: Any row is invalid; nothing is written.
            InvalidQueryError: Unknown conflict/update column, or a row without a value
                for a conflict column.
        """
        values = self.prepared_insert(self._create.many(rows), options)
        if not values:
            return []
        plan = plan_upsert(self.table, self._key.names, values, conflict, update)
        statements = self._statements

        async def work(connection: AsyncConnection) -> list[EntityT]:
            dialect = connection.dialect.name
            returning = returns_upserted_rows(dialect)
            stored: dict[tuple[Any, ...], dict[str, Any]] = {}
            for _indexes, group in plan.groups:
                columns = tuple(group[0])
                chosen = plan.update
                if chosen is None:
                    chosen = call_with_options(
                        self.upsert_update_columns,
                        tuple(name for name in columns if name not in plan.conflict),
                        options,
                    )
                statement = self.intercept(
                    "insert",
                    statements.upsert(dialect, columns, plan.conflict, chosen, returning=returning),
                    options,
                )
                result = await connection.execute(statement, group)
                if returning:
                    plan.collect(stored, result)
            if not returning:
                statement = self.intercept("select", read_back(self.table, plan), options)
                plan.collect(stored, await connection.execute(statement))
            return [self.to_entity(stored_row(stored, key)) for key in plan.keys]

        return await self._write(work, single=len(plan.groups) == 1, savepoint=savepoint)
