"""Development sessions: ``nox -s tests``, ``nox -s lint``, ``nox -s typecheck``.

Each package is tested in a virtualenv holding only that package, the Kysera packages it
declares, the test tools, and what its ``[dependency-groups] test`` lists (a test-only
need, such as soft delete's tests running it together with timestamps), so an import the
package does not declare fails its tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nox
from packaging.requirements import Requirement

if sys.version_info >= (3, 11):  # noqa: UP036 (nox itself may run on an older Python)
    import tomllib
else:  # nox depends on tomli there
    import tomli as tomllib

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
# Every Python the packages support (requires-python >= 3.11; 3.10 reached its end of life in
# October 2026); the tests run on each one installed here.
SUPPORTED_PYTHONS = ["3.11", "3.12", "3.13"]


def _runs(interpreter: str) -> bool:
    try:
        return (
            subprocess.run([interpreter, "-c", ""], capture_output=True, timeout=30).returncode == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def _installed_pythons() -> list[str]:
    """The supported Pythons this machine has, made findable by nox as ``pythonX.Y``.

    pyenv installs each version under ~/.pyenv/versions/, but its ``pythonX.Y`` shims fail for
    a version that is not selected (``pyenv global``): such interpreters are linked into
    .nox/.pythons/, put first on PATH, so that nox (and uv) find the real ones.
    """
    links = ROOT / ".nox" / ".pythons"
    found = []
    for version in SUPPORTED_PYTHONS:
        name = f"python{version}"
        if _runs(name):
            found.append(version)
            continue
        pyenv = sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin/{name}"), reverse=True)
        for interpreter in pyenv:
            if _runs(str(interpreter)):
                links.mkdir(parents=True, exist_ok=True)
                (links / name).unlink(missing_ok=True)
                (links / name).symlink_to(interpreter)
                found.append(version)
                break
    if links.is_dir() and str(links) not in os.environ["PATH"].split(os.pathsep):
        os.environ["PATH"] = f"{links}{os.pathsep}{os.environ['PATH']}"
    return found or [f"{sys.version_info.major}.{sys.version_info.minor}"]


PYTHONS = _installed_pythons()
PACKAGES = [
    "core",
    "repository",
    "migrations",
    "soft_delete",
    "audit",
    "timestamps",
    "changes",
    "ttl",
    "kv",
    "versioning",
    "schema",
    "rls",
]
# Drivers for the three databases and the pytest plugin's own extras.
CORE_TEST_EXTRAS = "[sqlite,postgresql,mysql,aiomysql,testing]"
# MySQL/MariaDB run the whole suite on asyncmy (KYSERA_TEST_MYSQL_URL). aiomysql, the other
# supported driver, runs the tests of what differs between drivers (value types, bytes,
# errors) when KYSERA_TEST_MYSQL_AIOMYSQL_URL is set: the rest never touches the driver.
AIOMYSQL_URL_ENV = "KYSERA_TEST_MYSQL_AIOMYSQL_URL"
AIOMYSQL_TESTS = {
    "core": ["test_pagination_keyset.py", "test_errors.py", "test_connection_faults.py"],
    "repository": ["test_where.py", "test_value_types.py", "test_stored_datetimes.py"],
    "audit": ["test_values_and_queries.py", "test_type_matrix.py"],
    "versioning": ["test_versioning.py"],
    "kv": ["test_drivers.py"],
}
TEST_REQUIREMENTS = ["hypothesis>=6.100"]
# A SQLAlchemy requirement to test against instead of the newest release, e.g. the oldest the
# packages allow: KYSERA_TEST_SQLALCHEMY="sqlalchemy==2.0.30" (CI does, on the lowest Python).
SQLALCHEMY_ENV = "KYSERA_TEST_SQLALCHEMY"
# Pinned so that a new release cannot turn CI red on its own.
RUFF = "ruff==0.17.5"
MYPY = "mypy==2.4.1"
BENCH_REQUIREMENTS = ["pytest-benchmark>=5", "advanced-alchemy>=1.0"]


def _project(package: str) -> dict[str, object]:
    with (ROOT / "packages" / package / "pyproject.toml").open("rb") as file:
        project: dict[str, object] = tomllib.load(file)["project"]
    return project


def _directory_of(distribution: str) -> str:
    for package in PACKAGES:
        if _project(package)["name"] == distribution:
            return package
    raise LookupError(distribution)


def _requirements(package: str, group: str | None = None) -> list[Requirement]:
    """The package's runtime dependencies, or those of one of its ``[dependency-groups]``."""
    path = ROOT / "packages" / package / "pyproject.toml"
    if group is None:
        dependencies: list[str] = _project(package).get("dependencies", [])  # type: ignore[assignment]
    else:
        with path.open("rb") as file:
            dependencies = tomllib.load(file).get("dependency-groups", {}).get(group, [])
    return [Requirement(dependency) for dependency in dependencies]


def _local_closure(*packages: str) -> list[str]:
    """The packages and every Kysera package they depend on, directly or not."""
    found: list[str] = []
    pending = list(packages)
    while pending:
        current = pending.pop()
        if current in found:
            continue
        found.append(current)
        for requirement in _requirements(current):
            if requirement.name.startswith("kysera-"):
                pending.append(_directory_of(requirement.name))
    return found


