"""Four runners in separate processes start at once: each migration is applied exactly once.

Four worker processes (started once, shared by the databases) each run
``MigrationRunner.up()`` when told to; the test tells all four at once, twenty rounds in a row
per database, starting every round from an empty database. Then the same with four
``kysera-migrate up`` processes started at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

ROUNDS = 20
RUNNERS = 4
TABLE = "mig_conc_bookkeeping"
NAMES = ["001_create_log", "002_create_items", "003_seed_items"]

# Every migration writes its name to mig_conc_log: a migration applied twice shows twice.
# The short sleep widens the window in which a second runner could slip in.
MIGRATION_FILES = {
    "001_create_log.py": """
import sqlalchemy as sa

async def up(conn):
    await conn.execute(sa.text("CREATE TABLE mig_conc_log (name VARCHAR(50) NOT NULL)"))
    await conn.execute(sa.text("INSERT INTO mig_conc_log (name) VALUES ('001_create_log')"))
""",
    "002_create_items.py": """
import asyncio
import sqlalchemy as sa

async def up(conn):
    await conn.execute(sa.text("CREATE TABLE mig_conc_items (id INTEGER PRIMARY KEY)"))
    await asyncio.sleep(0.02)
    await conn.execute(sa.text("INSERT INTO mig_conc_log (name) VALUES ('002_create_items')"))
""",
    "003_seed_items.py": """
import sqlalchemy as sa

async def up(conn):
    await conn.execute(sa.text("INSERT INTO mig_conc_items (id) VALUES (1), (2)"))
    await conn.execute(sa.text("INSERT INTO mig_conc_log (name) VALUES ('003_seed_items')"))
""",
}


@pytest.fixture(scope="session")
def migrations_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("concurrency") / "migrations"
    directory.mkdir()
    for name, text in MIGRATION_FILES.items():
        (directory / name).write_text(text)
    return directory


@pytest.fixture(scope="session")
def workers() -> Iterator[list[subprocess.Popen[str]]]:
    worker = Path(__file__).with_name("migrate_worker.py")
    processes = [
        subprocess.Popen(
            [sys.executable, str(worker)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(RUNNERS)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            assert json.loads(process.stdout.readline()) == {"ready": True}
        yield processes
    finally:
        for process in processes:
            assert process.stdin is not None
            process.stdin.close()
            process.wait(timeout=30)


async def applied_log(engine: AsyncEngine) -> Counter[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(sa.text("SELECT name FROM mig_conc_log"))
        names = Counter(name for (name,) in rows)
        bookkept = await conn.execute(sa.text(f"SELECT name FROM {TABLE} ORDER BY id"))
        assert [name for (name,) in bookkept] == NAMES
        items = await conn.execute(sa.text("SELECT COUNT(*) FROM mig_conc_items"))
        assert items.scalar() == 2
    return names


async def test_four_runner_processes_apply_each_migration_exactly_once(
    engine: AsyncEngine,
    workers: list[subprocess.Popen[str]],
    drop_tables: Callable[[], Awaitable[None]],
    kysera_database_url: str,
    migrations_dir: Path,
) -> None:
    for _ in range(ROUNDS):
        await drop_tables()
        task = json.dumps({"url": kysera_database_url, "dir": str(migrations_dir), "table": TABLE})
        for process in workers:  # start all four before reading any answer
            assert process.stdin is not None
            process.stdin.write(task + "\n")
            process.stdin.flush()
        results = []
        for process in workers:
            assert process.stdout is not None
            results.append(json.loads(process.stdout.readline()))

        assert [r.get("error") for r in results] == [None] * RUNNERS
        assert await applied_log(engine) == Counter(NAMES)
        applied = Counter(name for r in results for name in r["applied"])
        assert applied == Counter(NAMES)  # each applied by exactly one runner
        for r in results:  # ... and every other runner saw it applied
            assert sorted(r["applied"] + r["skipped"]) == NAMES


# Process start-up dominates here; the locking itself is covered on every database above.
@pytest.mark.kysera_databases("sqlite")
async def test_four_kysera_migrate_processes_apply_each_migration_exactly_once(
    engine: AsyncEngine, kysera_database_url: str, migrations_dir: Path, kysera_migrate: str
) -> None:
    env = {**os.environ, "KYSERA_DATABASE_URL": kysera_database_url}
    command = [kysera_migrate, "--dir", str(migrations_dir), "--table", TABLE, "up"]
    processes = [
        subprocess.Popen(  # noqa: ASYNC220 - started together on purpose, awaited below
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(RUNNERS)
    ]
    outputs = [process.communicate(timeout=60) for process in processes]

    assert [process.returncode for process in processes] == [0] * RUNNERS, outputs
    assert await applied_log(engine) == Counter(NAMES)
    printed = Counter(
        line.split()[1]
        for out, _ in outputs
        for line in out.splitlines()
        if line.startswith("applied 0")
    )
    assert printed == Counter(NAMES)
