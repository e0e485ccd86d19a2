"""The repository's own files a new user and a package index rely on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = sorted(path.parent for path in (ROOT / "packages").glob("*/pyproject.toml"))


def test_license_changelog_and_contributing_exist() -> None:
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert (ROOT / "CHANGELOG.md").read_text().startswith("# Changelog")
    assert "KYSERA_TEST_POSTGRES_URL" in (ROOT / "CONTRIBUTING.md").read_text()


@pytest.mark.parametrize("package", PACKAGES, ids=[path.name for path in PACKAGES])
def test_each_package_readme_stands_alone(package: Path) -> None:
    # A package index shows the README alone: relative links there lead nowhere.
    text = (package / "README.md").read_text()
    assert not re.search(r"\]\((?!https?://)[^)]*\)", text), "relative link in README"
    assert "./packages/" in text  # the install line that works from a clone today
    pyproject = (package / "pyproject.toml").read_text()
    assert re.search(r'^license = "MIT"$', pyproject, re.MULTILINE)
