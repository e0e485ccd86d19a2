"""``kysera-migrate``: the command-line migration runner.

```
kysera-migrate [--url URL] [--dir DIR] [--table NAME] [--lock-timeout SECONDS] COMMAND
  create NAME                        scaffold DIR/NNN_name.py with the next number
  up [--to NAME] [--dry-run] [--allow-changed]
  down [--steps N | --all] [--dry-run]
  reset [--dry-run]                  roll back every applied migration
  status [--check]                   --check: exit 1 unless up to date
  accept-changes [--dry-run]         record edited applied migrations' code as applied
```

The database URL comes from ``--url`` or ``KYSERA_DATABASE_URL``. The working directory is
put on ``sys.path`` so that migration files can import the application's modules. Expected
failures print one line to stderr and exit 1 (2 for usage errors), without a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

from kysera.core import Command, KyseraError, command_engine
from kysera.migrations.hooks import hookimpl
from kysera.migrations.loader import load_migrations
from kysera.migrations.migration import Direction, Migration
from kysera.migrations.results import MigrationResult, MigrationStatus
from kysera.migrations.runner import MigrationRunner
from kysera.migrations.scaffold import create_migration_file

__all__: list[str] = []  # the console script imports main() from here

PROG = "kysera-migrate"
URL_ENV = "KYSERA_DATABASE_URL"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (the console script exits with it).

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` by default.
    """
    args = _parser().parse_args(argv)
    _import_from_working_directory()
    try:
        if args.command == "create":
            path = create_migration_file(args.dir, args.name)
            print(f"created {path}")
            return 0
        url = args.url or os.environ.get(URL_ENV)
        if not url:
            # A usage error, as a missing argument would be.
            return _fail(f"no database URL: pass --url or set {URL_ENV}", status=2)
        migrations = load_migrations(args.dir)
        return asyncio.run(_run(args, url, migrations))
    except KyseraError as exc:
        return _fail(f"{type(exc).__name__}: {exc}")
    except KeyboardInterrupt:
        return _fail("interrupted", status=130)


def _import_from_working_directory() -> None:
    """Let migration files import the application's modules, as Alembic does.

    A console script's ``sys.path`` starts with the script's own directory, not the working
    directory, so ``import myapp`` in a migration would fail when run from the project root.
    """
    working_directory = os.getcwd()
    if working_directory not in sys.path:
        sys.path.insert(0, working_directory)


async def _run(args: argparse.Namespace, url: str, migrations: list[Migration]) -> int:
    engine = command_engine(url)
    try:
        runner = MigrationRunner(
            engine,
            migrations,
            table=args.table,
            dry_run=getattr(args, "dry_run", False),
            allow_changed=getattr(args, "allow_changed", False),
            lock_timeout=args.lock_timeout,
            plugins=[_Progress(sys.stdout)],
        )
        if args.command == "status":
            return _print_status(await runner.status(), runner, args.dir, check=args.check)
        if args.command == "accept-changes":
            accepted = await runner.accept_changes()
            verb = "would accept" if runner.dry_run else "accepted"
            print(
                f"{verb} the changed code of {_count(accepted)}"
                + (": " + ", ".join(accepted) if accepted else "")
            )
            return 0
        if args.command == "up":
            result = await (runner.up_to(args.to) if args.to else runner.up())
        elif args.command == "down":
            result = await (runner.reset() if args.all else runner.down(args.steps))
        else:
            result = await runner.reset()
        _print_result(result, runner)
        return 0
    finally:
        await engine.dispose()


class _Progress:
    """Prints each migration as it completes."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    @hookimpl
    def kysera_after_migration(
        self, migration: Migration, direction: Direction, duration_ms: float
    ) -> None:
        verb = "applied" if direction == "up" else "rolled back"
        print(f"{verb} {migration.name} ({duration_ms:.0f} ms)", file=self._out, flush=True)


def _describe(runner: MigrationRunner, name: str) -> str:
    """``name``, its description's first line, and a BREAKING mark where it applies."""
    found = next((item for item in runner.migrations if item.name == name), None)
    if found is None:
        return name
    summary = found.description.strip().splitlines()[0] if found.description.strip() else ""
    return "  ".join(part for part in (name, summary, "BREAKING" if found.breaking else "") if part)


