"""Every Python example in docs/migrations.md runs (on SQLite, in a temporary directory)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "migrations.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.DOTALL)


def test_the_guide_has_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("source", EXAMPLES, ids=[f"example-{n}" for n in range(len(EXAMPLES))])
async def test_the_example_runs(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code = compile(source, str(GUIDE), "exec")
    # In a thread: the examples call asyncio.run() themselves.
    await asyncio.to_thread(exec, code, {"__name__": "__main__"})
