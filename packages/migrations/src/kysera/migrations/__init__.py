"""kysera.migrations: a migration runner that applies each migration exactly once."""

from kysera.migrations.checksums import file_checksum as file_checksum
from kysera.migrations.checksums import functions_checksum as functions_checksum
from kysera.migrations.errors import InvalidMigrationError as InvalidMigrationError
from kysera.migrations.errors import MigrationChangedError as MigrationChangedError
from kysera.migrations.errors import MigrationError as MigrationError
from kysera.migrations.hooks import MigrationHookSpec as MigrationHookSpec
from kysera.migrations.hooks import hookimpl as hookimpl
from kysera.migrations.hooks import hookspec as hookspec
from kysera.migrations.loader import load_migrations as load_migrations
from kysera.migrations.locking import advisory_lock_key as advisory_lock_key
from kysera.migrations.migration import Direction as Direction
from kysera.migrations.migration import Migration as Migration
from kysera.migrations.migration import MigrationFunction as MigrationFunction
from kysera.migrations.migration import migration as migration
from kysera.migrations.results import AppliedMigration as AppliedMigration
from kysera.migrations.results import MigrationResult as MigrationResult
from kysera.migrations.results import MigrationStatus as MigrationStatus
from kysera.migrations.runner import MigrationRunner as MigrationRunner
from kysera.migrations.scaffold import create_migration_file as create_migration_file

__all__ = [
    "AppliedMigration",
    "Direction",
    "InvalidMigrationError",
    "Migration",
    "MigrationChangedError",
    "MigrationError",
    "MigrationFunction",
    "MigrationHookSpec",
    "MigrationResult",
    "MigrationRunner",
    "MigrationStatus",
    "advisory_lock_key",
    "create_migration_file",
    "file_checksum",
    "functions_checksum",
    "hookimpl",
    "hookspec",
    "load_migrations",
    "migration",
]
