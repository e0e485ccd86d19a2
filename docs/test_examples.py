"""Every Python example in docs/ and in README.md runs, on SQLite (``nox -s doctests``).

Per page, the ```` ```python ```` blocks run in order as one module: a later block sees the
names an earlier one defined, as a reader would expect. Each page runs in a fresh interpreter
whose working directory is a temporary directory, so a page may create ``app.db`` files freely.
Tracebacks point at the Markdown file and line.

A block that must not run (a fragment that needs a server, say) is marked on the line before
its fence, with the reason, and is shown in the test output as skipped:

    <!-- docs-example: skip (needs a PostgreSQL server) -->

A block of pytest tests is marked ``<!-- docs-example: pytest -->``: it is not run as part of
the page; instead the page's earlier blocks and this one become a test module that pytest runs
(with kysera-core's plugin, so a ``kysera_engine`` test runs on every configured database).

Pages whose examples a package's own tests already run (sometimes with more checks, e.g. on
every database) are listed in ``TESTED_ELSEWHERE`` and not run twice; for those this module
checks that the named test still exists and still reads the page.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

TESTED_ELSEWHERE = {
    "audit.md": "packages/audit/tests/test_docs.py",
    "circuit-breaker.md": "packages/core/tests/test_retry_guides.py",
    "migrations.md": "packages/migrations/tests/test_docs.py",
    "plugins.md": "packages/repository/tests/test_plugin_docs.py",
    "repository.md": "packages/repository/tests/test_repository_docs.py",
    "retries.md": "packages/core/tests/test_retry_guides.py",
    "soft-delete.md": "packages/soft_delete/tests/test_docs.py",
    "testing.md": "packages/core/tests/test_docs_testing.py",
    "timestamps.md": "packages/timestamps/tests/test_docs.py",
    "where.md": "packages/repository/tests/test_where_docs.py",
}

FENCE = re.compile(
    r"(?P<marker>^[ \t]*<!-- docs-example: (?P<mode>skip|pytest)(?P<reason>[^\n]*?)-->\n)?"
    r"^(?P<indent>[ \t]*)```python[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)

# Runs the blocks of one page in one namespace and exits non-zero on the first failure.
RUNNER = """
import json, sys
page, blocks = json.loads(sys.stdin.read())
namespace = {"__name__": "__main__"}
for line, source in blocks:
    # Blank lines in front keep the Markdown line numbers in tracebacks.
    exec(compile("\\n" * (line - 1) + source, page, "exec"), namespace)
"""


PYTEST_INI = """\
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
"""


@dataclass(frozen=True)
class Block:
    line: int
    source: str
    skip_reason: str | None
    is_pytest: bool = False


def python_blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        first_line = text.count("\n", 0, match.start("body")) + 1
        mode = match["mode"] if match["marker"] else None
        reason = match["reason"].strip(" ()") if mode == "skip" else None
        source = textwrap.dedent(match["body"])
        blocks.append(Block(first_line, source, reason, is_pytest=mode == "pytest"))
    return blocks


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


RUN_HERE = [page for page in pages() if page.name not in TESTED_ELSEWHERE and python_blocks(page)]


@pytest.mark.parametrize("page", RUN_HERE, ids=page_id)
def test_the_pages_examples_run(page: Path, tmp_path: Path) -> None:
    blocks = python_blocks(page)
    runnable = [
        (block.line, block.source)
        for block in blocks
        if block.skip_reason is None and not block.is_pytest
    ]
    skipped = [f"line {block.line}: {block.skip_reason}" for block in blocks if block.skip_reason]
    completed = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps([str(page), runnable]),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    for number, block in enumerate(blocks):
        if block.is_pytest:
            run_as_pytest_module(blocks[:number], block, tmp_path / f"pytest-{number}")
    if skipped:
        pytest.skip(f"ran {len(runnable)} blocks; not run: {'; '.join(skipped)}")


def run_as_pytest_module(earlier: list[Block], tests: Block, directory: Path) -> None:
    setup = [block.source for block in earlier if block.skip_reason is None and not block.is_pytest]
    directory.mkdir()
    (directory / "pytest.ini").write_text(PYTEST_INI)
    (directory / "test_page.py").write_text("\n\n".join([*setup, tests.source]))
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_page.py"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, f"tests at line {tests.line}:\n{completed.stdout}"


@pytest.mark.parametrize("guide", sorted(TESTED_ELSEWHERE))
def test_the_guide_is_run_by_its_package_tests(guide: str) -> None:
    test_file = ROOT / TESTED_ELSEWHERE[guide]
    assert test_file.is_file(), f"{guide}: {test_file} is gone; run the guide here instead"
    assert guide in test_file.read_text(encoding="utf-8"), f"{test_file} no longer reads {guide}"


def test_every_python_block_is_collected() -> None:
    # A fence the pattern does not recognise would silently go untested.
    for page in pages():
        text = page.read_text(encoding="utf-8")
        fences = len(re.findall(r"^[ \t]*```python", text, re.MULTILINE))
        assert fences == len(python_blocks(page)), f"{page_id(page)}: unparsed ```python fence"
