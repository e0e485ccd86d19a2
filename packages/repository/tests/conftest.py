"""Fixtures of the repository tests: the test tables, created once per database (dropped at
the end of the session)."""

from __future__ import annotations

import sys
from pathlib import Path

from kysera.core.pytest_plugin import kysera_schema_fixture

sys.path.insert(0, str(Path(__file__).parent))

from repository_support import metadata

# The engine, with every test table empty.
engine = kysera_schema_fixture(metadata)
# The engine, with the test tables as the previous test left them.
schema = kysera_schema_fixture(metadata, clean=False)
