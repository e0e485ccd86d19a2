"""`KV`: a Deno-KV-style key-value store on one SQL table (SQLAlchemy Core)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import builtins
import json
import math
import random
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from pydantic_core import PydanticSerializationError
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.core.errors import (
    InvalidCursorError,
    SerializationError,
    UniqueConstraintError,
    is_transient_error,
    parse_database_error,
)
from kysera.kv.errors import InvalidValueError, SumTypeError, UnsupportedDriverError
from kysera.kv.keys import MAX_KEY_BYTES, KvKey, decode_key, encode_key, encode_parts

__all__ = ["KV", "AtomicOperation", "CommitResult", "Entry", "ListPage"]

_ATTEMPTS = 20
# The versionstamp of a row that holds an "absent" check during a commit; never visible.
_PLACEHOLDER = -1
# Versionstamps and expiry times are stored in signed 64-bit (BIGINT) columns.
_MAX_VERSIONSTAMP = 2**63 - 1
# The last millisecond of the year 9999 (UTC): the latest expiry every dialect and every
# datetime library can represent, and far inside BIGINT.
_MAX_EXPIRES_AT_MS = 253_402_300_799_999
# Keys bound per ``IN (...)`` on SQLite and MySQL/MariaDB: SQLite builds before 3.32 allow 999
# parameters per statement, and the statement also binds the current time. PostgreSQL takes
# any number of keys as one array parameter instead (asyncpg allows 32,767 parameters).
_KEYS_PER_STATEMENT = 900


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored entry: ``value`` is the decoded JSON; ``versionstamp`` changes on every write."""

    key: KvKey
    value: Any
    versionstamp: int


@dataclass(frozen=True, slots=True)
class ListPage:
    """A page of `KV.list`; ``cursor`` continues after it, ``None`` once the range is done."""

    entries: list[Entry]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class CommitResult:
    """The outcome of `AtomicOperation.commit`.

    ``ok`` is False when a check failed; then nothing was written.
    """

    ok: bool
    versionstamp: int | None = None


def _dump(value: object) -> str:
    # RecursionError: a value nested too deeply to encode (or to decode again when read);
    # ValueError: NaN, an int with too many digits for int-to-str, or a pydantic model that
    # cannot serialize (PydanticSerializationError: an arbitrary object, a lone surrogate).
    try:
        if isinstance(value, BaseModel):
            return value.model_dump_json()
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError, PydanticSerializationError) as exc:
        raise InvalidValueError(f"value is not JSON-serializable: {exc}") from exc


def _expiry(expire_in: float | timedelta | None) -> int | None:
    if expire_in is None:
        return None
    seconds = expire_in.total_seconds() if isinstance(expire_in, timedelta) else expire_in
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not seconds > 0
        or not math.isfinite(seconds)
    ):
        raise InvalidValueError(
            f"expire_in must be a positive, finite number of seconds, got {expire_in!r}"
        )
    now = _now_ms()
    # Compare before converting: int() of a huge float is exact but the sum would not fit the
    # BIGINT column (SQLite raises OverflowError, the others a driver error).
    if seconds * 1000 > _MAX_EXPIRES_AT_MS - now:
        raise InvalidValueError(f"expire_in={expire_in!r} ends after the year 9999")
    return now + max(1, int(seconds * 1000))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


_last_versionstamp = 0


