"""find_by_id and create on asyncpg: the same rows, errors and transactions as SQLAlchemy.

On PostgreSQL with asyncpg, a repository runs its prebuilt primary-key SELECT and one-row
``INSERT ... RETURNING`` on the prepared statement SQLAlchemy's adapter caches, skipping
SQLAlchemy's execution layer, whenever nothing could tell the difference. These tests pin
down "nothing could tell": the same values (with bind and result processors), the same
transaction, the same errors, and SQLAlchemy back in charge as soon as anyone listens.
``sqlalchemy_executions`` counts what SQLAlchemy executed, which is how the tests see which
path a statement took; on SQLite and MariaDB every statement is SQLAlchemy's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import itertools
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from pydantic import BaseModel
from repository_support import notes
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.core import (
    DatabaseConnectionError,
    KyseraError,
    NotFoundError,
    UniqueConstraintError,
    capture_queries,
)
from kysera.core.pytest_plugin import create_test_engine
from kysera.core.testing import FaultProxy
from kysera.repository import QueryContext, Repository, create_orm, create_repository, hookimpl

_NAMES = itertools.count()


class Lowercase(sa.TypeDecorator[str]):
    """Stores text lower-cased and reads it back with a marker: both processors visible."""

    impl = sa.String(50)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> str | None:
        return None if value is None else value.lower()

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> str | None:
        return None if value is None else f"<{value}>"


def gadgets_table() -> sa.Table:
    """A new table object (so its prebuilt statements are new) with processed column types."""
    number = next(_NAMES)
    return sa.Table(
        f"direct_gadgets_{number}",
        sa.MetaData(),
        sa.Column("code", Lowercase, primary_key=True),
        sa.Column("price", sa.Numeric(10, 2), nullable=False),
        sa.Column("ratio", sa.Float, nullable=True),
        sa.Column("tags", sa.JSON, nullable=True),
        sa.Column("token", sa.Uuid, nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("size", sa.Enum("small", "large", name=f"direct_size_{number}"), nullable=True),
    )


@asynccontextmanager
async def table_on(engine: AsyncEngine, table: sa.Table) -> AsyncIterator[sa.Table]:
    """``table`` created for the block (anew, should an interrupted run have left it)."""
    async with engine.begin() as connection:
        await connection.run_sync(table.metadata.drop_all)
        await connection.run_sync(table.metadata.create_all)
    try:
        yield table
    finally:
        async with engine.begin() as connection:
            await connection.run_sync(table.metadata.drop_all)


@pytest_asyncio.fixture(loop_scope="session")
async def gadgets(kysera_engine: AsyncEngine) -> AsyncIterator[sa.Table]:
    """A new table with two rows; tests ask for it before ``kysera_connection``, so the table
    is dropped after that connection's transaction has ended (DROP waits for its locks)."""
    table = gadgets_table()
    async with kysera_engine.begin() as connection:
        await connection.run_sync(table.metadata.drop_all)  # left by an interrupted run
        await connection.run_sync(table.metadata.create_all)
        await connection.execute(
            table.insert(),
            [
                {
                    "code": "ABC",
                    "price": decimal.Decimal("12.50"),
                    "ratio": 0.25,
                    "tags": {"colour": "red", "sizes": [1, 2]},
                    "token": uuid.UUID("12345678-1234-5678-1234-567812345678"),
                    "seen_at": dt.datetime(2026, 11, 21, 8, 30, tzinfo=dt.UTC),
                    "size": "large",
                },
                {
                    "code": "xyz",
                    "price": decimal.Decimal("1.00"),
                    "ratio": None,
                    "tags": None,
                    "token": None,
                    "seen_at": None,
                    "size": None,
                },
            ],
        )
    yield table
    async with kysera_engine.begin() as connection:
        await connection.run_sync(table.metadata.drop_all)


