"""The testing guide's example project (docs/testing.md) runs and passes, on every database."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kysera.core.pytest_plugin import configured_database_urls

pytest_plugins = ["pytester"]

GUIDE = Path(__file__).parents[3] / "docs" / "testing.md"
FILE_BLOCK = re.compile(r"<!-- file: (?P<path>\S+) -->\n```\w*\n(?P<body>.*?)\n```", re.DOTALL)


def test_the_guides_example_project_passes(
    pytester: pytest.Pytester, request: pytest.FixtureRequest
) -> None:
    files = {match["path"]: match["body"] for match in FILE_BLOCK.finditer(GUIDE.read_text())}
    assert {"pytest.ini", "myapp/users.py", "tests/conftest.py", "tests/test_users.py"} <= set(
        files
    )
    for path, body in files.items():
        target = pytester.path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body + "\n")

    urls = configured_database_urls(request.config)
    result = pytester.runpytest_subprocess(*(f"--kysera-db-url={url}" for url in urls), "-v")

    outcomes = result.parseoutcomes()
    assert result.ret == 0, result.stdout.str()
    assert outcomes.get("passed", 0) == 8 * len(urls)
    assert "skipped" not in outcomes
