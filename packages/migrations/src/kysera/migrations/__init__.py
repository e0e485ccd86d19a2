"""kysera.migrations: a migration runner that applies each migration exactly once."""

from kysera.migrations.errors import MigrationError as MigrationError

__all__ = ["MigrationError"]
