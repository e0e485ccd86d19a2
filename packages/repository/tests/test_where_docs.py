"""docs/where.md runs: its Python blocks, in order, in one namespace, on SQLite."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "where.md"


def test_the_where_guide_runs() -> None:
    blocks = re.findall(r"^```python\n(.*?)^```", GUIDE.read_text(encoding="utf-8"), re.M | re.S)
    assert len(blocks) >= 5
    namespace: dict[str, object] = {"__name__": "where_guide"}
    # The guide calls asyncio.run(): give it a thread of its own, away from the test loop.
    with ThreadPoolExecutor(max_workers=1) as worker:
        for block in blocks:
            worker.submit(exec, compile(block, str(GUIDE), "exec"), namespace).result()
