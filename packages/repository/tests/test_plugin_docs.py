"""docs/plugins.md stays true: its examples run, and the plugin it shows is the tested one."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
GUIDE = ROOT / "docs" / "plugins.md"
FILE_MARKER = "# file: "


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", GUIDE.read_text(), flags=re.DOTALL | re.MULTILINE)


EXAMPLES = [block for block in python_blocks() if not block.startswith(FILE_MARKER)]
FILES = [block for block in python_blocks() if block.startswith(FILE_MARKER)]


def test_the_guide_shows_the_tested_plugin_and_its_tests_verbatim() -> None:
    shown = {}
    for block in FILES:
        header, _, body = block.partition("\n")
        shown[header.removeprefix(FILE_MARKER)] = body
    assert sorted(shown) == [
        "packages/repository/tests/tenancy_plugin.py",
        "packages/repository/tests/test_tenancy_plugin.py",
    ]
    for path, body in shown.items():
        assert body == (ROOT / path).read_text(), f"docs/plugins.md shows an outdated {path}"


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"example-{i}" for i in range(len(EXAMPLES))])
def test_every_example_in_the_guide_runs(example: str, tmp_path: Path) -> None:
    # A fresh interpreter: the examples call asyncio.run() and define their own tables.
    completed = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
