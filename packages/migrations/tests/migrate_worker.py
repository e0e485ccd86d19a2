"""A migration runner in its own process, for the concurrency tests.

Usage: ``python migrate_worker.py``. For every JSON line ``{"url": ..., "dir": ..., "table": ...}``
read from stdin it runs ``MigrationRunner(...).up()`` with a fresh engine and prints one JSON
line: ``{"applied": [...], "skipped": [...]}`` or ``{"error": "..."}``. It stops at end of input.
"""

from __future__ import annotations

import asyncio
import json
import sys

from sqlalchemy.ext.asyncio import create_async_engine

from kysera.migrations import MigrationRunner, load_migrations


async def run_once(url: str, directory: str, table: str) -> dict[str, object]:
    engine = create_async_engine(url)
    try:
        result = await MigrationRunner(engine, load_migrations(directory), table=table).up()
        return {"applied": list(result.applied), "skipped": list(result.skipped)}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        await engine.dispose()


def main() -> None:
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        task = json.loads(line)
        result = asyncio.run(run_once(task["url"], task["dir"], task["table"]))
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
