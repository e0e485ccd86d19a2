"""The ``kysera`` command, which every installed Kysera package extends.

```
kysera [--url URL] [--version] COMMAND ...
  health [--json] [--timeout SECONDS]      kysera-core: is the database up, how fast
  migrate ...                              kysera-migrations (same as kysera-migrate)
  inspect [--counts]                       kysera-schema: tables, keys, relations
```

Commands come from the entry-point group ``kysera.commands``: each entry point names a
`Command`. The database URL comes from ``--url`` (before or after the command) or
``KYSERA_DATABASE_URL``; URLs without an async driver (``postgresql://``) get one
(`async_url`). Exit status: 0 on success, 1 on a failure, 2 on a usage error; expected
failures print one line to stderr, without a traceback.

The library is the standard library's ``argparse``: the command is part of kysera-core,
which every user installs, and argparse adds no dependency (the migrations CLI used it
already); subcommands registered at run time fit its sub-parsers directly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, entry_points, version
from typing import NoReturn

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kysera.core.errors import BadRequestError, KyseraError
from kysera.core.health import check_health
from kysera.core.urls import async_url, driver_extra

# The console script runs `main`; packages import these to write their commands.
__all__ = ["Command", "command_engine", "command_url"]

PROG = "kysera"
URL_ENV = "KYSERA_DATABASE_URL"
COMMANDS_GROUP = "kysera.commands"


@dataclass(frozen=True)
class Command:
    """A subcommand of ``kysera``, registered under the ``kysera.commands`` entry points.

    ```toml
    [project.entry-points."kysera.commands"]
    inspect = "kysera.schema.commands:inspect_command"
    ```

    Attributes:
        name: The subcommand (``"inspect"``).
        help: One line for ``kysera --help``.
        add_arguments: Adds the subcommand's arguments to its parser.
        run: Runs it with the parsed arguments (``args.url`` holds ``--url`` or ``None``);
            returns the exit status. A `KyseraError` it raises becomes one line and
            status 1.
        forwards_arguments: See below.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    forwards_arguments: bool = False
    """Everything after the command's name reaches `run` unparsed, in ``args.arguments``
    (for a command that is another program's command line, as ``kysera migrate`` is)."""


class _MissingURL(BadRequestError):
    """No ``--url`` and no ``KYSERA_DATABASE_URL``: a usage error (exit status 2)."""


def command_url(args: argparse.Namespace) -> str:
    """The database URL: ``--url``, else ``KYSERA_DATABASE_URL``.

    Raises:
        BadRequestError: Neither is set (``kysera`` exits with status 2, as for any other
            usage error).
    """
    url = getattr(args, "url", None) or os.environ.get(URL_ENV)
    if not url:
        raise _MissingURL(f"no database URL: pass --url or set {URL_ENV}")
    return str(url)


def command_engine(url: str) -> AsyncEngine:
    """An engine for ``url`` with an async driver (`async_url`), or a `BadRequestError`
    saying what is wrong with the URL or which extra installs its driver."""
    try:
        parsed = async_url(url)
    except BadRequestError as exc:
        raise BadRequestError(f"cannot use database URL (unparsable): {exc}") from exc
    shown = parsed.render_as_string(hide_password=True)
    try:
        return create_async_engine(parsed)
    except ImportError as exc:
        extra = driver_extra(parsed)
        hint = (
            f'install it with: pip install "kysera-core[{extra}]"'
            if extra
            else f"install the {parsed.get_driver_name()} driver"
        )
        raise BadRequestError(
            f"cannot use database URL {shown}: its driver is not installed ({exc}); {hint}"
        ) from exc
    except (sa.exc.ArgumentError, sa.exc.InvalidRequestError) as exc:
        raise BadRequestError(f"cannot use database URL {shown}: {exc}") from exc


# --- kysera health ----------------------------------------------------------------------------


def _health_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--timeout", type=float, default=5.0, metavar="SECONDS", help="give up after (5)"
    )


def _run_health(args: argparse.Namespace) -> int:
    async def check() -> int:
        engine = command_engine(command_url(args))
        try:
            result = await check_health(engine, timeout=args.timeout)
        finally:
            await engine.dispose()
        if args.json:
            print(json.dumps(result.to_dict(), sort_keys=True))
        else:
            line = f"{result.status.value} ({result.latency_ms:.1f} ms)"
            if result.database_version:
                line += f" {result.database_version}"
            if result.error:
                line += f": {result.error}"
            print(line)
        return 0 if result.status.value != "unhealthy" else 1

    return asyncio.run(check())


health_command = Command(
    name="health",
    help="check that the database answers, and how fast",
    add_arguments=_health_arguments,
    run=_run_health,
)


# --- the command itself -----------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """Reports usage errors on one line, like every other expected failure."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see {self.prog} --help)\n")


def _installed_commands() -> list[Command]:
    found: dict[str, Command] = {}
    for entry in entry_points(group=COMMANDS_GROUP):
        try:
            command = entry.load()
        except Exception as exc:  # a broken package must not take the others down
            print(f"{PROG}: warning: cannot load command {entry.name!r}: {exc}", file=sys.stderr)
            continue
        if isinstance(command, Command):
            found.setdefault(command.name, command)
    found.setdefault(health_command.name, health_command)  # run from a source tree
    return [found[name] for name in sorted(found)]


def _version() -> str:
    try:
        return version("kysera-core")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "(not installed)"


def _parser(commands: Sequence[Command]) -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Kysera's command line.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--url", help=f"database URL (default: ${URL_ENV})")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        # Also accepted after the command; only overrides when given.
        sub.add_argument("--url", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        command.add_arguments(sub)
        sub.set_defaults(kysera_command=command)
    return parser


def _command_position(argv: Sequence[str]) -> int | None:
    """Where the command's name is in ``argv`` (after the global options), if anywhere."""
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "--url":
            index += 2
        elif token.startswith("-"):
            index += 1
        else:
            return index
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kysera``; returns the exit status (the console script exits with it).

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` by default.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = _installed_commands()
    parser = _parser(commands)
    forwarding = {command.name for command in commands if command.forwards_arguments}
    position = _command_position(argv)
    if position is not None and argv[position] in forwarding:
        args = parser.parse_args(argv[: position + 1])
        args.arguments = argv[position + 1 :]
    else:
        args = parser.parse_args(argv)
    command: Command = args.kysera_command
    try:
        return command.run(args)
    except _MissingURL as exc:
        print(f"{PROG} {command.name}: error: {exc}", file=sys.stderr)
        return 2
    except KyseraError as exc:
        message = " ".join(str(exc).split())
        print(f"{PROG} {command.name}: error: {type(exc).__name__}: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
