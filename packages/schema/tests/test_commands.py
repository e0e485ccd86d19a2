"""``kysera inspect``: the discovered schema on the command line."""

from __future__ import annotations

import asyncio
import json
from importlib.metadata import entry_points

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core.commands import main as kysera


def test_inspect_is_a_kysera_command() -> None:
    found = {e.name: e.value for e in entry_points(group="kysera.commands")}
    assert found["inspect"] == "kysera.schema.commands:inspect_command"


async def test_inspect_lists_tables_keys_relations_and_row_counts(
    engine: AsyncEngine, kysera_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = ["--url", kysera_database_url]
    only = ["--include", "film", "--include", "language", "--include", "film_list"]
    assert await asyncio.to_thread(kysera, [*url, "inspect", *only, "--json"]) == 0
    tables = json.loads(capsys.readouterr().out)["tables"]
    assert sorted(tables) == ["film", "film_list", "language"]
    film = tables["film"]
    assert (film["kind"], film["rows"], film["primary_key"]) == ("table", 2, ["film_id"])
    assert {"columns": ["language_id"], "references": "language"} in film["foreign_keys"]
    assert "belongs_to language -> language" in film["relations"]
    assert tables["film_list"]["kind"] == "view"
    assert tables["language"]["rows"] == 2

    assert await asyncio.to_thread(kysera, ["inspect", *url, "--include", "language"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "table language (2 rows)"
    assert lines[1].startswith("  language_id: ")
    assert "pk" in lines[1]

    assert await asyncio.to_thread(kysera, [*url, "inspect", "--include", "nope"]) == 1
    err = capsys.readouterr().err
    assert err == "kysera inspect: error: UnknownTableError: no table or view named 'nope'\n"


async def test_inspect_prints_the_expression_of_a_generated_column(
    kysera_engine: AsyncEngine, kysera_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    metadata = sa.MetaData()
    sa.Table(
        "doubled",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("n", sa.Integer),
        sa.Column("twice", sa.Integer, sa.Computed("n * 2", persisted=True)),
    )
    async with kysera_engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
    try:
        url = ["--url", kysera_database_url]
        assert await asyncio.to_thread(kysera, [*url, "inspect", "--include", "doubled"]) == 0
        [twice] = [line for line in capsys.readouterr().out.splitlines() if "twice" in line]
        assert "generated as " in twice
        assert "n` * 2" in twice or "n * 2" in twice  # MySQL quotes the name
        assert "object at" not in twice
        only = ["inspect", "--include", "doubled", "--json"]
        assert await asyncio.to_thread(kysera, [*url, *only]) == 0
        columns = json.loads(capsys.readouterr().out)["tables"]["doubled"]["columns"]
        described = {column["name"]: column for column in columns}
        assert described["twice"]["default"] is None
        assert "* 2" in described["twice"]["computed"]
        assert described["n"]["computed"] is None
    finally:
        async with kysera_engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
