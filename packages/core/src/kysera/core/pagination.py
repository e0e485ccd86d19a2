"""Offset and keyset (cursor) pagination of SQLAlchemy Core ``SELECT`` statements.

* `paginate` pages by number with LIMIT/OFFSET and reports the total: right for "page 3 of
  12" screens over small and medium results. Its cost grows with the page number.
* `paginate_cursor` pages by position with a keyset predicate (``WHERE (a, b) > (:a, :b)``):
  the same cost at any depth, stable while rows are inserted, for feeds, infinite scroll
  and APIs. See docs/pagination.md.

Both take an `AsyncEngine` (a connection is checked out for the reads, no transaction is
begun explicitly) or an `AsyncConnection` (used as it is, inside whatever transaction it is
in). Items are plain ``dict`` rows unless ``map_row`` turns each dict into something else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from sqlalchemy import BigInteger, CompoundSelect, Select, bindparam, func, select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.core._direct import fetch_all, fetch_first
from kysera.core._keyset import limit_clause, plan_keyset
from kysera.core.cursors import decode_cursor, encode_cursor
from kysera.core.engine_guards import guard_engine
from kysera.core.errors import (
    InvalidQueryError,
    KyseraError,
    classify_database_errors,
)

__all__ = ["CursorPage", "OffsetPage", "paginate", "paginate_cursor"]

T = TypeVar("T")
Row = dict[str, Any]
Executor = AsyncEngine | AsyncConnection


@dataclass(frozen=True, slots=True)
class OffsetPage(Generic[T]):
    """One page of an offset-paginated query.

    Attributes:
        items: The rows of this page (dicts, or what ``map_row`` made of them).
        total: How many rows the whole query returns.
        page: This page's number, from 1.
        limit: The page size asked for.
        total_pages: How many pages of ``limit`` rows the total fills (0 when empty).
        has_next: Whether a later page has rows.
        has_prev: Whether this is not the first page.
    """

    items: list[T]
    total: int
    page: int
    limit: int
    total_pages: int
    has_next: bool
    has_prev: bool


@dataclass(frozen=True, slots=True)
class CursorPage(Generic[T]):
    """One page of a keyset-paginated query.

    Attributes:
        items: The rows of this page in the requested order (dicts, or what ``map_row``
            made of them).
        next_cursor: Pass as ``after=`` for the following page; ``None`` when there is none.
        prev_cursor: Pass as ``before=`` for the preceding page; ``None`` when there is none.
        has_next: Whether rows follow this page.
        has_prev: Whether rows precede this page.
    """

    items: list[T]
    next_cursor: str | None
    prev_cursor: str | None
    has_next: bool
    has_prev: bool


@overload
async def paginate(
    executor: Executor,
    statement: Select[Any] | CompoundSelect[Any],
    *,
    page: int = 1,
    limit: int = 20,
    max_limit: int = 1000,
    map_row: None = None,
    parameters: Mapping[str, Any] | None = None,
) -> OffsetPage[Row]: ...


@overload
async def paginate(
    executor: Executor,
    statement: Select[Any] | CompoundSelect[Any],
    *,
    page: int = 1,
    limit: int = 20,
    max_limit: int = 1000,
    map_row: Callable[[Row], T],
    parameters: Mapping[str, Any] | None = None,
) -> OffsetPage[T]: ...


async def paginate(
    executor: Executor,
    statement: Select[Any] | CompoundSelect[Any],
    *,
    page: int = 1,
    limit: int = 20,
    max_limit: int = 1000,
    map_row: Callable[[Row], Any] | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> OffsetPage[Any]:
    """Fetch one page of ``statement`` by page number, with the total row count.

    The total counts ``statement`` as a subquery (``SELECT count(*) FROM (...)``), so
    ``DISTINCT``, ``GROUP BY`` and joins count what the statement returns. The count query
    is skipped when the page itself shows where the results end. Give the statement an
    ``ORDER BY`` that is unique, or rows may move between pages.

    Args:
        executor: An ``AsyncEngine`` or ``AsyncConnection``.
        statement: A ``SELECT`` (or ``UNION`` ...) without LIMIT/OFFSET.
        page: The page number, from 1.
        limit: Rows per page, from 1 to ``max_limit``.
        max_limit: The largest ``limit`` accepted.
        map_row: Called with each row as a dict; its results become the items. What it
            raises propagates unchanged.
        parameters: Values of the statement's own bound parameters (``bindparam("name")``
            without a value): a statement built once and paged with new values each time
            is compiled once.

    Returns:
        The page. A page past the end has no items.

    Raises:
        InvalidQueryError: ``page``, ``limit`` or the statement is not usable.
        DatabaseError: The database failed (classified, e.g. `DatabaseConnectionError`).
    """
    _check_int("max_limit", max_limit, 1)
    _check_int("limit", limit, 1, max_limit)
    _check_int("page", page, 1)
    _dialect_of(executor)
    if not isinstance(statement, (Select, CompoundSelect)):
        raise InvalidQueryError(
            f"paginate takes a SELECT statement, not {type(statement).__name__}"
        )
    if statement._limit_clause is not None or statement._offset_clause is not None:
        raise InvalidQueryError("the statement already has LIMIT/OFFSET; pass it without")
    offset = (page - 1) * limit
    if offset > _MAX_OFFSET:
        # No database takes an OFFSET beyond a signed 64-bit integer (SQLite's driver cannot
        # even bind it): say so before any SQL, as for any other bad page number.
        raise InvalidQueryError(
            f"page must be at most {_MAX_OFFSET // limit + 1} for limit={limit}, got {page}"
        )
    try:
        page_statement, count_statement = _offset_statements(statement, limit)
    except SQLAlchemyError as exc:
        raise InvalidQueryError(f"cannot page this statement: {exc}") from exc
    page_parameters = {**parameters, _OFFSET: offset} if parameters else {_OFFSET: offset}

    async def fetch(connection: AsyncConnection) -> tuple[Sequence[str], Sequence[Any], int]:
        rows, keys = await fetch_all(connection, page_statement, page_parameters)
        if (rows and len(rows) < limit) or (not rows and page == 1):
            # The page shows where the results end: no need to count them.
            return keys, rows, offset + len(rows)
        counted, _ = await fetch_first(connection, count_statement, parameters)
        assert counted is not None  # an aggregate without GROUP BY returns one row
        return keys, rows, counted[0]

    keys, rows, total = await _with_connection(executor, fetch)

    items: list[Any] = [dict(zip(keys, row, strict=False)) for row in rows]
    if map_row is not None:
        items = [map_row(item) for item in items]
    total_pages = -(-total // limit)
    return OffsetPage(
        items=items,
        total=total,
        page=page,
        limit=limit,
        total_pages=total_pages,
        has_next=page < total_pages,
        has_prev=page > 1,
    )


@overload
async def paginate_cursor(
    executor: Executor,
    statement: Select[Any],
    *,
    order_by: Sequence[Any] | Any,
    limit: int = 20,
    after: str | None = None,
    before: str | None = None,
    secret: str | bytes | None = None,
    max_limit: int = 1000,
    map_row: None = None,
    unique: bool = False,
    parameters: Mapping[str, Any] | None = None,
) -> CursorPage[Row]: ...


@overload
async def paginate_cursor(
    executor: Executor,
    statement: Select[Any],
    *,
    order_by: Sequence[Any] | Any,
    limit: int = 20,
    after: str | None = None,
    before: str | None = None,
    secret: str | bytes | None = None,
    max_limit: int = 1000,
    map_row: Callable[[Row], T],
    unique: bool = False,
    parameters: Mapping[str, Any] | None = None,
) -> CursorPage[T]: ...


async def paginate_cursor(
    executor: Executor,
    statement: Select[Any],
    *,
    order_by: Sequence[Any] | Any,
    limit: int = 20,
    after: str | None = None,
    before: str | None = None,
    secret: str | bytes | None = None,
    max_limit: int = 1000,
    map_row: Callable[[Row], Any] | None = None,
    unique: bool = False,
    parameters: Mapping[str, Any] | None = None,
) -> CursorPage[Any]:
    """Fetch one page of ``statement`` after (or before) a cursor, in keyset order.

    The ordering is made unique by appending the key of every source in the FROM clause
    (however its joins are written) that the ordering does not already identify, in the
    direction of the last ``order_by`` term: a table's primary key, an alias's copy of it,
    a subquery's GROUP BY columns or the keys of its own sources. A source without such a
    key is refused unless ``unique=True``. NULLs sort last in both directions
    unless an ordering term says ``.nulls_first()``. The page query selects ``limit + 1``
    rows after the cursor's position, so its cost does not depend on how deep the page is
    when an index matches the ordering (see docs/pagination.md).

    Args:
        executor: An ``AsyncEngine`` or ``AsyncConnection``.
        statement: A ``SELECT`` without LIMIT/OFFSET, DISTINCT or GROUP BY (page a select
            from ``statement.subquery()`` for those). Its own ORDER BY is replaced.
        order_by: Column expressions such as ``[t.c.score.desc(), t.c.created_at]``, or
            names of the statement's columns.
        limit: Rows per page, from 1 to ``max_limit``.
        after: A ``next_cursor``: return the rows that follow it.
        before: A ``prev_cursor``: return the rows that precede it (in the requested order).
        secret: Sign cursors with HMAC-SHA256 and accept only cursors signed with it.
        max_limit: The largest ``limit`` accepted.
        map_row: Called with each row as a dict; its results become the items. What it
            raises propagates unchanged.
        unique: Assert that ``order_by`` as given identifies a row (for a view, say, or a
            source without a provable key): nothing is appended and nothing checked. A
            false assertion skips or repeats rows.
        parameters: Values of the statement's own bound parameters, as for `paginate`.

    Returns:
        The page, with cursors for its neighbours. A page with no items (after the last
        row, say, once rows were deleted) has no cursors.

    Raises:
        InvalidCursorError: ``after``/``before`` is not a cursor of this ordering (or is
            unsigned, or tampered with, while ``secret`` is given).
        InvalidQueryError: ``limit``, ``order_by`` or the statement is not usable, both
            ``after`` and ``before`` are given, or a source in the FROM has no provable key
            (without ``unique=True``); the message names the fix.
        DatabaseError: The database failed (classified, e.g. `DatabaseConnectionError`).
    """
    _check_int("max_limit", max_limit, 1)
    _check_int("limit", limit, 1, max_limit)
    if after is not None and before is not None:
        raise InvalidQueryError("pass after= or before=, not both")
    if not isinstance(statement, Select):
        raise InvalidQueryError(
            f"paginate_cursor takes a SELECT statement, not {type(statement).__name__}"
        )
    if secret is not None and (not isinstance(secret, (str, bytes)) or not secret):
        raise InvalidQueryError("secret must be a non-empty str or bytes")
    if not isinstance(unique, bool):
        raise InvalidQueryError(f"unique must be a bool, not {type(unique).__name__}")
    dialect = _dialect_of(executor)
    try:
        plan = plan_keyset(statement, order_by, unique=unique)
        cursor = after if after is not None else before
        values: tuple[Any, ...] | None = None
        if cursor is not None:
            values = decode_cursor(cursor, ordering=plan.fingerprint, secret=secret)
            plan.check_values(values)
        backwards = before is not None
        page_statement, keyset_parameters = plan.statement(
            statement, dialect, values, backwards=backwards, limit=limit + 1
        )
    except KyseraError:
        raise
    except SQLAlchemyError as exc:
        raise InvalidQueryError(f"cannot page this statement by keyset: {exc}") from exc

    if parameters:
        keyset_parameters = {**parameters, **keyset_parameters}

    async def fetch(connection: AsyncConnection) -> tuple[Sequence[str], list[Any]]:
        rows, keys = await fetch_all(connection, page_statement, keyset_parameters)
        return keys[: plan.width], list(rows)

    keys, rows = await _with_connection(executor, fetch)

    more = len(rows) > limit
    if more:
        del rows[limit:]
    if backwards:
        rows.reverse()
    key_indexes = [key.index for key in plan.keys]
    converters = plan.cursor_values

    def cursor_of(row: Any) -> str:
        values = [row[index] for index in key_indexes]
        if converters is not None:
            values = [
                value if convert is None else convert(value)
                for convert, value in zip(converters, values, strict=True)
            ]
        return encode_cursor(values, ordering=plan.fingerprint, secret=secret)

    # Having come from a cursor, the row it was made from lies on the side we came from.
    has_next = more if not backwards else True
    has_prev = more if backwards else after is not None
    next_cursor = cursor_of(rows[-1]) if rows and has_next else None
    prev_cursor = cursor_of(rows[0]) if rows and has_prev else None
    items: list[Any] = [dict(zip(keys, row, strict=False)) for row in rows]
    if map_row is not None:
        items = [map_row(item) for item in items]
    return CursorPage(
        items=items,
        next_cursor=next_cursor,
        prev_cursor=prev_cursor,
        has_next=has_next,
        has_prev=has_prev,
    )


_MAX_OFFSET = 2**63 - 1
"""The largest OFFSET every database accepts (a signed 64-bit integer)."""

_OFFSET = "kysera_offset"
# (statement, limit) -> (its page with OFFSET :kysera_offset, its count), built once: a
# statement paged again (a repository's read shape) is then compiled and prepared once.
# Held strongly (each holds its statement) and bounded: statements built per call cycle
# through.
_OFFSET_STATEMENTS: dict[tuple[Any, int], tuple[Any, Select[Any]]] = {}
_OFFSET_STATEMENTS_KEPT = 256


def _offset_statements(
    statement: Select[Any] | CompoundSelect[Any], limit: int
) -> tuple[Any, Select[Any]]:
    """The page query of ``statement`` (``LIMIT limit OFFSET :kysera_offset``) and its
    count (``SELECT count(*) FROM (statement)``), the same objects for the same arguments."""
    key = (statement, limit)
    found = _OFFSET_STATEMENTS.get(key)
    if found is None:
        page_statement = statement.limit(limit_clause(limit)).offset(
            bindparam(_OFFSET, type_=BigInteger())
        )
        count = select(func.count()).select_from(statement.order_by(None).subquery())
        if len(_OFFSET_STATEMENTS) >= _OFFSET_STATEMENTS_KEPT:
            _OFFSET_STATEMENTS.clear()
        found = _OFFSET_STATEMENTS[key] = (page_statement, count)
    return found


def _check_int(name: str, value: object, minimum: int, maximum: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidQueryError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
        raise InvalidQueryError(f"{name} must be {bounds}, got {value}")


def _dialect_of(executor: object) -> Dialect:
    if isinstance(executor, (AsyncEngine, AsyncConnection)):
        return executor.dialect
    raise InvalidQueryError(
        f"executor must be an AsyncEngine or AsyncConnection, not {type(executor).__name__}"
    )


async def _with_connection(
    executor: Executor, work: Callable[[AsyncConnection], Awaitable[T]]
) -> T:
    """Run ``work`` on the executor's connection (an engine's is checked out for it), with
    database errors classified and statement errors reported as `InvalidQueryError`."""
    try:
        with classify_database_errors(executor.dialect.name):
            if isinstance(executor, AsyncConnection):
                return await work(executor)
            async with guard_engine(executor).connect() as connection:
                return await work(connection)
    except SQLAlchemyError as exc:
        # Not from the database (those are classified above): the statement could not be
        # compiled or its parameters not bound, e.g. a construct this dialect lacks.
        raise InvalidQueryError(
            f"the statement cannot run on {executor.dialect.name}: {exc}"
        ) from exc
