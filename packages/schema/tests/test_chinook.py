"""Discovery and ``kysera gen --api fastapi`` on a second public schema, Chinook: PascalCase
names, keys the application chooses, NUMERIC prices, two foreign keys to one table."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from chinook import TABLES, create_chinook, drop_chinook
from sqlalchemy.ext.asyncio import AsyncEngine
from test_codegen import _mypy_strict, generate, run_generated_tests

from kysera.schema import discover


@pytest_asyncio.fixture(loop_scope="session")
async def chinook(kysera_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    await create_chinook(kysera_engine)
    await kysera_engine.dispose()  # prepared statements of tables dropped and made again
    try:
        yield kysera_engine
    finally:
        await drop_chinook(kysera_engine)


async def test_discover_reads_the_published_schema(chinook: AsyncEngine) -> None:
    schema = await discover(chinook, include=TABLES)
    assert set(schema.tables) == set(TABLES)
    names = {(r.kind, r.source.name, r.name) for r in schema.relations}
    assert ("belongs_to", "Album", "Artist") in names
    assert ("many_to_many", "Playlist", "Track") in names
    assert any(kind == "has_many" and source == "Employee" for kind, source, _ in names)
    # Chinook's keys are the application's (INT, no AUTO_INCREMENT, SERIAL or SQLite rowid).
    assert schema.models["Artist"].Create.model_fields["ArtistId"].is_required()
    repos = schema.repositories(await schema.create_orm(chinook))
    tracks = await repos["Track"].find(order_by="TrackId", include=["Album", "Playlist"])
    assert [t.Album.Title for t in tracks] == [  # type: ignore[attr-defined]
        "For Those About To Rock We Salute You",
        "Balls to the Wall",
    ]
    assert [len(t.Playlist) for t in tracks] == [1, 1]  # type: ignore[attr-defined]


async def test_the_generated_api_passes_its_own_tests_and_mypy_strict(
    chinook: AsyncEngine, kysera_database_url: str, tmp_path: Path
) -> None:
    package = f"chinook_{chinook.dialect.name}"
    out = tmp_path / package
    assert await generate(kysera_database_url, out, package, "--api", "fastapi", names=TABLES) == 0
    await run_generated_tests(tmp_path, package, kysera_database_url)
    checked = await asyncio.to_thread(_mypy_strict, tmp_path, package)
    assert checked.returncode == 0, checked.stdout + checked.stderr
