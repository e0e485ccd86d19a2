"""Fixtures of the change feed tests: the recorded tables and the change tables, per database."""

from __future__ import annotations

import sys
from pathlib import Path

from kysera.core.pytest_plugin import kysera_schema_fixture

sys.path.insert(0, str(Path(__file__).parent))

from changes_support import metadata

# The engine, with every test table and the change tables empty.
engine = kysera_schema_fixture(metadata)
