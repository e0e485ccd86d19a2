"""Reused statements run straight on asyncpg when nothing could tell the difference.

On a PostgreSQL loopback, asyncpg answers a primary-key fetch in about 20 µs of which most is
client CPU, while SQLAlchemy's execution layer (execution context, greenlet hop, cursor
emulation, result wrapping) adds about 35 µs on top, even for a statement built once (and
more per row for a multi-row result). Repositories and pages re-execute the same statement
objects with new parameters: the prebuilt primary-key SELECT, the one-row ``INSERT ...
RETURNING``, the ``UPDATE ... RETURNING`` by key, a read shape's SELECT or count, a keyset
page. For those this module compiles the statement once per dialect (and, for a write, per
set of columns) and runs it on the prepared statement SQLAlchemy's asyncpg adapter itself
caches: same SQL text, same statement cache and names, same transaction, the same bind and
result processors SQLAlchemy would apply, the same error translation.

It steps aside (and SQLAlchemy runs the statement) whenever the difference could be observed
or the assumptions may not hold:

- another dialect or driver;
- listeners to statement events on the connection, engine or dialect (SQL capture,
  tracing, the test plugin's query log), or ``echo``;
- execution options that change how a statement compiles or runs (``schema_translate_map``);
- a transaction SQLAlchemy has begun but not yet started on the driver (the next statement
  sends ``BEGIN``), an inactive transaction, an invalidated connection;
- a write whose columns have Python-side defaults or ``onupdate`` values (SQLAlchemy computes
  those per execution);
- a statement object seen for the first time (statements built per call are never compiled
  here: the second sighting of the same object is what makes it worth it);
- a SQLAlchemy release whose asyncpg adapter lacks the internals used here.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NoReturn

from sqlalchemy import Insert, Select, Update
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.base import Executable

from kysera.core._unusable_connections import left_unusable, report_unusable_as_lost

__all__ = ["fetch_all", "fetch_first"]

# Connection execution options that are applied when a connection or transaction starts and
# do not affect how a statement compiles or runs afterwards.
_INERT_OPTIONS: Final = frozenset(
    {"isolation_level", "logging_token", "postgresql_readonly", "postgresql_deferrable"}
)
# What this module uses of SQLAlchemy's asyncpg adapter (checked once per adapter class).
_ADAPTER_INTERNALS: Final = (
    "_prepare",
    "_execute_mutex",
    "_transaction",
    "_handle_exception",
    "isolation_level",
)
_SUPPORTED_ADAPTERS: dict[type, bool] = {}


class _Skipped:
    """Marks a read this module left to SQLAlchemy."""


_SKIPPED: Final = _Skipped()

_Processor = Callable[[Any], Any] | None


class _Plan:
    """What is known of one statement on one dialect: its result keys and, from its second
    use on, its direct form (``None`` where there is none)."""

    __slots__ = ("direct", "keys")

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys
        self.direct: _DirectStatement | _Pending | None = _PENDING


class _Pending:
    """Marks a statement seen once: not compiled yet."""


_PENDING: Final = _Pending()

# The statements whose compiled form depends on the parameters given (their VALUES or SET).
_WRITES: Final = (Insert, Update)
# Statement object -> {(dialect, shape): plan}, where the shape is ``None`` for a SELECT and
# the parameter names for an INSERT or UPDATE (they decide its VALUES or SET clause). Weak,
# so statements built per call come and go; a few entries per statement (one per engine: a
# primary and its replicas, say; a few sets of columns).
_MAX_PLANS: Final = 16
_PLANS: weakref.WeakKeyDictionary[Executable, dict[tuple[Dialect, Any], _Plan]] = (
    weakref.WeakKeyDictionary()
)


async def fetch_first(
    connection: AsyncConnection, statement: Executable, params: Mapping[str, Any] | None
) -> tuple[Sequence[Any] | None, tuple[str, ...]]:
    """Execute ``statement`` with ``params``; return its first row and the result's keys.

    ``statement`` is a SELECT, or an ``INSERT``/``UPDATE ... RETURNING`` of (at most) one
    row. Database errors surface as SQLAlchemy/driver exceptions either way, for the
    caller's ``classify_database_errors()`` to classify.
    """
    rows, keys = await _fetch(connection, statement, params or _NO_PARAMS, many=False)
    return (rows[0] if rows else None), keys


async def fetch_all(
    connection: AsyncConnection, statement: Executable, params: Mapping[str, Any] | None
) -> tuple[Sequence[Sequence[Any]], tuple[str, ...]]:
    """Execute the SELECT ``statement`` with ``params``; return its rows and the result's
    keys (rows are sequences of values in the order of the keys)."""
    return await _fetch(connection, statement, params or _NO_PARAMS, many=True)


_NO_PARAMS: Final[Mapping[str, Any]] = {}


async def _fetch(
    connection: AsyncConnection, statement: Executable, params: Mapping[str, Any], *, many: bool
) -> tuple[Sequence[Sequence[Any]], tuple[str, ...]]:
    """The rows (all of them, or at most the first) and keys of ``statement``."""
    plan_key = (connection.dialect, tuple(params) if isinstance(statement, _WRITES) else None)
    plans = _PLANS.get(statement)
    plan = plans.get(plan_key) if plans is not None else None
    if plan is None:
        result = await connection.execute(statement, params)
        keys = tuple(result.keys())
        if plans is None:
            plans = _PLANS[statement] = {}
        elif len(plans) >= _MAX_PLANS:
            plans.clear()  # engines come and go (tests): keep the cache from growing
        plans[plan_key] = _Plan(keys)
        return _rows_of(result, many), keys
    direct = plan.direct
    if isinstance(direct, _Pending):
        direct = plan.direct = _DirectStatement.compile(statement, plan_key, plan.keys)
    if direct is not None:
        rows = await direct.run(connection, params, many)
        if not isinstance(rows, _Skipped):
            return rows, plan.keys
    return _rows_of(await connection.execute(statement, params), many), plan.keys


def _rows_of(result: Any, many: bool) -> Sequence[Sequence[Any]]:
    if many:
        return result.all()  # type: ignore[no-any-return]
    row = result.first()
    return () if row is None else (row,)


class _DirectStatement:
    """One statement compiled for asyncpg: its SQL, how to bind it and how to read its rows."""

    __slots__ = ("arguments", "attributes", "dialect", "processors", "result_types", "sql")

    def __init__(
        self,
        dialect: Dialect,
        sql: str,
        arguments: tuple[tuple[str, Any, _Processor], ...],
        result_types: tuple[Any, ...],
    ) -> None:
        self.dialect = dialect
        self.sql = sql
        self.arguments = arguments
        self.result_types = result_types
        # Result processors depend on the column types the server reports: resolved on the
        # first run from the prepared statement's attributes, again if those change.
        self.attributes: object = None
        self.processors: tuple[_Processor, ...] = ()

    @classmethod
    def compile(
        cls, statement: Executable, plan_key: tuple[Dialect, Any], keys: tuple[str, ...]
    ) -> _DirectStatement | None:
        """The direct form of ``statement`` for ``plan_key`` (its dialect and, for an
        INSERT, its parameter names), or ``None`` where there is none."""
        dialect, parameter_names = plan_key
        if dialect.name != "postgresql" or dialect.driver != "asyncpg":
            return None
        if not isinstance(statement, (Select, *_WRITES)):
            return None
        if not _INERT_OPTIONS.issuperset(statement.get_execution_options()):
            return None
        columns = list(statement.exported_columns)
        if len(columns) != len(keys) or len(set(keys)) != len(keys):
            return None
        compiled: Any = statement.compile(dialect=dialect, column_keys=parameter_names)
        if compiled.literal_execute_params or compiled.post_compile_params:
            return None
        if compiled.positiontup is None or compiled.insert_prefetch or compiled.update_prefetch:
            return None  # no positional form, or Python-side defaults to compute per row
        arguments = []
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            if bind.expanding or bind.callable is not None:
                return None
            default = _REQUIRED if bind.required else bind.value
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            arguments.append((bind.key, default, processor))
        result_types = tuple(column.type.dialect_impl(dialect) for column in columns)
        return cls(dialect, compiled.string, tuple(arguments), result_types)

    async def run(
        self, connection: AsyncConnection, params: Mapping[str, Any], many: bool
    ) -> Sequence[Sequence[Any]] | _Skipped:
        """Run the statement on the driver and return its rows (processed; only the first
        unless ``many``), or `_SKIPPED` when SQLAlchemy must run it."""
        sync = connection.sync_connection
        if sync is None or connection.dialect is not self.dialect or not _unobserved(sync):
            return _SKIPPED
        adapter: Any = sync.connection.dbapi_connection
        if not _supported(adapter):
            return _SKIPPED
        if adapter._transaction is None and adapter.isolation_level != "autocommit":
            # SQLAlchemy sends BEGIN before its first statement: let it.
            return _SKIPPED
        arguments = []
        for key, default, processor in self.arguments:
            value = params.get(key, default)
            if value is _REQUIRED:
                return _SKIPPED  # SQLAlchemy reports the missing parameter
            arguments.append(value if processor is None else processor(value))
        try:
            async with adapter._execute_mutex:
                prepared, attributes = await adapter._prepare(
                    self.sql, getattr(self.dialect, "_invalidate_schema_cache_asof", 0)
                )
                if many:
                    rows = await prepared.fetch(*arguments)
                else:
                    row = await prepared.fetchrow(*arguments)
                    rows = () if row is None else (row,)
        except Exception as error:
            await self._raise_translated(connection, adapter, error, arguments)
        if attributes is not self.attributes:
            self.processors = self._result_processors(attributes)
            self.attributes = attributes
        processors = self.processors
        if not rows or not any(processors):
            return rows  # type: ignore[no-any-return]
        return [
            [
                value if processor is None else processor(value)
                for processor, value in zip(processors, row, strict=True)
            ]
            for row in rows
        ]

    def _result_processors(self, attributes: Sequence[Any]) -> tuple[_Processor, ...]:
        return tuple(
            type_.result_processor(self.dialect, attribute.type.oid)
            for type_, attribute in zip(self.result_types, attributes, strict=True)
        )

    async def _raise_translated(
        self,
        connection: AsyncConnection,
        adapter: Any,
        error: Exception,
        arguments: Sequence[Any],
    ) -> NoReturn:
        """Raise ``error`` as SQLAlchemy's path would: translated by the adapter and wrapped
        in a ``DBAPIError``, the schema cache dropped after a stale-statement error, the
        connection invalidated when it was lost."""
        try:
            adapter._handle_exception(error)
        except Exception as translated:
            dbapi: Any = self.dialect.loaded_dbapi
            if not isinstance(translated, dbapi.Error):
                # Untranslated: older SQLAlchemy has no class for asyncpg's
                # InternalClientError (see kysera.core._unusable_connections).
                if left_unusable(translated):
                    with contextlib.suppress(Exception):
                        await connection.invalidate(translated)
                raise
            if isinstance(
                translated, (dbapi.InvalidCachedStatementError, dbapi.InternalServerError)
            ):
                invalidate_schema_cache = getattr(self.dialect, "_invalidate_schema_cache", None)
                if invalidate_schema_cache is not None:
                    invalidate_schema_cache()
            # As SQLAlchemy would, with the listener guard_engine adds.
            lost = self.dialect.is_disconnect(translated, adapter, None) or left_unusable(error)
            if lost:
                with contextlib.suppress(Exception):
                    await connection.invalidate(translated)
            raise DBAPIError.instance(
                self.sql,
                tuple(arguments),
                translated,
                dbapi.Error,
                hide_parameters=getattr(connection.sync_engine, "hide_parameters", True),
                connection_invalidated=lost,
                dialect=self.dialect,
            ) from translated
        raise error  # the adapter always raises; keep the original if it ever does not


class _Required:
    """Marks a bind parameter without a value of its own."""


_REQUIRED: Final = _Required()


# The events that see a statement's execution (``handle_error``: see `_handling_errors`).
# Others, such as the ``engine_connect`` listener SQLAlchemy itself adds to apply an engine's
# ``isolation_level`` option, or a ``do_connect`` listener fetching a password, don't.
_STATEMENT_EVENTS: Final = (
    "before_execute",
    "after_execute",
    "before_cursor_execute",
    "after_cursor_execute",
)
_DIALECT_STATEMENT_EVENTS: Final = (
    "do_execute",
    "do_execute_no_params",
    "do_setinputsizes",
)


def _unobserved(sync: Connection) -> bool:
    """Tell whether nothing hooks into this connection's statements (listeners, echo,
    options that change execution) and its transaction is usable."""
    if (getattr(sync, "_has_events", True) or getattr(sync.engine, "_has_events", True)) and (
        _listening(sync.dispatch, _STATEMENT_EVENTS)
    ):
        return False
    if getattr(sync.dialect, "_has_events", True) and (
        _listening(sync.dialect.dispatch, _DIALECT_STATEMENT_EVENTS)
        or _handling_errors(sync.dialect.dispatch)
    ):
        return False
    if getattr(sync, "_echo", True):
        return False
    if not _INERT_OPTIONS.issuperset(sync.get_execution_options()):
        return False
    if sync.invalidated or sync.closed:
        return False
    for transaction in (sync.get_transaction(), sync.get_nested_transaction()):
        if transaction is not None and not transaction.is_active:
            return False
    return True


def _listening(dispatch: Any, names: tuple[str, ...]) -> bool:
    # An event SQLAlchemy renamed counts as listened to: stay on SQLAlchemy's path.
    return any(getattr(dispatch, name, True) for name in names)


def _handling_errors(dispatch: Any) -> bool:
    """Tell whether a ``handle_error`` listener other than guard_engine's own is there (its
    effect is applied here too: see `_DirectStatement._raise_translated`)."""
    handlers = getattr(dispatch, "handle_error", None)
    if handlers is None:
        return True  # renamed: stay on SQLAlchemy's path
    return any(handler is not report_unusable_as_lost for handler in handlers)


def _supported(adapter: object) -> bool:
    cls = type(adapter)
    found = _SUPPORTED_ADAPTERS.get(cls)
    if found is None:
        found = _SUPPORTED_ADAPTERS[cls] = all(
            hasattr(adapter, name) for name in _ADAPTER_INTERNALS
        )
    return found