def _install_local(session: nox.Session, packages: list[str], *extra: str) -> None:
    paths = [
        f"./packages/{package}{CORE_TEST_EXTRAS if package == 'core' else ''}"
        for package in packages
    ]
    session.install(*paths, *extra, *_reinstall(session, packages))


def _reinstall(session: nox.Session, packages: list[str]) -> list[str]:
    """uv caches builds of local paths: make it rebuild ours, whose sources change."""
    if session.venv_backend != "uv":
        return []
    reinstall: list[str] = []
    for package in packages:
        reinstall += ["--reinstall-package", str(_project(package)["name"])]
    return reinstall


@nox.session(python=PYTHONS)
@nox.parametrize("package", PACKAGES, ids=PACKAGES)
def tests(session: nox.Session, package: str) -> None:
    """Run one package's tests on SQLite and on every database whose URL is set.

    Once per installed supported Python: ``nox -s tests`` runs them all, ``nox -s tests -p
    3.11`` one of them. Arguments after ``--`` go to pytest.
    """
    # A package's tests may need more than it does at run time (e.g. soft delete's tests run
    # it together with timestamps): its [dependency-groups] test lists those.
    test_only = _requirements(package, group="test")
    local = [_directory_of(r.name) for r in test_only if r.name.startswith("kysera-")]
    others = [str(r) for r in test_only if not r.name.startswith("kysera-")]
    if os.environ.get(SQLALCHEMY_ENV):
        others.append(os.environ[SQLALCHEMY_ENV])
    _install_local(session, _local_closure(package, *local), *TEST_REQUIREMENTS, *others)
    session.run("pytest", f"packages/{package}/tests", *session.posargs)
    aiomysql_url = os.environ.get(AIOMYSQL_URL_ENV)
    if aiomysql_url and package in AIOMYSQL_TESTS:
        files = [f"packages/{package}/tests/{name}" for name in AIOMYSQL_TESTS[package]]
        session.run("pytest", *files, "--kysera-db-url", aiomysql_url, *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint and format check."""
    session.install(RUFF)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over every package's sources."""
    _install_local(session, PACKAGES, MYPY)
    session.run("mypy", *session.posargs)


@nox.session
def packaging(session: nox.Session) -> None:
    """Build every wheel, then install each alone into an empty virtualenv and import it."""
    wheels = session.create_tmp()
    session.install("uv>=0.5")
    for package in PACKAGES:
        session.run("uv", "build", "--quiet", "--wheel", "--out-dir", wheels, f"packages/{package}")
    for package in PACKAGES:
        # A fresh environment: the package and its declared dependencies, nothing else.
        target = Path(wheels) / f"only-{package}"
        session.run("python", "-m", "venv", "--clear", str(target))
        python = str(target / "bin" / "python")
        distribution = str(_project(package)["name"])
        session.run(
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--find-links",
            wheels,
            distribution,
            external=True,
        )
        session.run(python, "-c", _IMPORT_CHECK.format(module=f"kysera.{package}"), external=True)


_IMPORT_CHECK = """
import importlib, importlib.util, pathlib
module = importlib.import_module("{module}")
namespace = importlib.util.find_spec("kysera")
assert namespace.origin in (None, "namespace"), "kysera must stay a namespace package"
assert (pathlib.Path(module.__file__).parent / "py.typed").exists(), "py.typed missing"
print("{module}: imported alone, exports", len(module.__all__), "names")
"""


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks (PostgreSQL): Kysera side by side with raw asyncpg and plain SQLAlchemy Core.

    Not part of a bare ``nox`` run. Needs ``KYSERA_BENCH_POSTGRES_URL`` or
    ``KYSERA_TEST_POSTGRES_URL``; record results in benchmarks/RESULTS.md.
    """
    _install_local(session, PACKAGES, *BENCH_REQUIREMENTS)
    session.run("pytest", "benchmarks", *session.posargs)


# The documentation toolchain, pinned: a new release must not break the strict build on its own.
DOCS_REQUIREMENTS = [
    "mkdocs==1.6.1",
    "mkdocs-material==9.8.1",
    "mkdocstrings==1.0.8",
    "mkdocstrings-python==2.0.11",
    "griffe==2.4.1",
    "pymdown-extensions==13.1",
]

# What the guides' examples import besides Kysera (the web frameworks of the health guide).
DOCS_EXAMPLE_REQUIREMENTS = ["fastapi>=0.110", "litestar>=2.0", "httpx>=0.27"]


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site in strict mode (any warning fails) into site/."""
    # ruff formats the signatures in the API reference.
    _install_local(session, PACKAGES, *DOCS_REQUIREMENTS, RUFF)
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "--site-dir",
        "site",
        *session.posargs,
        env={"NO_MKDOCS_2_WARNING": "1"},
    )


@nox.session
def doctests(session: nox.Session) -> None:
    """Run the Python examples of README.md and docs/ (SQLite) that no package test runs."""
    _install_local(session, PACKAGES, *DOCS_EXAMPLE_REQUIREMENTS)
    session.run("pytest", "docs/test_examples.py", *session.posargs)


@nox.session
def examples(session: nox.Session) -> None:
    """Run the quickstart (SQLite) and the example service's tests (every configured database)."""
    session.install(
        "-r",
        "examples/requirements.txt",
        "-r",
        "examples/service/requirements.txt",
        *_reinstall(session, PACKAGES),
    )
    session.run("python", "examples/quickstart.py")
    session.run("pytest", "examples/service", *session.posargs)
