"""load_migrations() reads NNN_name.py files; create_migration_file() scaffolds the next one."""

from __future__ import annotations

from pathlib import Path

import pytest

from kysera.migrations import (
    InvalidMigrationError,
    create_migration_file,
    file_checksum,
    load_migrations,
)

CREATE_USERS = '''"""Create the users table."""

import sqlalchemy as sa


async def up(conn):
    await conn.execute(sa.text("CREATE TABLE mig_users (id INTEGER PRIMARY KEY)"))


async def down(conn):
    await conn.execute(sa.text("DROP TABLE mig_users"))
'''

ADD_EMAIL = """description = "Add an email column"
breaking = True


async def up(conn):
    pass
"""


def write(directory: Path, name: str, text: str = ADD_EMAIL) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_files_load_in_numeric_order_with_their_metadata(tmp_path: Path) -> None:
    write(tmp_path, "001_create_users.py", CREATE_USERS)
    write(tmp_path, "010_add_email.py")
    write(tmp_path, "9_add_index.py")
    write(tmp_path, "__init__.py", "")
    write(tmp_path, "README.md", "not a migration")

    migrations = load_migrations(tmp_path)

    assert [m.name for m in migrations] == ["001_create_users", "9_add_index", "010_add_email"]
    users, _, email = migrations
    assert users.description == "Create the users table."
    assert users.down is not None
    assert users.breaking is False
    assert users.path == str(tmp_path / "001_create_users.py")
    assert users.checksum == file_checksum(tmp_path / "001_create_users.py")
    assert email.description == "Add an email column"
    assert email.breaking is True
    assert email.down is None


def test_the_checksum_covers_the_whole_file_but_not_line_endings(tmp_path: Path) -> None:
    path = write(tmp_path, "001_create_users.py", CREATE_USERS)
    original = load_migrations(tmp_path)[0].checksum

    path.write_bytes(CREATE_USERS.replace("\n", "\r\n").encode())
    assert load_migrations(tmp_path)[0].checksum == original

    path.write_text(CREATE_USERS.replace("PRIMARY KEY", "PRIMARY KEY, name TEXT"))
    assert load_migrations(tmp_path)[0].checksum != original


@pytest.mark.parametrize(
    "name", ["create_users.py", "001-create-users.py", "001_.py", "001_create users.py", "v1_x.py"]
)
def test_a_malformed_file_name_is_rejected(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name)

    with pytest.raises(InvalidMigrationError, match="malformed migration file name") as caught:
        load_migrations(tmp_path)

    assert caught.value.path == str(path)


def test_a_duplicate_number_is_rejected_naming_both_files(tmp_path: Path) -> None:
    write(tmp_path, "001_create_users.py", CREATE_USERS)
    write(tmp_path, "1_create_accounts.py", CREATE_USERS)

    with pytest.raises(InvalidMigrationError, match="duplicate migration number 1") as caught:
        load_migrations(tmp_path)

    assert "001_create_users.py" in str(caught.value)
    assert "1_create_accounts.py" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x = 1\n", "defines no 'async def up"),
        ("def up(conn):\n    pass\n", "must be defined with 'async def'"),
        ("async def up(conn):\n    pass\n\ndown = 3\n", "down must be an async function"),
        ("async def up(conn)\n", "SyntaxError"),
        ("import kysera_no_such_module\n", "ModuleNotFoundError"),
    ],
)
def test_a_broken_file_is_rejected_with_its_path(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "001_broken.py", text)

    with pytest.raises(InvalidMigrationError, match=message) as caught:
        load_migrations(tmp_path)

    assert caught.value.path == str(path)
    assert "001_broken.py" in str(caught.value)


def test_a_missing_directory_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidMigrationError, match="does not exist"):
        load_migrations(tmp_path / "nope")


def test_create_migration_file_takes_the_next_number(tmp_path: Path) -> None:
    first = create_migration_file(tmp_path / "migrations", "Create users!")
    second = create_migration_file(tmp_path / "migrations", "add users email")

    assert first.name == "001_create_users.py"
    assert second.name == "002_add_users_email.py"
    migrations = load_migrations(tmp_path / "migrations")
    assert [m.name for m in migrations] == ["001_create_users", "002_add_users_email"]
    assert migrations[0].description == "Create users."
    assert migrations[0].down is not None


def test_create_migration_file_keeps_the_directorys_number_width(tmp_path: Path) -> None:
    write(tmp_path, "00041_old.py")

    assert create_migration_file(tmp_path, "next").name == "00042_next.py"


def test_create_migration_file_needs_a_usable_name(tmp_path: Path) -> None:
    with pytest.raises(InvalidMigrationError, match="needs a letter or digit"):
        create_migration_file(tmp_path, "  --- ")
