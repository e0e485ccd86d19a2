"""Fixtures of the audit tests: the audited tables and the audit table, per database."""

from __future__ import annotations

import sys
from pathlib import Path

from kysera.core.pytest_plugin import kysera_schema_fixture

sys.path.insert(0, str(Path(__file__).parent))

from audit_support import metadata

# The engine, with every test table and the audit log empty.
engine = kysera_schema_fixture(metadata)