def _print_result(result: MigrationResult, runner: MigrationRunner) -> None:
    verb = "apply" if result.direction == "up" else "roll back"
    done = "applied" if result.direction == "up" else "rolled back"
    if result.dry_run:
        if not result.applied:
            print(f"dry run: nothing to {verb}")
        else:
            print(f"dry run: would {verb} {_count(result.applied)}:")
            for name in result.applied:
                print(f"  {_describe(runner, name)}")
    elif not result.applied:
        print(f"nothing to {verb}" + (": the database is up to date" if done == "applied" else ""))
    else:
        print(f"{done} {_count(result.applied)} in {result.duration_ms:.0f} ms")


def _print_status(
    status: MigrationStatus, runner: MigrationRunner, directory: str, *, check: bool
) -> int:
    width = max((len(name) for name in (*status.applied, *status.pending)), default=0)
    changed = set(status.changed)
    missing = set(status.missing)
    for record in status.records:
        note = ""
        if record.name in changed:
            note = "  CHANGED since applied"
        elif record.name in missing:
            note = f"  MISSING from {directory}"
        applied_at = record.applied_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        print(f"applied  {record.name:<{width}}  {applied_at}{note}")
    for name in status.pending:
        print(f"pending  {_describe(runner, name)}")
    summary = (
        f"{len(status.applied)} applied, {len(status.pending)} pending, "
        f"{len(status.changed)} changed, {len(status.missing)} missing"
    )
    print(summary)
    if check and not status.up_to_date:
        return _fail(f"the database is not up to date: {summary}")
    return 0


def _count(names: Sequence[str]) -> str:
    return f"{len(names)} migration{'s' if len(names) != 1 else ''}"


def _fail(message: str, status: int = 1) -> int:
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)
    return status


class _Parser(argparse.ArgumentParser):
    """Reports usage errors on one line, like every other expected failure."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see {self.prog} --help)\n")


def _add_common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # Accepted before and after the command; the copy after it only overrides when given.
    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument("--url", default=default(None), help=f"database URL (default: ${URL_ENV})")
    parser.add_argument(
        "--dir",
        default=default("migrations"),
        help="migrations directory (default: ./migrations)",
    )
    parser.add_argument(
        "--table",
        default=default("kysera_migrations"),
        help="bookkeeping table (default: kysera_migrations)",
    )
    parser.add_argument(
        "--lock-timeout",
        type=float,
        default=default(None),
        metavar="SECONDS",
        help="how long to wait for another run's lock (default: as long as it takes)",
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kysera-migrations")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "(not installed)"


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    _add_common(common, suppress=True)
    parser = _Parser(prog=PROG, description="Apply and roll back Kysera migrations.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _add_common(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    create = commands.add_parser("create", parents=[common], help="scaffold a migration file")
    create.add_argument("name", help="what the migration does, e.g. 'add users email'")

    up = commands.add_parser("up", parents=[common], help="apply pending migrations")
    up.add_argument("--to", metavar="NAME", help="stop after this migration")
    up.add_argument("--dry-run", action="store_true", help="only print what would run")
    up.add_argument(
        "--allow-changed",
        action="store_true",
        help="run although applied migrations' code changed since",
    )

    down = commands.add_parser("down", parents=[common], help="roll back applied migrations")
    amount = down.add_mutually_exclusive_group()
    amount.add_argument("--steps", type=_positive_int, default=1, metavar="N")
    amount.add_argument("--all", action="store_true", help="roll back everything")
    down.add_argument("--dry-run", action="store_true", help="only print what would run")

    reset = commands.add_parser("reset", parents=[common], help="roll back every migration")
    reset.add_argument("--dry-run", action="store_true", help="only print what would run")

    accept = commands.add_parser(
        "accept-changes",
        parents=[common],
        help="record the current code of changed applied migrations (nothing re-runs)",
    )
    accept.add_argument("--dry-run", action="store_true", help="only print what would change")

    status = commands.add_parser("status", parents=[common], help="show applied and pending")
    status.add_argument(
        "--check", action="store_true", help="exit 1 unless nothing is pending or changed"
    )
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


# --- `kysera migrate` -------------------------------------------------------------------------


def _migrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.usage = "kysera migrate [kysera-migrate's arguments: see kysera migrate --help]"


def _run_migrate(args: argparse.Namespace) -> int:
    forwarded = list(args.arguments)
    if getattr(args, "url", None) and "--url" not in forwarded:
        forwarded = ["--url", args.url, *forwarded]
    return main(forwarded or ["--help"])


migrate_command = Command(
    name="migrate",
    help="apply and roll back migrations (the kysera-migrate command)",
    add_arguments=_migrate_arguments,
    run=_run_migrate,
    forwards_arguments=True,
)
"""``kysera migrate ...``: the same as ``kysera-migrate ...``."""
