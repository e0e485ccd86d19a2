"""Load migrations from a directory of ``NNN_name.py`` files."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

from kysera.migrations.checksums import file_checksum
from kysera.migrations.errors import InvalidMigrationError
from kysera.migrations.migration import Migration, validate_function, validate_name

__all__ = ["load_migrations"]

MIGRATION_FILE_PATTERN = re.compile(r"^(?P<number>[0-9]+)_(?P<slug>[A-Za-z0-9_]+)\.py$")
"""A migration file name: a number, an underscore, a name: ``001_create_users.py``."""


def load_migrations(directory: str | Path) -> list[Migration]:
    """Load every migration file in ``directory``, ordered by number.

    Each ``NNN_name.py`` file defines ``async def up(conn)`` and optionally
    ``async def down(conn)``; it may set ``description`` (default: the module docstring) and
    ``breaking = True``. The migration's name is the file name without ``.py``. Files whose
    names start with ``_`` or ``.`` (``__init__.py``) and non-Python files are ignored.

    Args:
        directory: The migrations directory.

    Returns:
        The migrations, ordered by their number. The checksum of each covers its whole file.

    Raises:
        InvalidMigrationError: The directory does not exist; a file name does not match
            ``NNN_name.py``; two files share a number; a file fails to import or lacks an
            ``async def up``. The error's ``path`` names the file.
    """
    root = Path(directory)
    if not root.is_dir():
        raise InvalidMigrationError(
            f"migrations directory {str(root)!r} does not exist", path=str(root)
        )
    try:
        return _load_directory(root)
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidMigrationError(
            f"cannot read migrations in {str(root)!r}: {exc}", path=str(root)
        ) from exc


def _load_directory(root: Path) -> list[Migration]:
    numbered: dict[int, Path] = {}
    for path in sorted(root.iterdir()):
        if path.suffix != ".py" or path.name.startswith(("_", ".")) or not path.is_file():
            continue
        match = MIGRATION_FILE_PATTERN.match(path.name)
        if match is None:
            raise InvalidMigrationError(
                f"malformed migration file name {path.name!r} in {str(root)!r}: expected "
                "NNN_name.py (a number, an underscore, then letters, digits and underscores)",
                path=str(path),
            )
        number = int(match["number"])
        if number in numbered:
            raise InvalidMigrationError(
                f"duplicate migration number {number} in {str(root)!r}: "
                f"{numbered[number].name!r} and {path.name!r}",
                path=str(path),
            )
        numbered[number] = path
    return [_load_file(numbered[number]) for number in sorted(numbered)]


def _load_file(path: Path) -> Migration:
    name = path.stem
    validate_name(name, path=str(path))
    module = _import_file(path)
    up = getattr(module, "up", None)
    if up is None:
        raise InvalidMigrationError(
            f"migration file {str(path)!r} defines no 'async def up(conn)'", path=str(path)
        )
    validate_function(name, "up", up, path=str(path))
    down = getattr(module, "down", None)
    if down is not None:
        validate_function(name, "down", down, path=str(path))
    description = getattr(module, "description", None) or (module.__doc__ or "").strip()
    return Migration(
        name=name,
        up=up,
        down=down,
        description=str(description),
        breaking=bool(getattr(module, "breaking", False)),
        checksum=file_checksum(path),
        path=str(path),
    )


def _import_file(path: Path) -> ModuleType:
    # A unique module name per file: several directories may hold a "001_init.py".
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    module_name = f"_kysera_migration_{digest}_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has a loader
        raise InvalidMigrationError(f"cannot load migration file {str(path)!r}", path=str(path))
    module = importlib.util.module_from_spec(spec)
    # Registered so that dataclasses, pickling and tracebacks inside the file work as usual.
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise InvalidMigrationError(
            f"cannot load migration file {str(path)!r}: {type(exc).__name__}: {exc}",
            path=str(path),
        ) from exc
    return module
