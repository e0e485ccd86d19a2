"""`MigrationRunner`: applies and reverts migrations, each exactly once, under a lock."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.core import BadRequestError, classify_database_errors
from kysera.migrations.bookkeeping import DEFAULT_TABLE, BookkeepingTable
from kysera.migrations.errors import InvalidMigrationError, MigrationChangedError, MigrationError
from kysera.migrations.hooks import MigrationHooks
from kysera.migrations.locking import connect, dialect_family, locked_connection
from kysera.migrations.migration import Direction, Migration
from kysera.migrations.results import AppliedMigration, MigrationResult, MigrationStatus
from kysera.migrations.transactions import migration_transaction

__all__ = ["MigrationRunner"]

logger = logging.getLogger("kysera.migrations")
# A library logs, the application decides where to: without this, Python's last-resort
# handler would print failures to stderr a second time next to the raised error.
logger.addHandler(logging.NullHandler())

_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_SUPPORTED_DIALECTS = ("postgresql", "mysql", "sqlite")


class MigrationRunner:
    """Applies migrations to a database and reverts them, recording each in a table.

    Every run (``up``, ``up_to``, ``down``, ``reset``) takes a database-level lock first, so
    several processes may run the same migrations at once: each migration is applied exactly
    once and the others wait, then find it applied. Each migration runs in its own
    transaction together with its bookkeeping row (atomic on PostgreSQL and SQLite; on
    MySQL/MariaDB DDL commits implicitly, see docs/migrations.md).

    Args:
        engine: The database to migrate. The runner opens its own connection and
            transactions, so it takes an engine, not a connection.
        migrations: The migrations, in the order they apply (`load_migrations()` orders
            files by number). Names must be unique.
        table: The bookkeeping table's name.
        dry_run: Change nothing: ``up``/``down``/``reset`` report what they would run
            (``result.applied``) without taking the lock, creating the table or running
            hooks. The same checks run, so a dry run fails where the real run would.
        allow_changed: Let ``up`` run although applied migrations' code changed (by
            default it raises `MigrationChangedError`).
        lock_timeout: Seconds to wait for another run's lock; ``None`` waits as long as
            it takes. Running out raises `kysera.core.LockTimeoutError`.
        plugins: Objects implementing the hooks of `kysera.migrations.hooks`.

    Raises:
        BadRequestError: ``engine`` is not an ``AsyncEngine`` of PostgreSQL, MySQL/MariaDB or
            SQLite, or ``lock_timeout`` is negative.
        InvalidMigrationError: Duplicate migration names, an invalid table name or plugin.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        migrations: Iterable[Migration],
        table: str = DEFAULT_TABLE,
        dry_run: bool = False,
        *,
        allow_changed: bool = False,
        lock_timeout: float | None = None,
        plugins: Sequence[object] = (),
    ) -> None:
        if not isinstance(engine, AsyncEngine):
            raise BadRequestError(
                "MigrationRunner needs an AsyncEngine (it opens its own connection and one "
                f"transaction per migration); got {type(engine).__name__}"
            )
        if dialect_family(engine) not in _SUPPORTED_DIALECTS:
            raise BadRequestError(
                f"kysera-migrations supports PostgreSQL, MySQL/MariaDB and SQLite, not "
                f"{engine.dialect.name!r}: it has no database-level lock for the others"
            )
        if lock_timeout is not None and not lock_timeout >= 0:
            raise BadRequestError(
                f"lock_timeout must be a number of seconds >= 0 or None, got {lock_timeout!r}"
            )
        if not isinstance(table, str) or not _TABLE_NAME.match(table):
            raise InvalidMigrationError(
                f"invalid bookkeeping table name {table!r}: use letters, digits and '_', "
                "at most 63 characters"
            )
        ordered = list(migrations)
        by_name: dict[str, Migration] = {}
        for item in ordered:
            if not isinstance(item, Migration):
                raise InvalidMigrationError(
                    f"expected Migration objects (from migration() or load_migrations()), "
                    f"got {item!r}"
                )
            if item.name in by_name:
                raise InvalidMigrationError(f"duplicate migration name {item.name!r}")
            by_name[item.name] = item
        self._engine = engine
        self._migrations = tuple(ordered)
        self._by_name = by_name
        self._bookkeeping = BookkeepingTable(table)
        self._dry_run = dry_run
        self._allow_changed = allow_changed
        self._lock_timeout = lock_timeout
        self._hooks = MigrationHooks(plugins)
        self._dialect = dialect_family(engine)

    @property
    def migrations(self) -> tuple[Migration, ...]:
        """The migrations this runner knows, in order."""
        return self._migrations

    @property
    def table(self) -> str:
        """The bookkeeping table's name."""
        return self._bookkeeping.name

    @property
    def dry_run(self) -> bool:
        """Whether this runner only reports what it would do."""
        return self._dry_run

    async def status(self) -> MigrationStatus:
        """Compare the database with the code; read-only (creates nothing).

        Returns:
            Applied (by id), pending (in code order), changed and missing migrations.

        Raises:
            DatabaseError: The database failed (classified).
        """
        return self._status_of(await self._read_snapshot())

    async def up(self) -> MigrationResult:
        """Apply every pending migration, in order.

        Returns:
            ``applied``: what this call applied; ``skipped``: what was applied already.

        Raises:
            MigrationChangedError: Applied migrations' code changed (and not ``allow_changed``);
                nothing ran.
            MigrationError: A migration failed; it was rolled back (see the dialect notes),
                earlier ones stay applied, ``error.result`` tells what ran.
            LockTimeoutError: Another run held the lock longer than ``lock_timeout``.
            DatabaseError: The database failed outside any migration (classified).
        """
        return await self._up(len(self._migrations))

    async def up_to(self, name: str) -> MigrationResult:
        """Apply pending migrations up to and including ``name``.

        Args:
            name: A migration name; nothing after it in the order is applied.

        Raises:
            InvalidMigrationError: No migration is called ``name``.
            MigrationChangedError, MigrationError, LockTimeoutError, DatabaseError: As for
                `up`.
        """
        for index, item in enumerate(self._migrations):
            if item.name == name:
                return await self._up(index + 1)
        raise InvalidMigrationError(
            f"unknown migration {name!r}; the known ones are: "
            + (", ".join(item.name for item in self._migrations) or "(none)")
        )

    async def down(self, steps: int = 1) -> MigrationResult:
        """Roll back the ``steps`` most recently applied migrations, newest first.

        Every one of them must be in the code and have a ``down()``; this is checked before
        anything runs.

        Args:
            steps: How many to roll back (at least 1; more than are applied rolls back all).

        Returns:
            ``applied``: the migrations rolled back, in the order they were.

        Raises:
            BadRequestError: ``steps`` is not a positive integer.
            MigrationError: A migration has no ``down()``, is missing from the code, or
                failed (it was rolled back; ``error.result`` tells what ran).
            LockTimeoutError, DatabaseError: As for `up`.
        """
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise BadRequestError(f"steps must be a positive integer, got {steps!r}")
        return await self._down(steps)

    async def reset(self) -> MigrationResult:
        """Roll back every applied migration, newest first (``down`` with no limit).

        Raises:
            MigrationError, LockTimeoutError, DatabaseError: As for `down`.
        """
        return await self._down(None)

    async def accept_changes(self) -> tuple[str, ...]:
        """Record the current code of changed applied migrations as what was applied.

        After an intentional edit (a comment, a fix that must not run again), this makes
        ``status()`` stop reporting the migrations as changed and lets ``up`` run without
        ``allow_changed``. Nothing is re-run. With ``dry_run`` it only reports them.

        Returns:
            The names of the migrations whose checksum was updated (or would be).

        Raises:
            LockTimeoutError, DatabaseError: As for `up`.
        """
        if self._dry_run:
            return tuple(self._changed(await self._read_snapshot()))
        async with (
            locked_connection(self._engine, self.table, self._lock_timeout) as conn,
            classify_database_errors(self._dialect),
            migration_transaction(conn),
        ):
            changed = self._changed(await self._read_if_exists(conn))
            for name in changed:
                await self._bookkeeping.update_checksum(conn, name, self._by_name[name].checksum)
        for name in changed:
            logger.info("migration %s: accepted its changed code", name)
        return tuple(changed)

    # --- up ---------------------------------------------------------------------------------

    async def _up(self, limit: int) -> MigrationResult:
        started = time.perf_counter()
        scope = self._migrations[:limit]
        if self._dry_run:
            records = await self._read_snapshot()
            self._check_changed(records)
            done = {record.name for record in records}
            return MigrationResult(
                direction="up",
                applied=tuple(item.name for item in scope if item.name not in done),
                skipped=tuple(item.name for item in scope if item.name in done),
                duration_ms=_elapsed_ms(started),
                dry_run=True,
            )
        applied: list[str] = []
        skipped: list[str] = []
        async with locked_connection(self._engine, self.table, self._lock_timeout) as conn:
            async with classify_database_errors(self._dialect):
                async with migration_transaction(conn):
                    await self._bookkeeping.create(conn)
                async with migration_transaction(conn):
                    records = await self._bookkeeping.read(conn)
            self._check_changed(records)
            done = {record.name for record in records}
            for item in scope:
                if item.name in done:
                    skipped.append(item.name)
                    continue
                try:
                    ran = await self._run(conn, item, "up")
                except MigrationError as error:
                    error.result = MigrationResult(
                        direction="up",
                        applied=tuple(applied),
                        skipped=tuple(skipped),
                        failed=item.name,
                        duration_ms=_elapsed_ms(started),
                    )
                    raise
                (applied if ran else skipped).append(item.name)
        return MigrationResult(
            direction="up",
            applied=tuple(applied),
            skipped=tuple(skipped),
            duration_ms=_elapsed_ms(started),
        )

    def _check_changed(self, records: Sequence[AppliedMigration]) -> None:
        changed = self._changed(records)
        if changed and not self._allow_changed:
            raise MigrationChangedError(changed)

    # --- down -------------------------------------------------------------------------------

    async def _down(self, steps: int | None) -> MigrationResult:
        started = time.perf_counter()
        if self._dry_run:
            plan = self._down_plan(await self._read_snapshot(), steps, started)
            return MigrationResult(
                direction="down",
                applied=tuple(item.name for item in plan),
                duration_ms=_elapsed_ms(started),
                dry_run=True,
            )
        reverted: list[str] = []
        async with locked_connection(self._engine, self.table, self._lock_timeout) as conn:
            async with classify_database_errors(self._dialect), migration_transaction(conn):
                records = await self._read_if_exists(conn)
            for item in self._down_plan(records, steps, started):
                try:
                    await self._run(conn, item, "down")
                except MigrationError as error:
                    error.result = MigrationResult(
                        direction="down",
                        applied=tuple(reverted),
                        failed=item.name,
                        duration_ms=_elapsed_ms(started),
                    )
                    raise
                reverted.append(item.name)
        return MigrationResult(
            direction="down", applied=tuple(reverted), duration_ms=_elapsed_ms(started)
        )

    def _down_plan(
        self, records: Sequence[AppliedMigration], steps: int | None, started: float
    ) -> list[Migration]:
        """The migrations to roll back, newest first; raises before anything runs."""
        newest_first = list(reversed(records))
        if steps is not None:
            newest_first = newest_first[:steps]
        plan: list[Migration] = []
        for record in newest_first:
            item = self._by_name.get(record.name)
            problem = ""
            if item is None:
                problem = (
                    "is recorded as applied but is missing from the code, so it cannot be "
                    "rolled back"
                )
            elif item.down is None:
                problem = "has no down() and cannot be rolled back"
            if problem:
                error = MigrationError(record.name, "down", message=problem)
                error.result = MigrationResult(
                    direction="down",
                    failed=record.name,
                    duration_ms=_elapsed_ms(started),
                    dry_run=self._dry_run,
                )
                raise error
            assert item is not None
            plan.append(item)
        return plan

    # --- one migration ----------------------------------------------------------------------

    async def _run(self, conn: AsyncConnection, item: Migration, direction: Direction) -> bool:
        """Run one migration in its own transaction with its bookkeeping change.

        Returns:
            ``True`` if it ran; ``False`` if (``up``) it turned out to be applied already,
            which happens on SQLite when a concurrent runner got there first.
        """
        function = item.up if direction == "up" else item.down
        assert function is not None
        started = time.perf_counter()
        try:
            async with classify_database_errors(self._dialect), migration_transaction(conn):
                # Re-checked inside the transaction: on SQLite this is where concurrent
                # runners are serialised (elsewhere the run lock already guarantees it).
                if direction == "up":
                    if await self._bookkeeping.find(conn, item.name) is not None:
                        return False
                else:
                    latest = await self._bookkeeping.latest(conn)
                    if latest is None or latest.name != item.name:
                        raise MigrationError(
                            item.name,
                            direction,
                            message="is no longer the latest applied migration (another "
                            "runner changed the database meanwhile); run again",
                        )
                self._hooks.before(item, direction)
                with _no_transaction_control(conn, item.name, direction):
                    await function(conn)
                duration_ms = _elapsed_ms(started)
                if direction == "up":
                    await self._bookkeeping.insert(conn, item, round(duration_ms))
                else:
                    await self._bookkeeping.delete(conn, item.name)
        except Exception as exc:
            error = (
                exc
                if isinstance(exc, MigrationError) and exc.name == item.name
                else MigrationError(item.name, direction, exc)
            )
            logger.error("migration %s (%s) failed: %s", item.name, direction, error.message)
            try:
                self._hooks.error(item, direction, error)
            except Exception:
                logger.exception("a kysera_migration_error hook failed")
            raise error from error.cause
        logger.info("migration %s (%s) done in %.0f ms", item.name, direction, duration_ms)
        try:
            self._hooks.after(item, direction, duration_ms)
        except Exception:
            # The migration is committed: an observer's failure must not stop the run.
            logger.exception("a kysera_after_migration hook failed after %s", item.name)
        return True

    # --- reading ----------------------------------------------------------------------------

    async def _read_snapshot(self) -> list[AppliedMigration]:
        conn = await connect(self._engine)
        async with classify_database_errors(self._dialect):
            try:
                return await self._read_if_exists(conn)
            finally:
                await conn.close()

    async def _read_if_exists(self, conn: AsyncConnection) -> list[AppliedMigration]:
        if not await self._bookkeeping.exists(conn):
            return []
        return await self._bookkeeping.read(conn)

    def _changed(self, records: Sequence[AppliedMigration]) -> list[str]:
        return [
            record.name
            for record in records
            if record.name in self._by_name
            and self._by_name[record.name].checksum != record.checksum
        ]

    def _status_of(self, records: Sequence[AppliedMigration]) -> MigrationStatus:
        applied = tuple(record.name for record in records)
        done = set(applied)
        return MigrationStatus(
            applied=applied,
            pending=tuple(item.name for item in self._migrations if item.name not in done),
            changed=tuple(self._changed(records)),
            missing=tuple(record.name for record in records if record.name not in self._by_name),
            records=tuple(records),
        )


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


@contextmanager
def _no_transaction_control(
    conn: AsyncConnection, name: str, direction: Direction
) -> Iterator[None]:
    """Refuse ``commit()``/``rollback()`` on the runner's connection inside a migration.

    The runner owns the transaction: a migration that committed would have its work recorded
    apart from its bookkeeping row (and a failure after it would leave half a migration).
    The event fires before the commit reaches the database, so nothing is committed.
    """

    def refuse(connection: sa.Connection) -> None:
        # Roll the migration's work back at the driver before refusing: an error raised from
        # inside SQLAlchemy's commit/rollback leaves its own bookkeeping of the transaction
        # behind, so its later rollback cannot be relied on to reach the database.
        connection.connection.rollback()
        raise MigrationError(
            name,
            direction,
            message="called commit() or rollback() on the runner's connection; the runner "
            "commits each migration with its bookkeeping row (use begin_nested() for a "
            "savepoint)",
        )

    sync = conn.sync_connection
    assert sync is not None
    sa.event.listen(sync, "commit", refuse)
    sa.event.listen(sync, "rollback", refuse)
    try:
        yield
    finally:
        sa.event.remove(sync, "commit", refuse)
        sa.event.remove(sync, "rollback", refuse)
