"""The check that keeps the pytest plugin from dropping an application's tables.

`kysera_schema_fixture` drops tables named like the test's `MetaData` before creating them (an
interrupted run may have left them) and empties them before each test. Pointed by mistake at
the database an application migrated, that would lose its data. So before dropping anything
the plugin claims the database:

* a database the plugin marked as its own (a ``kysera_test_database`` table) is accepted,
  whatever it holds: tests there may well run migrations and leave their bookkeeping table;
* an unmarked database holding a migrations bookkeeping table (Kysera's or Alembic's) is
  refused, and so is one where one of the test's tables already exists;
* otherwise the database is marked, once, and is the plugin's to manage from then on.

Opting in (``kysera_allow_dropping_tables``, see docs/testing.md) skips the check.
"""

from __future__ import annotations

import sqlalchemy as sa

from kysera.core.testing.errors import NotATestDatabaseError

__all__: list[str] = []

MARKER_TABLE = "kysera_test_database"
"""Created by the plugin in a database it manages: leftover test tables there are its own."""

MIGRATION_TABLES = ("kysera_migrations", "alembic_version")
"""Bookkeeping tables of migration tools: their presence says "an application's database"."""

OPT_IN_HINT = (
    "use a dedicated test database (docs/testing.md), or, if these tables may be lost, opt in "
    "with the ini option kysera_allow_dropping_tables = true or "
    "KYSERA_TEST_ALLOW_DROPPING_TABLES=1"
)

_marker_metadata = sa.MetaData()
_marker = sa.Table(
    MARKER_TABLE,
    _marker_metadata,
    sa.Column("created_by", sa.String(100), nullable=False),
)


def database_label(connection: sa.Connection) -> str:
    """The database's URL without its password, for messages."""
    return connection.engine.url.render_as_string(hide_password=True)


def claim_test_database(connection: sa.Connection, metadata: sa.MetaData) -> None:
    """Refuse a database that is not the plugin's to drop tables in, else mark it as such.

    Args:
        connection: A connection to the database, in a transaction.
        metadata: The tables the plugin is about to drop and create.

    Raises:
        NotATestDatabaseError: The database is not marked and holds a migrations table or
            one of ``metadata``'s tables. Nothing was changed.
    """
    existing = set(sa.inspect(connection).get_table_names())
    if MARKER_TABLE in existing:
        return
    migrations = sorted(existing.intersection(MIGRATION_TABLES))
    if migrations:
        raise NotATestDatabaseError(
            f"kysera's pytest plugin refuses to drop or empty tables in "
            f"{database_label(connection)}: it holds the migrations table "
            f"{', '.join(migrations)}, so it looks like an application's database; "
            f"{OPT_IN_HINT}"
        )
    taken = sorted(existing.intersection(metadata.tables))
    if taken:
        raise NotATestDatabaseError(
            f"kysera's pytest plugin refuses to drop or empty tables in "
            f"{database_label(connection)}: it did not create the existing tables "
            f"{', '.join(taken)}; {OPT_IN_HINT}"
        )
    mark_test_database(connection)


def mark_test_database(connection: sa.Connection) -> None:
    """Create the marker table, so that later sessions know the database is the plugin's."""
    if sa.inspect(connection).has_table(MARKER_TABLE):
        return
    _marker_metadata.create_all(connection)
    connection.execute(_marker.insert().values(created_by="kysera pytest plugin"))
