"""Shared setup of kysera-core's tests."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from kysera.core.pytest_plugin import configured_database_urls


def pytest_configure(config: pytest.Config) -> None:
    # Import every configured database's driver before any test runs: pytester forgets the
    # modules imported during a test, and an extension module such as asyncpg's protocol
    # crashes the interpreter (a segmentation fault) when it is imported a second time.
    for url in configured_database_urls(config):
        make_url(url).get_dialect().import_dbapi()
