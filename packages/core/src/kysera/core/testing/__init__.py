"""kysera.core.testing: helpers for database tests that leave nothing behind.

See docs/testing.md. The pytest fixtures built on them live in `kysera.core.pytest_plugin`.
"""

from kysera.core.testing.cleanup import clean_database as clean_database
from kysera.core.testing.data import assert_row_exists as assert_row_exists
from kysera.core.testing.data import count_rows as count_rows
from kysera.core.testing.data import seed_database as seed_database
from kysera.core.testing.data import snapshot_table as snapshot_table
from kysera.core.testing.errors import ImplicitCommitError as ImplicitCommitError
from kysera.core.testing.errors import NotATestDatabaseError as NotATestDatabaseError
from kysera.core.testing.factory import Factory as Factory
from kysera.core.testing.faults import FaultProxy as FaultProxy
from kysera.core.testing.transactions import rollback_transaction as rollback_transaction
from kysera.core.testing.transactions import test_in_transaction as test_in_transaction
from kysera.core.testing.transactions import test_with_isolation as test_with_isolation
from kysera.core.testing.transactions import test_with_savepoints as test_with_savepoints
from kysera.core.testing.waiting import wait_for as wait_for

__all__ = [
    "Factory",
    "FaultProxy",
    "ImplicitCommitError",
    "NotATestDatabaseError",
    "assert_row_exists",
    "clean_database",
    "count_rows",
    "rollback_transaction",
    "seed_database",
    "snapshot_table",
    "test_in_transaction",
    "test_with_isolation",
    "test_with_savepoints",
    "wait_for",
]