@pytest.fixture
def sqlalchemy_executions(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The statements SQLAlchemy executed through ``AsyncConnection.execute``."""
    executed: list[Any] = []
    execute = AsyncConnection.execute

    async def counting_execute(self: AsyncConnection, statement: Any, *args: Any, **kw: Any) -> Any:
        executed.append(statement)
        return await execute(self, statement, *args, **kw)

    monkeypatch.setattr(AsyncConnection, "execute", counting_execute)
    return executed


def direct(engine: AsyncEngine) -> bool:
    return engine.dialect.driver == "asyncpg"


async def expected_row(connection: AsyncConnection, table: sa.Table, code: str) -> dict[str, Any]:
    """The row as SQLAlchemy itself reads it."""
    result = await connection.execute(sa.select(table).where(table.c.code == code))
    return dict(result.one()._mapping)


async def test_repeated_reads_return_what_sqlalchemy_returns(
    gadgets: sa.Table, kysera_connection: AsyncConnection, sqlalchemy_executions: list[Any]
) -> None:
    repo = create_repository(kysera_connection, gadgets)
    wanted = await expected_row(kysera_connection, gadgets, "abc")
    assert wanted["code"] == "<abc>"

    # The key goes through the column's bind processor ("ABC" is stored as "abc") and every
    # value through its result processor, whichever path runs the statement.
    found = [await repo.find_by_id("ABC") for _ in range(4)]

    assert found == [wanted] * 4
    assert await repo.find_by_id("XYZ") == await expected_row(kysera_connection, gadgets, "xyz")
    assert await repo.find_by_id("missing") is None
    by_repository = [s for s in sqlalchemy_executions if isinstance(s, sa.Select)][2:]
    # SQLAlchemy runs the statement the first time it is seen; asyncpg directly afterwards.
    assert len(by_repository) == (1 if direct(kysera_connection) else 6)


async def test_entities_are_validated_on_the_direct_path(
    gadgets: sa.Table, kysera_connection: AsyncConnection
) -> None:
    class Gadget(BaseModel):
        code: str
        price: decimal.Decimal
        ratio: float | None
        tags: dict[str, Any] | None
        token: uuid.UUID | None
        seen_at: dt.datetime | None
        size: str | None

    repo = create_repository(kysera_connection, gadgets, entity=Gadget)
    first = await repo.find_by_id("ABC")
    again = await repo.find_by_id("ABC")

    assert first == again
    assert again is not None
    assert again.model_dump() == await expected_row(kysera_connection, gadgets, "abc")
    assert again.price == decimal.Decimal("12.50")
    assert again.tags == {"colour": "red", "sizes": [1, 2]}


async def test_listeners_see_every_read(
    kysera_database_url: str, gadgets: sa.Table, sqlalchemy_executions: list[Any]
) -> None:
    # An engine of its own, so that a listener left behind by a failure stays here.
    engine = create_test_engine(kysera_database_url)
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if gadgets.name in statement:
            seen.append(statement)

    async with engine.connect() as connection:
        repo = create_repository(connection, gadgets)
        await repo.find_by_id("ABC")
        await repo.find_by_id("ABC")  # direct on asyncpg from here on

        with capture_queries(connection) as captured:
            await repo.find_by_id("ABC")
        executed_before = len(sqlalchemy_executions)
        await repo.find_by_id("ABC")
        executed_after_capture = len(sqlalchemy_executions) - executed_before

        # A tracing listener on the engine (OpenTelemetry's, say) misses nothing.
        sa.event.listen(engine.sync_engine, "before_cursor_execute", record)
        await repo.find_by_id("ABC")
        await repo.find_by_id("XYZ")
        sa.event.remove(engine.sync_engine, "before_cursor_execute", record)
        executed_before = len(sqlalchemy_executions)
        await repo.find_by_id("ABC")
        executed_after_removal = len(sqlalchemy_executions) - executed_before
        await connection.rollback()
    await engine.dispose()

    assert [query.sql for query in captured.queries if gadgets.name in query.sql] != []
    # capture_queries switches its listeners off after the block: reads go direct again.
    assert executed_after_capture == (0 if direct(engine) else 1)
    assert len(seen) == 2
    # A removed listener no longer counts (SQLAlchemy keeps the engine's events flag set).
    assert executed_after_removal == (0 if direct(engine) else 1)


@pytest.mark.kysera_databases("postgresql", "mysql")
async def test_reads_stay_inside_the_transaction_snapshot(
    kysera_engine: AsyncEngine, gadgets: sa.Table, sqlalchemy_executions: list[Any]
) -> None:
    orm = await create_orm(kysera_engine)
    repo: Repository[Any] = orm.repository(gadgets)
    await repo.find_by_id("ABC")
    await repo.find_by_id("ABC")  # the statement is known: the next reads may go direct

    executed_before = len(sqlalchemy_executions)
    async with orm.transaction(isolation_level="REPEATABLE READ"):
        # The first read of the transaction must run inside it, not before its BEGIN.
        before = await repo.find_by_id("ABC")
        async with kysera_engine.begin() as other:
            await other.execute(gadgets.update().values(price=99))
        after = await repo.find_by_id("ABC")
    reads = [s for s in sqlalchemy_executions[executed_before:] if isinstance(s, sa.Select)]

    # asyncpg: SQLAlchemy runs the first read (and sends BEGIN), the second goes direct.
    assert len(reads) == (1 if direct(kysera_engine) else 2)
    assert before is not None
    assert after is not None
    assert after["price"] == before["price"] == decimal.Decimal("12.50")
    assert (await repo.find_by_id("ABC") or {})["price"] == decimal.Decimal("99.00")


@pytest.mark.kysera_databases("postgresql")
async def test_a_lost_connection_is_reported_and_invalidated(
    kysera_engine: AsyncEngine, gadgets: sa.Table, sqlalchemy_executions: list[Any]
) -> None:
    async with kysera_engine.connect() as connection:
        repo = create_repository(connection, gadgets)
        await repo.find_by_id("ABC")
        await repo.find_by_id("ABC")
        pid = await connection.scalar(sa.text("SELECT pg_backend_pid()"))
        async with kysera_engine.connect() as killer:
            await killer.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

        # Whether asyncpg has seen the socket close by now or only the server's last message
        # (a race the next test takes out), the connection is reported lost.
        executed_before = len(sqlalchemy_executions)
        with pytest.raises(DatabaseConnectionError) as raised:
            await repo.find_by_id("ABC")

        assert len(sqlalchemy_executions) == executed_before  # the direct path failed

        assert type(raised.value.__cause__).__module__.startswith("asyncpg")
        assert connection.invalidated  # the pool will not hand this connection out again


@pytest.mark.kysera_databases("postgresql")
@pytest.mark.parametrize("path", ["direct", "sqlalchemy"])
async def test_a_session_the_server_ended_is_lost_before_its_socket_closes(
    kysera_engine: AsyncEngine,
    kysera_database_url: str,
    kysera_fault_proxy: FaultProxy,
    gadgets: sa.Table,
    sqlalchemy_executions: list[Any],
    path: str,
) -> None:
    """The server's "terminating connection" message arrives, the close does not: asyncpg
    still calls the connection open, but no statement can run on it again."""
    proxy = kysera_fault_proxy
    engine = create_test_engine(proxy.url(kysera_database_url))
    try:
        async with engine.connect() as connection:
            repo = create_repository(connection, gadgets)
            await repo.find_by_id("ABC")
            await repo.find_by_id("ABC")  # direct from here on
            pid = await connection.scalar(sa.text("SELECT pg_backend_pid()"))
            proxy.hide_server_close()
            async with kysera_engine.connect() as killer:
                await killer.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await server_closed(proxy)

            # find_by_id's statement runs direct; count's first run is SQLAlchemy's.
            read = repo.find_by_id("ABC") if path == "direct" else repo.count()
            executed_before = len(sqlalchemy_executions)
            with pytest.raises(DatabaseConnectionError, match="server ended the session") as raised:
                await read

            ran_on_sqlalchemy = len(sqlalchemy_executions) - executed_before
            assert ran_on_sqlalchemy == (0 if path == "direct" else 1)
            assert raised.value.transient  # nothing was sent: running it again is safe
            assert connection.invalidated
        # The pool does not hand the dead connection out again.
        async with engine.connect() as connection:
            assert await create_repository(connection, gadgets).find_by_id("ABC") is not None
    finally:
        proxy.forward()
        await engine.dispose()


async def server_closed(proxy: FaultProxy) -> None:
    """Wait until the proxy hid a server's close, then for the client to read what came
    before it (the server's last message)."""
    await proxy.wait_fired()
    await asyncio.sleep(0.1)


@pytest.mark.kysera_databases("postgresql")
async def test_a_bad_key_raises_the_same_error_on_both_paths(
    kysera_connection: AsyncConnection,
) -> None:
    table = sa.Table(
        f"direct_numbers_{next(_NAMES)}",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
    )
    await kysera_connection.run_sync(table.metadata.create_all)
    repo = create_repository(kysera_connection, table)
    await repo.find_by_id(1)  # SQLAlchemy: first sighting
    await repo.find_by_id(1)  # direct from here on

    errors = []
    for _ in range(2):
        with pytest.raises(KyseraError) as raised:
            await repo.find_by_id("not a number")
        errors.append(raised.value)

    assert type(errors[0]) is type(errors[1])
    assert type(errors[0].__cause__) is type(errors[1].__cause__)
    # The driver refused the value before sending it: the transaction is still usable.
    assert await repo.find_by_id(1) is None


async def test_repeated_creates_store_and_return_what_sqlalchemy_would(
    gadgets: sa.Table, kysera_connection: AsyncConnection, sqlalchemy_executions: list[Any]
) -> None:
    repo = create_repository(kysera_connection, gadgets)

    created = [
        await repo.create({"code": f"NEW{n}", "price": decimal.Decimal(n)}) for n in range(4)
    ]
    # Another set of columns is another statement: compiled on its own.
    tagged = await repo.create({"code": "TAG", "price": 1, "tags": ["x"], "size": "small"})

    for n, row in enumerate(created):
        assert row == await expected_row(kysera_connection, gadgets, f"new{n}")
        assert row["code"] == f"<new{n}>"  # bind processor on the way in, result on the way out
        assert row["ratio"] is None
    assert tagged == await expected_row(kysera_connection, gadgets, "tag")
    inserts = [s for s in sqlalchemy_executions if isinstance(s, sa.Insert)]
    # SQLAlchemy runs each statement shape the first time; asyncpg directly afterwards.
    assert len(inserts) == (2 if direct(kysera_connection) else 5)


@pytest.mark.kysera_databases("postgresql")
async def test_a_refused_row_raises_the_classified_error_and_writes_nothing(
    gadgets: sa.Table, kysera_engine: AsyncEngine, sqlalchemy_executions: list[Any]
) -> None:
    repo = create_repository(kysera_engine, gadgets)
    await repo.create({"code": "one", "price": 1})
    await repo.create({"code": "two", "price": 2})
    executed_before = len(sqlalchemy_executions)

    with pytest.raises(UniqueConstraintError) as raised:
        await repo.create({"code": "ONE", "price": 3})  # stored lower-cased: a duplicate

    assert len(sqlalchemy_executions) == executed_before  # the direct path refused it
    assert raised.value.columns == ("code",)
    assert (await repo.find_by_id("one") or {})["price"] == decimal.Decimal("1.00")
    async with kysera_engine.begin() as connection:
        await connection.execute(gadgets.delete().where(gadgets.c.code.in_(["one", "two"])))


async def test_python_side_defaults_are_computed_by_sqlalchemy(
    kysera_engine: AsyncEngine, sqlalchemy_executions: list[Any]
) -> None:
    stamps = iter(range(100))
    table = sa.Table(
        f"direct_defaults_{next(_NAMES)}",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("serial", sa.Integer, nullable=False, default=lambda: next(stamps)),
    )
    async with table_on(kysera_engine, table):
        repo = create_repository(kysera_engine, table)
        created = [await repo.create({"id": n}) for n in range(3)]

    assert [row["serial"] for row in created] == [0, 1, 2]
    assert len([s for s in sqlalchemy_executions if isinstance(s, sa.Insert)]) == 3


@pytest.mark.kysera_databases("postgresql")
async def test_repositories_on_an_engine_go_direct_too(
    gadgets: sa.Table, kysera_engine: AsyncEngine, sqlalchemy_executions: list[Any]
) -> None:
    # Each call checks a connection out of the pool (SQLAlchemy applies the AUTOCOMMIT
    # isolation level through an engine_connect listener: not a statement event).
    repo = create_repository(kysera_engine, gadgets)
    for _ in range(3):
        assert (await repo.find_by_id("ABC") or {})["code"] == "<abc>"

    assert len([s for s in sqlalchemy_executions if isinstance(s, sa.Select)]) == 1


async def test_repeated_updates_write_and_return_what_sqlalchemy_would(
    kysera_engine: AsyncEngine, sqlalchemy_executions: list[Any]
) -> None:
    table = sa.Table(
        f"direct_notes_{next(_NAMES)}",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("body", Lowercase, nullable=False),
        sa.Column("price", sa.Numeric(10, 2), nullable=True),
    )
    async with table_on(kysera_engine, table):
        repo = create_repository(kysera_engine, table)
        await repo.create_many([{"id": 1, "body": "One"}, {"id": 2, "body": "Two"}])
        executed_before = len(sqlalchemy_executions)
        updated = [await repo.update(1, {"price": n}) for n in range(1, 4)]
        renamed = await repo.update(2, {"body": "Deux", "price": 2})  # other columns
        with pytest.raises(NotFoundError):
            await repo.update(3, {"price": 1})
        updates = [s for s in sqlalchemy_executions[executed_before:] if isinstance(s, sa.Update)]
        stored = await repo.find_by_id(2)

    assert [row["price"] for row in updated] == [decimal.Decimal(n) for n in range(1, 4)]
    assert updated[-1]["body"] == "<one>"
    assert renamed == stored
    assert renamed["body"] == "<deux>"  # bind processor on the way in, result on the way out
    # asyncpg: SQLAlchemy runs the first update of (price) and the one of (body, price); the
    # other two of (price) and the one that finds no row go direct.
    assert len(updates) == (2 if direct(kysera_engine) else 5)


async def test_onupdate_values_are_computed_by_sqlalchemy(
    kysera_engine: AsyncEngine, sqlalchemy_executions: list[Any]
) -> None:
    versions = iter(range(1, 100))
    table = sa.Table(
        f"direct_onupdate_{next(_NAMES)}",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("label", sa.String(20), nullable=False),
        sa.Column(
            "version", sa.Integer, nullable=False, default=0, onupdate=lambda: next(versions)
        ),
    )
    async with table_on(kysera_engine, table):
        repo = create_repository(kysera_engine, table)
        await repo.create({"id": 1, "label": "a"})
        updated = [await repo.update(1, {"label": f"v{n}"}) for n in range(3)]

    assert [row["version"] for row in updated] == [1, 2, 3]
    # Every update went through SQLAlchemy, which computes the onupdate value.
    assert len([s for s in sqlalchemy_executions if isinstance(s, sa.Update)]) == 3


async def test_execution_options_that_change_compilation_keep_sqlalchemys_path(
    gadgets: sa.Table, kysera_connection: AsyncConnection, sqlalchemy_executions: list[Any]
) -> None:
    translated = await kysera_connection.execution_options(schema_translate_map={None: None})
    repo = create_repository(translated, gadgets)

    found = [await repo.find_by_id("ABC") for _ in range(3)]

    assert found == [await expected_row(kysera_connection, gadgets, "abc")] * 3
    assert len([s for s in sqlalchemy_executions if isinstance(s, sa.Select)]) == 4


class CachedTenantScope:
    """Scopes reads to one tenant, reusing one filtered statement per statement and tenant
    (the pattern the plugin guide recommends for the direct path)."""

    name = "cached_tenant_scope"

    def __init__(self) -> None:
        self.tenant = 0
        self._scoped: weakref.WeakKeyDictionary[Any, dict[int, Any]] = weakref.WeakKeyDictionary()

    @hookimpl
    def kysera_intercept_query(self, context: QueryContext) -> Any:
        if context.operation != "select" or context.table is None:
            return None
        per_tenant = self._scoped.setdefault(context.statement, {})
        scoped = per_tenant.get(self.tenant)
        if scoped is None:
            condition = context.table.c.tenant_id == self.tenant
            scoped = per_tenant[self.tenant] = context.statement.where(condition)
        return scoped


async def test_a_plugin_reusing_its_rewritten_statements_keeps_the_direct_path(
    engine: AsyncEngine, sqlalchemy_executions: list[Any]
) -> None:
    async with engine.connect() as connection:
        rows = [{"id": 1, "tenant_id": 1, "body": "one"}, {"id": 2, "tenant_id": 2, "body": "two"}]
        await connection.execute(notes.insert(), rows)
        scope = CachedTenantScope()
        repo = (await create_orm(connection, plugins=[scope])).repository(notes)

        scope.tenant = 1
        mine = [await repo.find_by_id(1) for _ in range(3)]
        others = await repo.find_by_id(2)
        scope.tenant = 2
        theirs = [await repo.find_by_id(2) for _ in range(3)]
        await connection.rollback()

    assert [note["body"] for note in mine if note] == ["one"] * 3
    assert others is None
    assert [note["body"] for note in theirs if note] == ["two"] * 3
    reads = [s for s in sqlalchemy_executions if isinstance(s, sa.Select)]
    # One SQLAlchemy execution per tenant's statement; the rest go direct on asyncpg.
    assert len(reads) == (2 if direct(engine) else 7)


async def test_every_hot_read_returns_what_sqlalchemy_returns_when_repeated(
    gadgets: sa.Table, kysera_connection: AsyncConnection, sqlalchemy_executions: list[Any]
) -> None:
    # Multi-row reads and counts of a read shape: the same statement each time, run by
    # SQLAlchemy on first sight and on asyncpg afterwards, values processed either way.
    repo = create_repository(kysera_connection, gadgets)
    abc = await expected_row(kysera_connection, gadgets, "abc")
    xyz = await expected_row(kysera_connection, gadgets, "xyz")
    price = decimal.Decimal("5")
    before = len(sqlalchemy_executions)
    for _ in range(3):
        assert await repo.find({"price": {"$gte": price}}) == [abc]
        assert await repo.find({"price": {"$lt": price}}, columns=["code", "size"]) == [
            {"code": "<xyz>", "size": None}
        ]
        assert await repo.find_one({"code": "XYZ"}) == xyz
        assert await repo.count({"price": {"$gte": price}}) == 1
        assert await repo.exists({"code": "ABC"}) is True
        assert await repo.exists({"code": "nope"}) is False
        # $ne matches NULL too (docs/where.md): both rows count.
        found = await repo.find_and_count({"ratio": {"$ne": 0.5}}, order_by="code", limit=1)
        assert found == ([abc], 2)
        assert sorted((row["code"] for row in await repo.find_by_ids(["ABC", "XYZ"])), key=str) == [
            "<abc>",
            "<xyz>",
        ]
        page = await repo.paginate(1, 1, where={"price": {"$gt": decimal.Decimal("0")}})
        assert (page.items, page.total, page.has_next) == ([abc], 2, True)
        first = await repo.paginate_cursor(1, order_by="-price")
        after = await repo.paginate_cursor(1, after=first.next_cursor, order_by="-price")
        assert (first.items, after.items, after.next_cursor) == ([abc], [xyz], None)
    # 13 statements a round. On asyncpg SQLAlchemy runs each statement once, on first
    # sight: 12 (the two `exists` share their shape's statement); asyncpg runs the rest.
    executed = len(sqlalchemy_executions) - before
    assert executed == (12 if direct(kysera_connection) else 39)


async def test_captured_hot_reads_show_every_statement(
    gadgets: sa.Table, kysera_connection: AsyncConnection
) -> None:
    repo = create_repository(kysera_connection, gadgets)
    for _ in range(2):  # direct on asyncpg from the second round
        await repo.find({"price": {"$gte": decimal.Decimal("5")}})
        await repo.count({"code": "ABC"})
        await repo.paginate_cursor(1, order_by="code")

    with capture_queries(kysera_connection) as captured:
        await repo.find({"price": {"$gte": decimal.Decimal("5")}})
        await repo.count({"code": "ABC"})
        await repo.paginate_cursor(1, order_by="code")

    assert len([q for q in captured.queries if gadgets.name in q.sql]) == 3


@pytest.mark.kysera_databases("postgresql")
async def test_the_sqlalchemy_internals_the_direct_path_reads_are_there(
    kysera_connection: AsyncConnection,
) -> None:
    # The direct path reads a few private attributes of SQLAlchemy's asyncpg adapter and
    # connection; without them it silently stays on SQLAlchemy's path (correct, but slow).
    # A SQLAlchemy upgrade that renames one fails here, loudly.
    from kysera.core import _direct

    sync = kysera_connection.sync_connection
    assert sync is not None
    adapter = sync.connection.dbapi_connection
    for name in _direct._ADAPTER_INTERNALS:
        assert hasattr(adapter, name), name
    assert _direct._supported(adapter)
    for owner, name in [
        (sync, "_has_events"),
        (sync, "_echo"),
        (sync.engine, "_has_events"),
        (sync.dialect, "_has_events"),
        (sync.dialect, "_invalidate_schema_cache_asof"),
    ]:
        assert hasattr(owner, name), (owner, name)
    for name in _direct._STATEMENT_EVENTS:
        assert hasattr(sync.dispatch, name), name
    for name in _direct._DIALECT_STATEMENT_EVENTS:
        assert hasattr(sync.dialect.dispatch, name), name
