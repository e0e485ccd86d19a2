"""migration(): defining migrations in code."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from kysera.migrations import InvalidMigrationError, functions_checksum, migration


async def up(conn: AsyncConnection) -> None:
    pass


async def down(conn: AsyncConnection) -> None:
    pass


def test_a_migration_keeps_its_parts() -> None:
    created = migration("001_create_users", up, down, description="users", breaking=True)

    assert created.name == "001_create_users"
    assert created.up is up
    assert created.down is down
    assert created.description == "users"
    assert created.breaking is True
    assert created.checksum == functions_checksum(up, down)
    assert created.path is None


def test_down_is_part_of_the_checksum() -> None:
    assert migration("001_x", up, down).checksum != migration("001_x", up).checksum


@pytest.mark.parametrize("name", ["", " 001_x", "001 x", "_001", "x" * 256, "001_x;--", 1])
def test_a_malformed_name_is_rejected(name: object) -> None:
    with pytest.raises(InvalidMigrationError, match="invalid migration name"):
        migration(name, up)  # type: ignore[arg-type]


def test_functions_must_be_async() -> None:
    def sync_up(conn: AsyncConnection) -> None:
        pass

    with pytest.raises(InvalidMigrationError, match="'async def'"):
        migration("001_x", sync_up)  # type: ignore[arg-type]
    with pytest.raises(InvalidMigrationError, match="down must be an async function"):
        migration("001_x", up, "DROP TABLE x")  # type: ignore[arg-type]
