"""``kysera-migrate``: the commands in-process, and the installed console script as a subprocess."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.migrations.cli import main

TABLE = "mig_cli_bookkeeping"
Tables = Callable[[], Awaitable[set[str]]]

CREATE_ACCOUNTS = '''"""Accounts."""

import sqlalchemy as sa


async def up(conn):
    await conn.execute(sa.text("CREATE TABLE mig_cli_accounts (id INTEGER PRIMARY KEY)"))


async def down(conn):
    await conn.execute(sa.text("DROP TABLE mig_cli_accounts"))
'''

CREATE_INVOICES = '''"""Invoices."""

import sqlalchemy as sa

breaking = True


async def up(conn):
    await conn.execute(sa.text("CREATE TABLE mig_cli_invoices (id INTEGER PRIMARY KEY)"))


async def down(conn):
    await conn.execute(sa.text("DROP TABLE mig_cli_invoices"))
'''

BROKEN = """async def up(conn):
    raise RuntimeError("the disk is full")
"""


def migrations_dir(tmp_path: Path, *files: tuple[str, str]) -> Path:
    directory = tmp_path / "migrations"
    directory.mkdir(exist_ok=True)
    for name, text in files:
        (directory / name).write_text(text)
    return directory


async def migrate(*args: str) -> int:
    """Run the CLI in-process (in a thread: it runs its own event loop)."""
    return await asyncio.to_thread(main, list(args))


async def test_up_status_down_and_reset(
    engine: AsyncEngine,
    kysera_database_url: str,
    tmp_path: Path,
    tables: Tables,
    capsys: pytest.CaptureFixture[str],
) -> None:
    directory = migrations_dir(
        tmp_path,
        ("001_create_accounts.py", CREATE_ACCOUNTS),
        ("002_create_invoices.py", CREATE_INVOICES),
    )
    common = ["--url", kysera_database_url, "--dir", str(directory), "--table", TABLE]

    assert await migrate(*common, "up", "--dry-run") == 0
    assert capsys.readouterr().out == (
        "dry run: would apply 2 migrations:\n"
        "  001_create_accounts  Accounts.\n"
        "  002_create_invoices  Invoices.  BREAKING\n"
    )
    assert await tables() == set()

    assert await migrate(*common, "up", "--to", "001_create_accounts") == 0
    assert capsys.readouterr().out.startswith("applied 001_create_accounts (")

    assert await migrate(*common, "status", "--check") == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith("applied  001_create_accounts  20")
    assert lines[1:] == [
        "pending  002_create_invoices  Invoices.  BREAKING",
        "1 applied, 1 pending, 0 changed, 0 missing",
    ]
    assert captured.err == (
        "kysera-migrate: error: the database is not up to date: "
        "1 applied, 1 pending, 0 changed, 0 missing\n"
    )

    assert await migrate(*common, "up") == 0
    assert "applied 1 migration in" in capsys.readouterr().out
    assert await migrate(*common, "up") == 0
    assert capsys.readouterr().out == "nothing to apply: the database is up to date\n"
    assert await tables() == {TABLE, "mig_cli_accounts", "mig_cli_invoices"}

    assert await migrate(*common, "down", "--dry-run", "--all") == 0
    assert "would roll back 2 migrations" in capsys.readouterr().out
    assert await migrate(*common, "down") == 0
    assert capsys.readouterr().out.startswith("rolled back 002_create_invoices (")
    assert await migrate(*common, "reset") == 0
    assert capsys.readouterr().out.startswith("rolled back 001_create_accounts (")
    assert await tables() == {TABLE}


async def test_changed_and_missing_migrations(
    engine: AsyncEngine,
    kysera_database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    directory = migrations_dir(
        tmp_path,
        ("001_create_accounts.py", CREATE_ACCOUNTS),
        ("002_create_invoices.py", CREATE_INVOICES),
    )
    monkeypatch.setenv("KYSERA_DATABASE_URL", kysera_database_url)
    common = ["--dir", str(directory), "--table", TABLE]
    assert await migrate(*common, "up") == 0
    (directory / "001_create_accounts.py").write_text(CREATE_ACCOUNTS + "\n# edited\n")
    (directory / "002_create_invoices.py").unlink()
    (directory / "003_create_payments.py").write_text(
        CREATE_ACCOUNTS.replace("accounts", "payments")
    )
    capsys.readouterr()

    assert await migrate(*common, "status") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("applied  001_create_accounts  ")
    assert lines[0].endswith("CHANGED since applied")
    assert lines[1].startswith("applied  002_create_invoices  ")
    assert lines[1].endswith(f"MISSING from {directory}")
    assert lines[2:] == [
        "pending  003_create_payments  Accounts.",
        "2 applied, 1 pending, 1 changed, 1 missing",
    ]

    assert await migrate(*common, "up") == 1
    err = capsys.readouterr().err
    assert err.startswith("kysera-migrate: error: MigrationChangedError: migration ")
    assert "--allow-changed" in err
    assert err.count("\n") == 1

    assert await migrate(*common, "up", "--allow-changed") == 0
    assert "applied 003_create_payments" in capsys.readouterr().out

    assert await migrate(*common, "accept-changes") == 0
    assert (
        capsys.readouterr().out == "accepted the changed code of 1 migration: 001_create_accounts\n"
    )
    assert await migrate(*common, "status") == 0
    assert "CHANGED" not in capsys.readouterr().out


async def test_create_scaffolds_the_next_numbered_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = migrations_dir(tmp_path, ("001_create_accounts.py", CREATE_ACCOUNTS))

    assert await migrate("--dir", str(directory), "create", "Add invoices") == 0

    created = directory / "002_add_invoices.py"
    assert capsys.readouterr().out == f"created {created}\n"
    assert "async def up(conn: AsyncConnection) -> None:" in created.read_text()


# --- the installed console script ---------------------------------------------------------


def run_script(
    kysera_migrate: str, *args: str, url: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "KYSERA_DATABASE_URL"}
    if url is not None:
        env["KYSERA_DATABASE_URL"] = url
    return subprocess.run(
        [kysera_migrate, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("kysera-migrate: error: ")
    assert expected in result.stderr


def test_the_console_script_migrates_and_reports_a_failing_migration(
    kysera_database_url: str, engine: AsyncEngine, kysera_migrate: str, tmp_path: Path
) -> None:
    directory = migrations_dir(
        tmp_path, ("001_create_accounts.py", CREATE_ACCOUNTS), ("002_broken.py", BROKEN)
    )

    failed = run_script(
        kysera_migrate, "--dir", str(directory), "up", "--table", TABLE, url=kysera_database_url
    )

    assert failed.returncode == 1
    assert failed.stdout.startswith("applied 001_create_accounts (")
    assert_one_line_error(
        failed, "MigrationError: migration '002_broken' (up) RuntimeError: the disk is full"
    )
    status = run_script(
        kysera_migrate, "--url", kysera_database_url, "--table", TABLE, "status", cwd=tmp_path
    )
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[1:] == [
        "pending  002_broken",
        "1 applied, 1 pending, 0 changed, 0 missing",
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["up"], "no database URL: pass --url or set KYSERA_DATABASE_URL"),
        (["--url", "sqlite+aiosqlite://", "--dir", "nope", "up"], "'nope' does not exist"),
        (["--url", "not a url", "up"], "cannot use database URL"),
        (["--url", "postgresql://u:secret@127.0.0.1:9/db", "status"], "DatabaseConnectionError"),
        (["--url", "sqlite://", "up", "--to", "009_nope"], "unknown migration '009_nope'"),
        (["down", "--steps", "0"], "argument --steps: expected a positive integer, got '0'"),
        (["down", "--steps", "2", "--all"], "not allowed with argument --steps"),
        (["sideways"], "invalid choice: 'sideways'"),
    ],
    ids=["no-url", "no-dir", "bad-url", "unreachable", "unknown-target", "steps", "all", "command"],
)
def test_the_console_script_reports_expected_failures_in_one_line(
    kysera_migrate: str, tmp_path: Path, args: list[str], expected: str
) -> None:
    migrations_dir(tmp_path, ("001_create_accounts.py", CREATE_ACCOUNTS))

    result = run_script(kysera_migrate, *args, cwd=tmp_path)

    assert_one_line_error(result, expected)
    assert "secret" not in result.stderr


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (["up"], 2),  # no URL: a usage error, as the docs promise
        (["sideways"], 2),
        (["--url", "postgresql://u@127.0.0.1:9/db", "status"], 1),  # a failure, not usage
    ],
    ids=["no-url", "command", "unreachable"],
)
def test_usage_errors_exit_2_and_failures_exit_1(
    kysera_migrate: str, tmp_path: Path, args: list[str], status: int
) -> None:
    migrations_dir(tmp_path, ("001_create_accounts.py", CREATE_ACCOUNTS))

    assert run_script(kysera_migrate, *args, cwd=tmp_path).returncode == status


def test_version_prints_the_installed_version(kysera_migrate: str) -> None:
    from importlib.metadata import version

    result = run_script(kysera_migrate, "--version")

    assert result.returncode == 0
    assert result.stdout.strip() == f"kysera-migrate {version('kysera-migrations')}"


def test_a_missing_driver_names_the_extra_to_install(tmp_path: Path) -> None:
    migrations_dir(tmp_path, ("001_create_accounts.py", CREATE_ACCOUNTS))
    # The driver made unimportable, as on a machine without the mysql extra.
    script = (
        "import sys; sys.modules['asyncmy'] = sys.modules['aiomysql'] = None\n"
        "from kysera.migrations.cli import main\n"
        "sys.exit(main(['--url', 'mysql://root:secret@127.0.0.1/shop', 'status']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )

    assert_one_line_error(result, 'pip install "kysera-core[mysql]"')
    assert "mysql+asyncmy://root:***@127.0.0.1/shop" in result.stderr
    assert "secret" not in result.stderr


def test_migration_files_import_the_applications_modules_from_the_working_directory(
    kysera_migrate: str, tmp_path: Path
) -> None:
    (tmp_path / "bookshop").mkdir()
    (tmp_path / "bookshop" / "__init__.py").write_text('TABLE = "mig_cli_bookshop"\n')
    migrations_dir(
        tmp_path,
        (
            "001_books.py",
            "import sqlalchemy as sa\n\nfrom bookshop import TABLE\n\n\n"
            "async def up(conn):\n"
            '    await conn.execute(sa.text(f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY)"))\n',
        ),
    )

    result = run_script(
        kysera_migrate, "up", url=f"sqlite+aiosqlite:///{tmp_path / 'app.db'}", cwd=tmp_path
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("applied 001_books (")


async def test_kysera_migrate_is_the_same_command(
    engine: AsyncEngine,
    kysera_database_url: str,
    tmp_path: Path,
    tables: Tables,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``kysera migrate ...`` (the ``kysera`` command's subcommand) runs ``kysera-migrate``;
    ``--url`` may come before the subcommand, as for every ``kysera`` command."""
    from kysera.core.commands import main as kysera

    directory = migrations_dir(tmp_path, ("001_create_accounts.py", CREATE_ACCOUNTS))
    common = ["--dir", str(directory), "--table", TABLE]
    url = ["--url", kysera_database_url]
    assert await asyncio.to_thread(kysera, [*url, "migrate", *common, "up"]) == 0
    assert capsys.readouterr().out.startswith("applied 001_create_accounts (")
    assert await tables() == {TABLE, "mig_cli_accounts"}
    assert await asyncio.to_thread(kysera, ["migrate", *url, *common, "status", "--check"]) == 0
    assert await asyncio.to_thread(kysera, ["migrate", *url, *common, "reset"]) == 0
    assert await tables() == {TABLE}
    capsys.readouterr()
    assert await asyncio.to_thread(kysera, ["migrate", "--table", TABLE, "status"]) == 2
    assert "no database URL" in capsys.readouterr().err
