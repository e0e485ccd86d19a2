"""The audit table is valid DDL on every dialect, created directly or by the migration."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.audit import audit_log_table, audit_migration, create_audit_table

COLUMNS = {
    "id",
    "table_name",
    "entity_id",
    "operation",
    "old_values",
    "new_values",
    "changed_fields",
    "changed_by",
    "changed_at",
    "metadata",
}
JSON_TYPE = {"postgresql": "JSONB", "mysql": "JSON", "sqlite": "JSON"}


async def inspect_table(engine: AsyncEngine, name: str) -> dict[str, str]:
    async with engine.connect() as connection:
        columns = await connection.run_sync(lambda sync: sa.inspect(sync).get_columns(name))
    return {column["name"]: str(column["type"]) for column in columns}


async def test_create_audit_table_creates_the_documented_columns(
    kysera_engine: AsyncEngine,
) -> None:
    table = await create_audit_table(kysera_engine, "au_ddl_logs")
    try:
        await create_audit_table(kysera_engine, "au_ddl_logs")  # idempotent
        columns = await inspect_table(kysera_engine, "au_ddl_logs")
        assert set(columns) == COLUMNS
        dialect = kysera_engine.dialect.name
        json_type = JSON_TYPE[dialect]
        if dialect == "mysql" and kysera_engine.dialect.is_mariadb:
            json_type = "LONGTEXT"  # MariaDB's JSON is an alias of LONGTEXT with a JSON check
        assert columns["old_values"] == json_type
        assert columns["metadata"] == json_type
    finally:
        async with kysera_engine.begin() as connection:
            await connection.run_sync(table.drop)


async def test_the_migration_creates_and_drops_the_table(kysera_engine: AsyncEngine) -> None:
    up, down = audit_migration("au_migrated_logs")
    async with kysera_engine.begin() as connection:
        await up(connection)
    assert set(await inspect_table(kysera_engine, "au_migrated_logs")) == COLUMNS
    async with kysera_engine.begin() as connection:
        await down(connection)
    async with kysera_engine.connect() as connection:
        names = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    assert "au_migrated_logs" not in names


async def test_metadata_gets_the_table_defined_once() -> None:
    metadata = sa.MetaData()
    table = await create_audit_table(metadata, "logs")
    assert audit_log_table(metadata, "logs") is table
    assert set(table.c.keys()) == COLUMNS


async def test_the_migration_runs_under_kysera_migrations(kysera_engine: AsyncEngine) -> None:
    from kysera import migrations  # test-only requirement ([dependency-groups] test)

    up, down = audit_migration("au_runner_logs")
    runner = migrations.MigrationRunner(
        kysera_engine,
        [migrations.migration("001_audit_logs", up=up, down=down)],
        table="au_migrations",
    )
    try:
        result = await runner.up()
        assert result.applied == ("001_audit_logs",)
        assert set(await inspect_table(kysera_engine, "au_runner_logs")) == COLUMNS
        await runner.down(steps=1)
        async with kysera_engine.connect() as connection:
            names = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
        assert "au_runner_logs" not in names
    finally:
        async with kysera_engine.begin() as connection:
            await connection.execute(sa.text("DROP TABLE IF EXISTS au_migrations"))
            await connection.execute(sa.text("DROP TABLE IF EXISTS au_runner_logs"))