def _new_versionstamp() -> int:
    # Microseconds since the epoch (about 2**51) shifted left 10 bits plus 10 random bits: grows
    # with time, fits a signed 64-bit column, and two writes of one key practically never share
    # one. Within this process the stamps also strictly increase (the event loop runs one call
    # at a time), so two commits here never share a stamp even in the same microsecond.
    global _last_versionstamp
    stamp = ((time.time_ns() // 1000) << 10) | random.getrandbits(10)
    _last_versionstamp = max(stamp, _last_versionstamp + 1)
    return _last_versionstamp


@dataclass
class _Set:
    key: bytes
    value: str
    expires_at: int | None


@dataclass
class _Delete:
    key: bytes


@dataclass
class _Sum:
    key: bytes
    amount: int


class _Conflict(Exception):
    """A check failed: the commit writes nothing and reports ``ok=False``."""


class _Retry(Exception):
    """The commit met a race that running it again resolves (never a failed check)."""


@dataclass
class AtomicOperation:
    """Checks and mutations committed together in one transaction, or not at all."""

    _kv: KV
    _checks: list[tuple[bytes, int | None]] = field(default_factory=list)
    _mutations: list[_Set | _Delete | _Sum] = field(default_factory=list)

    def check(self, key: KvKey, versionstamp: int | None) -> AtomicOperation:
        """Commit only if ``key``'s versionstamp is still ``versionstamp`` (``None``: absent).

        Raises:
            InvalidValueError: ``versionstamp`` is not None or an int from 0 to 2**63 - 1 (the
                range of every versionstamp the store issues).
        """
        if versionstamp is not None and (
            isinstance(versionstamp, bool)
            or not isinstance(versionstamp, int)
            or not 0 <= versionstamp <= _MAX_VERSIONSTAMP
        ):
            raise InvalidValueError(
                f"a versionstamp is None or an int from 0 to 2**63 - 1, got {versionstamp!r}"
            )
        self._checks.append((encode_key(key), versionstamp))
        return self

    def set(
        self, key: KvKey, value: object, *, expire_in: float | timedelta | None = None
    ) -> AtomicOperation:
        """Set ``key`` to ``value`` (JSON, or a pydantic model)."""
        self._mutations.append(_Set(encode_key(key), _dump(value), _expiry(expire_in)))
        return self

    def delete(self, key: KvKey) -> AtomicOperation:
        """Delete ``key`` (no error if absent)."""
        self._mutations.append(_Delete(encode_key(key)))
        return self

    def sum(self, key: KvKey, amount: int) -> AtomicOperation:
        """Add the integer ``amount`` to the integer at ``key`` (absent counts as 0).

        Raises:
            InvalidValueError: ``amount`` is not an int, or has too many digits to store as JSON.
        """
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise InvalidValueError(f"sum takes an int, got {amount!r}")
        _dump(amount)
        self._mutations.append(_Sum(encode_key(key), amount))
        return self

    async def commit(self) -> CommitResult:
        """Apply everything atomically; ``ok=False`` (nothing written) if a check failed."""
        return await self._kv._commit(self._checks, self._mutations)


class KV:
    """A key-value store on one table; open it with `KV.open`."""

    def __init__(self, engine: AsyncEngine, table: sa.Table) -> None:
        _check_driver(engine)
        self._engine = engine
        self._table = table
        self._dialect = engine.dialect.name
        # The hot statements are built once, with bound parameters: a statement built per
        # call costs more client time than the round trip it makes (SQLAlchemy walks its
        # cache key every time).
        c = table.c
        self._get_statement = sa.select(c.key, c.value, c.versionstamp).where(
            c.key == sa.bindparam("kysera_kv_key"), self._live(sa.bindparam("kysera_kv_now"))
        )
        self._upsert_statement = _upsert_statement(table, self._dialect)
        self._insert_if_absent_statement = _insert_if_absent_statement(table, self._dialect)

    @classmethod
    async def open(cls, engine: AsyncEngine, *, table: str = "kysera_kv") -> KV:
        """Return a store on ``table``, creating the table if it is missing.

        Raises:
            UnsupportedDriverError: The engine uses aiomysql, which cannot send the store's
                binary keys (use asyncmy: ``mysql+asyncmy://``, ``kysera-core[mysql]``).
        """
        _check_driver(engine)
        key_type = sa.LargeBinary(MAX_KEY_BYTES).with_variant(
            mysql.VARBINARY(MAX_KEY_BYTES), "mysql", "mariadb"
        )
        t = sa.Table(
            table,
            sa.MetaData(),
            sa.Column("key", key_type, primary_key=True),
            sa.Column(
                "value",
                sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb"),
                nullable=False,
            ),
            sa.Column("versionstamp", sa.BigInteger, nullable=False),
            sa.Column("expires_at", sa.BigInteger, nullable=True, index=True),
        )
        async with engine.begin() as conn:
            await conn.run_sync(t.metadata.create_all, checkfirst=True)
        return cls(engine, t)

    # --- reads ------------------------------------------------------------------------------

    def _live(self, now: int | sa.BindParameter[Any]) -> sa.ColumnElement[bool]:
        c = self._table.c
        return sa.or_(c.expires_at.is_(None), c.expires_at > now)

    def _key_in(self, keys: Sequence[bytes]) -> builtins.list[sa.ColumnElement[bool]]:
        """``key IN (...)`` conditions that together cover ``keys``, one per statement to run.

        PostgreSQL gets one ``key = ANY(:array)``; the others one ``IN`` per
        `_KEYS_PER_STATEMENT` keys, so no statement exceeds a driver's parameter limit.
        """
        c = self._table.c
        if self._dialect == "postgresql":
            array = sa.bindparam(
                "kysera_kv_keys", list(keys), type_=postgresql.ARRAY(sa.LargeBinary)
            )
            return [c.key == sa.any_(array)]
        return [
            c.key.in_(keys[i : i + _KEYS_PER_STATEMENT])
            for i in range(0, len(keys), _KEYS_PER_STATEMENT)
        ]

    def _entry(self, row: Any) -> Entry:
        return Entry(decode_key(bytes(row.key)), json.loads(row.value), int(row.versionstamp))

    async def get(self, key: KvKey) -> Entry | None:
        """Return the live entry at ``key``, or ``None``."""
        parameters = {"kysera_kv_key": encode_key(key), "kysera_kv_now": _now_ms()}
        async with self._engine.connect() as conn:
            row = (await conn.execute(self._get_statement, parameters)).first()
        return None if row is None else self._entry(row)

    async def list(
        self,
        *,
        prefix: KvKey = (),
        start: KvKey | None = None,
        end: KvKey | None = None,
        limit: int = 100,
        reverse: bool = False,
        cursor: str | None = None,
    ) -> ListPage:
        """Return up to ``limit`` live entries in key order (``reverse``: descending).

        ``prefix`` selects keys that extend it (not the prefix itself), ``start`` is inclusive,
        ``end`` exclusive; pass the returned ``cursor`` to get the next page.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise InvalidValueError(f"limit must be an int from 1 to 10000, got {limit!r}")
        c = self._table.c
        encoded_prefix = encode_parts(prefix, allow_empty=True)
        conditions: list[sa.ColumnElement[bool]] = [self._live(_now_ms())]
        if encoded_prefix:
            conditions += [c.key > encoded_prefix, c.key < encoded_prefix + b"\xff"]
        if start is not None:
            conditions.append(c.key >= encode_key(start))
        if end is not None:
            conditions.append(c.key < encode_key(end))
        if cursor is not None:
            after = _decode_cursor(cursor)
            conditions.append(c.key < after if reverse else c.key > after)
        query = (
            sa.select(c.key, c.value, c.versionstamp)
            .where(*conditions)
            .order_by(c.key.desc() if reverse else c.key.asc())
            .limit(limit + 1)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        entries = [self._entry(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = base64.urlsafe_b64encode(bytes(rows[limit - 1].key)).decode("ascii")
        return ListPage(entries, next_cursor)

    async def get_many(self, keys: Sequence[KvKey]) -> builtins.list[Entry | None]:
        """Return the live entries at ``keys`` (``None`` where absent).

        One SELECT on PostgreSQL; on SQLite and MySQL/MariaDB one SELECT per 900 keys, in one
        transaction.
        """
        encoded = [encode_key(key) for key in keys]
        c = self._table.c
        now = _now_ms()
        found: dict[bytes, Entry] = {}
        async with self._engine.begin() as conn:
            for condition in self._key_in(encoded):
                query = sa.select(c.key, c.value, c.versionstamp).where(condition, self._live(now))
                found.update(
                    (bytes(row.key), self._entry(row)) for row in await conn.execute(query)
                )
        return [found.get(key) for key in encoded]

    async def watch(
        self, keys: Sequence[KvKey], *, interval: float = 0.5
    ) -> AsyncIterator[builtins.list[Entry | None]]:
        """Yield the entries at ``keys`` now, then again whenever a versionstamp changes.

        Polls every ``interval`` seconds with one SELECT; changes between two polls are
        coalesced (the latest state is yielded).
        """
        if not keys:
            raise InvalidValueError("watch needs at least one key")
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
            raise InvalidValueError(f"interval must be a positive number, got {interval!r}")
        for key in keys:
            encode_key(key)
        seen: builtins.list[int | None] | None = None
        while True:
            entries = await self.get_many(keys)
            stamps = [None if entry is None else entry.versionstamp for entry in entries]
            if stamps != seen:
                seen = stamps
                yield entries
            await asyncio.sleep(interval)

    # --- writes -----------------------------------------------------------------------------

    async def set(
        self, key: KvKey, value: object, *, expire_in: float | timedelta | None = None
    ) -> Entry:
        """Set ``key`` to ``value`` (JSON or a pydantic model); expire it after ``expire_in`` s."""
        dumped = _dump(value)
        result = await self._commit((), (_Set(encode_key(key), dumped, _expiry(expire_in)),))
        assert result.versionstamp is not None
        return Entry(key, json.loads(dumped), result.versionstamp)

    async def delete(self, key: KvKey) -> None:
        """Delete ``key`` (no error if it is absent)."""
        await self.atomic().delete(key).commit()

    def atomic(self) -> AtomicOperation:
        """Start an atomic operation: ``.check(...).set(...).delete(...).sum(...).commit()``."""
        return AtomicOperation(self)

    async def purge_expired(self) -> int:
        """Delete entries that are expired when the DELETE runs; return how many went."""
        c = self._table.c
        async with self._engine.begin() as conn:
            result = await conn.execute(sa.delete(self._table).where(c.expires_at <= _now_ms()))
        return int(result.rowcount)

    async def _commit(
        self, checks: Sequence[tuple[bytes, int | None]], mutations: Sequence[_Set | _Delete | _Sum]
    ) -> CommitResult:
        for attempt in range(_ATTEMPTS):
            versionstamp = _new_versionstamp()
            try:
                async with self._engine.begin() as conn:
                    await self._apply(conn, checks, mutations, versionstamp)
            except _Conflict:
                # Raised only by a check (see _apply), so ok=False always means a check failed.
                return CommitResult(ok=False)
            except _Retry as exc:
                if attempt + 1 < _ATTEMPTS:
                    await _backoff(attempt)
                    continue
                raise SerializationError(  # pragma: no cover (needs 400 lost races in a row)
                    "a sum's counter kept being created and deleted by other commits; "
                    "nothing was written, running the commit again may succeed",
                    dialect=self._dialect,
                ) from exc
            except sa.exc.DBAPIError as exc:
                error = parse_database_error(exc, self._dialect)
                # No statement of a commit should raise a unique violation any more (the
                # absent-check's own is turned into _Conflict, the writes are upserts); if one
                # does, it is a race that a new attempt resolves, never a failed check.
                if attempt + 1 < _ATTEMPTS and (
                    is_transient_error(exc) or isinstance(error, UniqueConstraintError)
                ):
                    await _backoff(attempt)
                    continue
                raise error from exc
            return CommitResult(ok=True, versionstamp=versionstamp)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _apply(
        self,
        conn: AsyncConnection,
        checks: Sequence[tuple[bytes, int | None]],
        mutations: Sequence[_Set | _Delete | _Sum],
        versionstamp: int,
    ) -> None:
        c = self._table.c
        now = _now_ms()
        # Each check is one conditional statement that also locks its row, so a racing commit
        # with the same expectation waits and then finds the row changed. "Absent" is checked by
        # inserting a placeholder row: a racer's INSERT of the same key fails (a conflict) or
        # waits for this transaction, so even a key that is only checked stays absent until
        # commit; the placeholder is removed at the end unless a mutation replaced it.
        # A dict, not a list: its membership test stays constant-time for a commit with
        # thousands of absent checks (and it keeps the checks' order).
        placeholders: dict[bytes, None] = {}
        for key, version in checks:
            if version is None:
                if key in placeholders:
                    continue
                await conn.execute(sa.delete(self._table).where(c.key == key, c.expires_at <= now))
                try:
                    await conn.execute(
                        sa.insert(self._table).values(
                            key=key, value="null", versionstamp=_PLACEHOLDER, expires_at=None
                        )
                    )
                except sa.exc.DBAPIError as exc:
                    # Only this statement's unique violation means "the key exists": the check
                    # failed. Other errors (a deadlock, a lost connection) go to _commit.
                    if isinstance(parse_database_error(exc, self._dialect), UniqueConstraintError):
                        raise _Conflict from exc
                    raise
                placeholders[key] = None
            else:
                touched = await conn.execute(
                    sa.update(self._table)
                    .where(c.key == key, c.versionstamp == version, self._live(now))
                    .values(versionstamp=c.versionstamp)
                )
                if touched.rowcount != 1:
                    raise _Conflict
        for mutation in mutations:
            if isinstance(mutation, _Delete):
                await conn.execute(sa.delete(self._table).where(c.key == mutation.key))
            elif isinstance(mutation, _Set):
                row = {
                    "key": mutation.key,
                    "value": mutation.value,
                    "versionstamp": versionstamp,
                    "expires_at": mutation.expires_at,
                }
                await conn.execute(self._upsert_statement, row)
            else:
                await self._sum(conn, mutation, versionstamp, now)
        for condition in self._key_in(list(placeholders)) if placeholders else ():
            await conn.execute(
                sa.delete(self._table).where(condition, c.versionstamp == _PLACEHOLDER)
            )

    async def _sum(
        self, conn: AsyncConnection, mutation: _Sum, versionstamp: int, now: int
    ) -> None:
        c = self._table.c
        for _ in range(_ATTEMPTS):
            # Lock the row first (a no-op UPDATE; on SQLite it also takes the write lock).
            locked = await conn.execute(
                sa.update(self._table)
                .where(c.key == mutation.key)
                .values(versionstamp=c.versionstamp)
            )
            if locked.rowcount != 0:
                break
            # Absent: create the counter. A racer may create it first; then this INSERT does
            # nothing (it must not raise: on PostgreSQL an error aborts the whole transaction,
            # and a unique violation here says nothing about this commit's checks), and the
            # next round locks the racer's row.
            inserted = await conn.execute(
                self._insert_if_absent_statement,
                {
                    "key": mutation.key,
                    "value": _dump(mutation.amount),
                    "versionstamp": versionstamp,
                    "expires_at": None,
                },
            )
            if inserted.rowcount == 1:
                return
        else:
            raise _Retry  # pragma: no cover (the row kept vanishing between the two statements)
        # A locking read: a plain SELECT on MySQL/MariaDB (REPEATABLE READ) would read the
        # transaction's snapshot, taken at its first read, and miss a racer's committed sum.
        row = (
            await conn.execute(
                sa.select(c.value, c.expires_at, c.versionstamp)
                .where(c.key == mutation.key)
                .with_for_update()
            )
        ).one()
        expired = row.expires_at is not None and row.expires_at <= now
        expired = expired or row.versionstamp == _PLACEHOLDER
        current = 0 if expired else json.loads(row.value)
        if isinstance(current, bool) or not isinstance(current, int):
            raise SumTypeError(
                f"sum needs an integer at {decode_key(mutation.key)!r}, found {current!r}"
            )
        await conn.execute(
            sa.update(self._table)
            .where(c.key == mutation.key)
            .values(
                value=_dump(current + mutation.amount),
                versionstamp=versionstamp,
                expires_at=None if expired else row.expires_at,
            )
        )


def _check_driver(engine: AsyncEngine) -> None:
    if engine.dialect.driver == "aiomysql":
        raise UnsupportedDriverError(
            "KV stores its keys as binary values, which aiomysql cannot send; use asyncmy "
            "(mysql+asyncmy://..., installed by kysera-core[mysql])"
        )


def _upsert_statement(table: sa.Table, dialect: str) -> sa.Executable:
    """``INSERT ... ON CONFLICT (key) DO UPDATE`` (``ON DUPLICATE KEY UPDATE`` on MySQL) of
    one entry, its values bound by column name."""
    if dialect in ("mysql", "mariadb"):
        mine = mysql.insert(table)
        return mine.on_duplicate_key_update(
            value=mine.inserted.value,
            versionstamp=mine.inserted.versionstamp,
            expires_at=mine.inserted.expires_at,
        )
    other = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return other.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "value": other.excluded.value,
            "versionstamp": other.excluded.versionstamp,
            "expires_at": other.excluded.expires_at,
        },
    )


def _insert_if_absent_statement(table: sa.Table, dialect: str) -> sa.Executable:
    """``INSERT ... ON CONFLICT (key) DO NOTHING`` (``INSERT IGNORE`` on MySQL) of one entry,
    its values bound by column name; its rowcount is 1 if it inserted, else 0."""
    if dialect in ("mysql", "mariadb"):
        # IGNORE also downgrades other errors to warnings, but every value here is one the
        # store made and checked (a bounded key, BIGINT versionstamp, NULL expiry).
        return sa.insert(table).prefix_with("IGNORE")
    other = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return other.on_conflict_do_nothing(index_elements=[table.c.key])


def _decode_cursor(cursor: object) -> bytes:
    refused = InvalidCursorError(f"not a KV.list cursor: {cursor!r}")
    if not isinstance(cursor, str):
        raise refused
    try:
        data = base64.urlsafe_b64decode(cursor.encode("ascii"))
        # Only the encoding of a real key is a cursor: this refuses "" (no key) and bytes that
        # merely decode (a bool byte other than 0/1, stray base64 characters dropped).
        valid = encode_key(decode_key(data)) == data
    except (binascii.Error, ValueError, IndexError, UnicodeError) as exc:
        raise refused from exc
    if not valid:
        raise refused
    return data


async def _backoff(attempt: int) -> None:
    await asyncio.sleep(min(0.2, 0.005 * 2**attempt) * random.random())
