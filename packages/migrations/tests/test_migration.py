"""migration(): defining migrations in code."""

from __future__ import annotations

import functools

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from kysera.core import BadRequestError
from kysera.migrations import (
    InvalidMigrationError,
    MigrationChangedError,
    MigrationError,
    functions_checksum,
    migration,
)


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


async def create_table(conn: AsyncConnection, name: str) -> None:
    pass


def test_the_checksum_of_a_partial_is_stable_and_covers_its_arguments() -> None:
    users = migration("001_users", functools.partial(create_table, name="users"))
    again = migration("001_users", functools.partial(create_table, name="users"))
    posts = migration("001_users", functools.partial(create_table, name="posts"))

    assert users.checksum == again.checksum
    assert users.checksum != posts.checksum


def test_errors_say_what_went_wrong_as_json() -> None:
    invalid = InvalidMigrationError("bad file", path="migrations/x.py")
    assert isinstance(invalid, BadRequestError)
    assert invalid.to_dict() == {
        "code": "MIGRATION_INVALID",
        "message": "bad file",
        "path": "migrations/x.py",
    }

    changed = MigrationChangedError(["001_a", "002_b"])
    assert isinstance(changed, MigrationError)
    assert changed.to_dict()["changed"] == ["001_a", "002_b"]
    assert changed.to_dict()["code"] == "MIGRATION_CHANGED"

    failed = MigrationError("003_c", "down", ValueError("boom"))
    assert failed.to_dict() == {
        "code": "MIGRATION_ERROR",
        "message": "migration '003_c' (down) ValueError: boom",
        "name": "003_c",
        "direction": "down",
    }
    assert isinstance(failed.__cause__, ValueError)
