"""Test setup for the example service: its modules import each other by plain name."""

from __future__ import annotations

import sys
from pathlib import Path

# The service is a directory of modules, not an installed package (as uvicorn's --app-dir).
sys.path.insert(0, str(Path(__file__).parent))
