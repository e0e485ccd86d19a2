"""Fixtures of the versioning tests: the tables, created once per database, emptied per test."""

from __future__ import annotations

import sys
from pathlib import Path

from kysera.core.pytest_plugin import kysera_schema_fixture

sys.path.insert(0, str(Path(__file__).parent))

from versioning_support import metadata

# The engine, with every test table empty.
engine = kysera_schema_fixture(metadata)
