"""Create the next numbered migration file (``kysera-migrate create NAME``)."""

from __future__ import annotations

import re
from pathlib import Path

from kysera.migrations.errors import InvalidMigrationError
from kysera.migrations.loader import MIGRATION_FILE_PATTERN

__all__ = ["create_migration_file"]

_TEMPLATE = '''"""{title}."""

from sqlalchemy.ext.asyncio import AsyncConnection


async def up(conn: AsyncConnection) -> None:
    # e.g. await conn.execute(sqlalchemy.text("ALTER TABLE users ADD COLUMN email TEXT"))
    pass


async def down(conn: AsyncConnection) -> None:
    # Revert what up() did; delete this function if the change cannot be reverted.
    pass
'''


def create_migration_file(directory: str | Path, name: str) -> Path:
    """Write ``directory/NNN_name.py`` with the next free number and empty ``up``/``down``.

    Numbers are zero-padded to three digits (or to the width the directory already uses).
    The directory is created if needed.

    Args:
        directory: The migrations directory.
        name: What the migration does, e.g. ``"add users email"``; it is lower-cased and
            runs of other characters become ``_`` (``add_users_email``).

    Returns:
        The path of the new file.

    Raises:
        InvalidMigrationError: ``name`` has no letter or digit, or the directory cannot be
            written.
    """
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not slug:
        raise InvalidMigrationError(f"invalid migration name {name!r}: it needs a letter or digit")
    root = Path(directory)
    numbers: list[int] = []
    width = 3
    if root.is_dir():
        for path in root.iterdir():
            match = MIGRATION_FILE_PATTERN.match(path.name)
            if match:
                numbers.append(int(match["number"]))
                width = max(width, len(match["number"]))
    path = root / f"{max(numbers, default=0) + 1:0{width}d}_{slug}.py"
    title = slug.replace("_", " ").capitalize()
    try:
        root.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as file:
            file.write(_TEMPLATE.format(title=title))
    except OSError as exc:
        raise InvalidMigrationError(
            f"cannot create {str(path)!r}: {exc.strerror or exc}", path=str(path)
        ) from exc
    return path
