"""``kysera inspect``: the discovered schema on the command line."""

from __future__ import annotations

import asyncio
import json
from importlib.metadata import entry_points

import pytest
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
