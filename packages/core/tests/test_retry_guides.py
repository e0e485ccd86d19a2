"""The Python examples in the retry and circuit breaker guides run as written (on SQLite)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[3] / "docs"
GUIDES = ("retries.md", "circuit-breaker.md")
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)

# Runs each example in a fresh namespace of one interpreter (imports are paid once) and
# prints {example id: traceback or null} as JSON on the last line.
RUNNER = """
import contextlib, io, json, sys, traceback
examples = json.loads(sys.stdin.read())
outcomes = {}
for name, source in examples.items():
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(source, name, "exec"), {"__name__": "__main__"})
    except BaseException:
        outcomes[name] = traceback.format_exc()
    else:
        outcomes[name] = None
print(json.dumps(outcomes))
"""


def collect_examples() -> dict[str, str]:
    found = {}
    for guide in GUIDES:
        text = (DOCS / guide).read_text(encoding="utf-8")
        for number, match in enumerate(PYTHON_BLOCK.finditer(text), start=1):
            found[f"{guide}-{number}"] = match[1]
    return found


EXAMPLES = collect_examples()


@pytest.fixture(scope="module")
def outcomes() -> dict[str, str | None]:
    completed = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps(EXAMPLES),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, str | None] = json.loads(completed.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_example_runs(name: str, outcomes: dict[str, str | None]) -> None:
    assert outcomes[name] is None, outcomes[name]
