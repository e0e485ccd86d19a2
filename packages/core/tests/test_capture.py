"""capture_queries records the SQL the driver really received, on every dialect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import (
    BadRequestError,
    CapturedQuery,
    QueryProfiler,
    UniqueConstraintError,
    capture_queries,
    classify_database_errors,
    format_sql,
)

metadata = sa.MetaData()
authors = sa.Table(
    "cap_authors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(50), nullable=False, unique=True),
)
books = sa.Table(
    "cap_books",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("author_id", sa.Integer, sa.ForeignKey("cap_authors.id"), nullable=False),
    sa.Column("title", sa.String(100), nullable=False),
)

# The first placeholder each driver's paramstyle puts in the SQL it receives.
FIRST_PLACEHOLDER = {"numeric_dollar": "$1", "qmark": "?", "format": "%s", "pyformat": "%("}


@pytest.fixture
async def engine(kysera_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    async with kysera_engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(
            sa.insert(authors), [{"id": 1, "name": "Le Guin"}, {"id": 2, "name": "Lem"}]
        )
        await conn.execute(
            sa.insert(books),
            [
                {"id": 1, "author_id": 1, "title": "The Dispossessed"},
                {"id": 2, "author_id": 1, "title": "The Lathe of Heaven"},
                {"id": 3, "author_id": 2, "title": "Solaris"},
            ],
        )
    try:
        yield kysera_engine
    finally:
        async with kysera_engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)


async def test_records_the_sql_as_sent_with_its_parameters(engine: AsyncEngine) -> None:
    before = datetime.now(UTC)
    async with capture_queries(engine) as captured, engine.connect() as conn:
        row = (await conn.execute(sa.select(books.c.title).where(books.c.id == 3))).one()

    assert row.title == "Solaris"
    assert captured.count == 1
    [query] = captured.queries
    assert isinstance(query, CapturedQuery)
    assert query.sql.startswith("SELECT cap_books.title")
    assert FIRST_PLACEHOLDER[engine.dialect.paramstyle] in query.sql
    assert list(query.params) == [3]
    assert query.error is None
    assert query.duration_ms > 0
    assert before <= query.started_at <= datetime.now(UTC)
    assert not query.executemany


async def test_records_rowcount_and_executemany(engine: AsyncEngine) -> None:
    async with capture_queries(engine) as captured, engine.begin() as conn:
        await conn.execute(sa.update(books).where(books.c.author_id == 1).values(title="x"))
        await conn.execute(
            sa.insert(authors), [{"id": 10, "name": "Banks"}, {"id": 11, "name": "Butler"}]
        )

    update, insert = captured.queries[0], captured.queries[-1]
    assert update.sql.startswith("UPDATE cap_books")
    assert update.rowcount == 2
    assert insert.sql.startswith("INSERT INTO cap_authors")
    rows_sent = insert.params if insert.executemany else [insert.params]
    assert sum(len(params) for params in rows_sent) == 4  # two rows of (id, name)


async def test_failed_statements_are_recorded_with_a_classified_error(
    engine: AsyncEngine,
) -> None:
    async with capture_queries(engine) as captured:
        with pytest.raises(UniqueConstraintError):
            async with engine.begin() as conn, classify_database_errors():
                await conn.execute(sa.insert(authors).values(id=3, name="Lem"))

    failed = [query for query in captured.queries if query.error is not None]
    assert len(failed) == 1
    assert failed[0].sql.startswith("INSERT INTO cap_authors")
    assert isinstance(failed[0].error, UniqueConstraintError)
    assert captured.summary().errors == 1


async def test_on_a_connection_only_that_connection_is_recorded(engine: AsyncEngine) -> None:
    async with (
        engine.connect() as watched,
        engine.connect() as other,
        capture_queries(watched) as captured,
    ):
        await watched.execute(sa.select(authors.c.name).where(authors.c.id == 1))
        await other.execute(sa.select(books.c.title).where(books.c.id == 1))

    assert [query.sql.split()[1] for query in captured.queries] == ["cap_authors.name"]


async def test_assert_count_lists_the_statements_of_an_n_plus_one(engine: AsyncEngine) -> None:
    async def titles_by_author_one_query_per_author(engine: AsyncEngine) -> dict[str, int]:
        async with engine.connect() as conn:
            names = (await conn.execute(sa.select(authors).order_by(authors.c.id))).all()
            return {
                name: len(
                    (await conn.execute(sa.select(books).where(books.c.author_id == id_))).all()
                )
                for id_, name in names
            }

    async with capture_queries(engine) as captured:
        assert await titles_by_author_one_query_per_author(engine) == {"Le Guin": 2, "Lem": 1}

    with pytest.raises(AssertionError) as failure:
        captured.assert_count(1)
    message = str(failure.value)
    assert message.startswith("expected 1 statement(s), 3 ran:")
    assert message.count("FROM cap_books") == 2
    assert "  1. SELECT cap_authors.id, cap_authors.name FROM cap_authors ORDER BY" in message
    captured.assert_count(3)


async def test_the_buffer_keeps_only_the_newest_statements(engine: AsyncEngine) -> None:
    async with capture_queries(engine, max_queries=2) as captured, engine.connect() as conn:
        for id_ in (1, 2, 3):
            await conn.execute(sa.select(books.c.title).where(books.c.id == id_))

    assert captured.count == 3
    assert [list(query.params) for query in captured.queries] == [[2], [3]]
    assert captured.summary().total == 3
    with pytest.raises(AssertionError, match="1 older statement"):
        captured.assert_count(2)


async def test_nothing_is_recorded_after_the_block(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine
    had_events = sync_engine._has_events
    async with capture_queries(engine) as captured, engine.connect() as conn:
        await conn.execute(sa.select(authors.c.id))
        assert captured.attached
        assert sync_engine._has_events

    async with engine.connect() as conn:
        await conn.execute(sa.select(books.c.id))
    assert not captured.attached
    assert captured.count == 1
    # The engine is back to its event-free fast path.
    assert sync_engine._has_events == had_events


async def test_sync_with_block_on_an_async_engine(engine: AsyncEngine) -> None:
    with capture_queries(engine) as captured:
        async with engine.connect() as conn:
            await conn.execute(sa.select(authors.c.id))
    captured.assert_count(1)


async def test_concurrent_connections_are_all_recorded(engine: AsyncEngine) -> None:
    async def fetch(id_: int) -> str:
        async with engine.connect() as conn:
            title: str = (
                await conn.execute(sa.select(books.c.title).where(books.c.id == id_))
            ).scalar_one()
            return title

    async with capture_queries(engine) as captured:
        titles = await asyncio.gather(*(fetch(id_) for id_ in (1, 2, 3, 1, 2, 3)))

    assert len(titles) == 6
    assert captured.count == 6
    assert all(query.error is None for query in captured.queries)


async def test_slow_queries_reach_the_callback(engine: AsyncEngine) -> None:
    slow: list[CapturedQuery] = []
    async with engine.connect() as conn:
        # A threshold of 0 ms makes every statement slow; one of an hour, none.
        async with capture_queries(conn, slow_query_ms=0, on_slow_query=slow.append):
            await conn.execute(sa.select(authors.c.id))
            await conn.execute(sa.select(books.c.id))
        async with capture_queries(conn, slow_query_ms=3_600_000, on_slow_query=slow.append):
            await conn.execute(sa.select(authors.c.id))
    assert [query.sql.split()[-1] for query in slow] == ["cap_authors", "cap_books"]


async def test_a_failing_slow_query_callback_does_not_fail_the_query(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(query: CapturedQuery) -> None:
        raise RuntimeError("callback bug")

    slow_is_everything = capture_queries(engine, slow_query_ms=0, on_slow_query=explode)
    async with slow_is_everything as captured, engine.connect() as conn:
        result = await conn.execute(sa.select(authors.c.id).where(authors.c.id == 1))
        assert result.scalar_one() == 1
    assert captured.count == 1
    assert "on_slow_query callback failed" in caplog.text


async def test_summary_and_slowest(engine: AsyncEngine) -> None:
    async with capture_queries(engine) as captured, engine.connect() as conn:
        for _ in range(5):
            await conn.execute(sa.select(books.c.id))

    summary = captured.summary()
    durations = sorted(query.duration_ms for query in captured.queries)
    assert summary.total == 5
    assert summary.total_ms == pytest.approx(sum(durations))
    assert summary.avg_ms == pytest.approx(sum(durations) / 5)
    assert durations[0] <= summary.p95_ms <= summary.p99_ms <= durations[-1]
    assert summary.slowest is not None
    assert summary.slowest.duration_ms == durations[-1]
    assert [query.duration_ms for query in captured.slowest(2)] == durations[:-3:-1]


async def test_profiler_attach_detach_for_long_running_use(engine: AsyncEngine) -> None:
    profiler = QueryProfiler(engine)
    async with engine.connect() as conn:
        await conn.execute(sa.select(authors.c.id))  # before attach: not recorded
        profiler.attach()
        profiler.attach()  # idempotent
        await conn.execute(sa.select(books.c.id))
        profiler.detach()
        profiler.detach()
        await conn.execute(sa.select(authors.c.id))  # after detach: not recorded
    profiler.assert_count(1)
    profiler.clear()
    assert profiler.count == 0
    assert profiler.queries == []
    assert profiler.summary().slowest is None


def test_empty_summary() -> None:
    engine = sa.create_engine("sqlite://")
    with capture_queries(engine) as captured:
        pass
    summary = captured.summary()
    assert (summary.total, summary.total_ms, summary.avg_ms, summary.p95_ms) == (0, 0.0, 0.0, 0.0)
    captured.assert_count(0)


def test_sync_engine_and_connection() -> None:
    engine = sa.create_engine("sqlite://")
    with engine.connect() as conn, capture_queries(conn) as captured:
        conn.execute(sa.text("SELECT 1"))
    assert [query.sql for query in captured.queries] == ["SELECT 1"]


async def test_bad_arguments_raise_bad_request(kysera_engine: AsyncEngine) -> None:
    with pytest.raises(BadRequestError, match="max_queries"):
        capture_queries(kysera_engine, max_queries=0)
    with pytest.raises(BadRequestError, match="started AsyncConnection"):
        capture_queries(kysera_engine.connect())
    with pytest.raises(BadRequestError, match="engine or a connection"):
        capture_queries("sqlite://")  # type: ignore[arg-type]


def test_format_sql_reindents_and_upper_cases_keywords() -> None:
    formatted = format_sql("select a, b from t where a = $1 and b in (select c from u)")
    lines = formatted.splitlines()
    assert lines[0] == "SELECT a,"
    assert "FROM t" in lines
    assert "$1" in formatted
    assert formatted.count("SELECT") == 2


async def test_nested_captures_each_record_their_own_block(engine: AsyncEngine) -> None:
    async with capture_queries(engine) as outer, engine.connect() as conn:
        await conn.execute(sa.select(authors.c.id))
        async with capture_queries(conn) as inner:
            await conn.execute(sa.select(books.c.id))
        await conn.execute(sa.select(authors.c.name))
        assert engine.sync_engine._has_events  # the outer capture still listens

    assert [query.sql.split()[1] for query in outer.queries] == [
        "cap_authors.id",
        "cap_books.id",
        "cap_authors.name",
    ]
    assert [query.sql.split()[1] for query in inner.queries] == ["cap_books.id"]
