"""The ``kysera`` command: its host, ``kysera health``, exit statuses and one-line errors."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core.commands import main


def url_of(engine: AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_the_console_script_and_the_health_command_are_registered() -> None:
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts["kysera"] == "kysera.core.commands:main"
    assert "health" in {e.name for e in entry_points(group="kysera.commands")}


async def test_health_reports_the_database_as_text_and_json(
    kysera_engine: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    # The command runs its own event loop, as a console script does: off this one.
    import asyncio

    url = url_of(kysera_engine)
    status = await asyncio.to_thread(main, ["--url", url, "health"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert out.split()[0] in ("healthy", "degraded")
    status = await asyncio.to_thread(main, ["health", "--json", "--url", url])
    report = json.loads(capsys.readouterr().out)
    assert status == 0
    assert report["status"] in ("healthy", "degraded")


def test_an_unreachable_database_is_unhealthy_with_status_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = "postgresql://nobody@127.0.0.1:1/none"
    assert main(["--url", url, "health", "--timeout", "2"]) == 1
    assert capsys.readouterr().out.startswith("unhealthy")


def test_usage_errors_exit_2_and_failures_1_on_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KYSERA_DATABASE_URL", raising=False)
    assert main(["health"]) == 2
    assert capsys.readouterr().err == (
        "kysera health: error: no database URL: pass --url or set KYSERA_DATABASE_URL\n"
    )
    assert main(["--url", "nosuchdb://x", "health"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kysera health: error: BadRequestError: cannot use database URL")
    assert err.count("\n") == 1
    assert "Traceback" not in err
    with pytest.raises(SystemExit) as exited:
        main(["no-such-command"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("kysera ")


def test_the_url_may_come_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KYSERA_DATABASE_URL", f"sqlite:///{tmp_path}/env.db")
    assert main(["health"]) == 0
    assert "healthy" in capsys.readouterr().out
