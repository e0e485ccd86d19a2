"""Which tables the plugin stamps, its options and its configuration errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from timestamps_support import T0, Clock, events, posts, tags

from kysera.core.testing import snapshot_table
from kysera.repository import PluginError, PluginRegistry, QueryContext, create_orm
from kysera.timestamps import TimestampsMixin, TimestampsPlugin, UTCDateTime


def stamped_table(name: str, metadata: sa.MetaData | None = None) -> sa.Table:
    return sa.Table(
        name,
        metadata or sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", UTCDateTime),
        sa.Column("updated_at", UTCDateTime),
    )


def intercepted(plugin: TimestampsPlugin, statement: Any, **options: Any) -> Any:
    registry = PluginRegistry([plugin])
    operation = "insert" if isinstance(statement, sa.Insert) else "update"
    return registry.intercept(QueryContext(operation, statement.table, statement, options))


def test_audit_and_migration_tables_are_never_stamped() -> None:
    plugin = TimestampsPlugin()
    for name in ("audit_logs", "kysera_migrations"):
        table = stamped_table(name)
        statement = sa.update(table).values(id=1)
        assert intercepted(plugin, statement) is statement
        assert not plugin.timestamps_table(table)
    assert plugin.timestamps_table(stamped_table("orders"))


def test_tables_and_exclude_tables_choose_the_tables() -> None:
    orders, invoices, notes = (stamped_table(n) for n in ("orders", "invoices", "notes"))
    only = TimestampsPlugin(tables=["orders", invoices])
    without = TimestampsPlugin(exclude_tables=["orders"])

    assert [only.timestamps_table(t) for t in (orders, invoices, notes)] == [True, True, False]
    assert [without.timestamps_table(t) for t in (orders, invoices, notes)] == [False, True, True]
    statement = sa.update(notes).values(id=1)
    assert intercepted(only, statement) is statement
    assert "updated_at" in str(intercepted(without, statement))


def test_schema_qualified_names_match_too() -> None:
    table = stamped_table("orders", sa.MetaData(schema="sales"))
    assert TimestampsPlugin(tables=["sales.orders"]).timestamps_table(table)
    assert not TimestampsPlugin(exclude_tables=["sales.orders"]).timestamps_table(table)


def test_custom_column_names() -> None:
    table = sa.Table(
        "docs",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("inserted", UTCDateTime),
        sa.Column("modified", UTCDateTime),
    )
    plugin = TimestampsPlugin(created_at="inserted", updated_at="modified")
    compiled = str(intercepted(plugin, sa.insert(table).values(id=1)))
    assert "inserted" in compiled
    assert "modified" in compiled


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"created_at": ""}, r"created_at=\.\.\.\) must be a column name"),
        ({"created_at": "at", "updated_at": "at"}, "must be two different columns"),
        ({"now": "2024-01-01"}, "must be a function returning a datetime"),
        ({"tables": "orders"}, "takes a list of table names"),
        ({"exclude_tables": [3]}, "takes table names or Table objects"),
        ({"tables": ["audit_logs"]}, "never timestamped"),
    ],
)
def test_invalid_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(PluginError, match=message) as raised:
        TimestampsPlugin(**options)
    assert raised.value.plugins == ("timestamps",)


async def test_misconfigured_tables_are_refused_when_the_repository_is_made(
    engine: AsyncEngine,
) -> None:
    strings = sa.Table(
        "ts_strings",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.String(30)),
    )
    orm = await create_orm(engine, plugins=[TimestampsPlugin(tables=["ts_tags", "ts_posts"])])
    with pytest.raises(PluginError, match="'ts_tags', which has neither"):
        orm.repository(tags)

    orm = await create_orm(engine, plugins=[TimestampsPlugin()])
    with pytest.raises(PluginError, match=r"ts_strings.created_at is VARCHAR\(30\), not a date"):
        orm.repository(strings)
    assert not isinstance(orm.repository(tags), TimestampsMixin)


async def test_tables_outside_the_scope_are_written_as_given(
    engine: AsyncEngine, clock: Clock
) -> None:
    orm = await create_orm(engine, plugins=[TimestampsPlugin(now=clock, tables=["ts_posts"])])
    repo = orm.repository(events)

    assert not isinstance(repo, TimestampsMixin)
    assert (await repo.create({"name": "signup"}))["created_at"] is None
    await orm.repository(posts).create({"slug": "a", "title": "A"})
    assert [r["created_at"] for r in await snapshot_table(engine, posts)] == [T0]


async def test_the_clock_is_converted_to_utc(engine: AsyncEngine) -> None:
    tokyo = timezone(timedelta(hours=9))
    local = datetime(2024, 3, 1, 21, 0, 0, 5, tzinfo=tokyo)
    orm = await create_orm(engine, plugins=[TimestampsPlugin(now=lambda: local)])

    row = await orm.repository(posts).create({"slug": "a", "title": "A"})

    assert row["created_at"] == local
    assert row["created_at"].utcoffset() == timedelta(0)
    assert row["created_at"].hour == 12


async def test_a_clock_returning_naive_datetimes_is_an_error(engine: AsyncEngine) -> None:
    orm = await create_orm(engine, plugins=[TimestampsPlugin(now=datetime.now)])

    with pytest.raises(PluginError, match="must return an aware datetime"):
        await orm.repository(posts).create({"slug": "a", "title": "A"})
    assert await snapshot_table(engine, posts) == []


async def test_the_default_clock_is_now_in_utc(engine: AsyncEngine) -> None:
    orm = await create_orm(engine, plugins=[TimestampsPlugin()])
    before = datetime.now(UTC)
    row = await orm.repository(posts).create({"slug": "a", "title": "A"})
    after = datetime.now(UTC)

    assert before <= row["created_at"] == row["updated_at"] <= after
