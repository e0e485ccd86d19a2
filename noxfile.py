"""Development sessions: ``nox -s tests``, ``nox -s lint``, ``nox -s typecheck``.

Each package is tested in a virtualenv holding only that package, the Kysera packages it
declares, the test tools, and what its ``[dependency-groups] test`` lists (a test-only
need, such as soft delete's tests running it together with timestamps), so an import the
package does not declare fails its tests.
"""

from __future__ import annotations

from pathlib import Path

import nox
import tomllib
from packaging.requirements import Requirement

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
PACKAGES = ["core", "repository", "migrations", "soft_delete", "audit", "timestamps"]
# Drivers for the three databases and the pytest plugin's own extras.
CORE_TEST_EXTRAS = "[sqlite,postgresql,mysql,testing]"
TEST_REQUIREMENTS = ["hypothesis>=6.100"]
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
    names = [str(_project(package)["name"]) for package in packages]
    reinstall: list[str] = []
    if session.venv_backend == "uv":
        for name in names:
            reinstall += ["--reinstall-package", name]
    session.install(*paths, *extra, *reinstall)


@nox.session
@nox.parametrize("package", PACKAGES, ids=PACKAGES)
def tests(session: nox.Session, package: str) -> None:
    """Run one package's tests on SQLite and on every database whose URL is set."""
    # A package's tests may need more than it does at run time (e.g. soft delete's tests run
    # it together with timestamps): its [dependency-groups] test lists those.
    test_only = _requirements(package, group="test")
    local = [_directory_of(r.name) for r in test_only if r.name.startswith("kysera-")]
    others = [str(r) for r in test_only if not r.name.startswith("kysera-")]
    _install_local(session, _local_closure(package, *local), *TEST_REQUIREMENTS, *others)
    session.run("pytest", f"packages/{package}/tests", *session.posargs)


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


@nox.session
def examples(session: nox.Session) -> None:
    """Run the examples the README points to, on SQLite."""
    session.install("-r", "examples/requirements.txt")
    session.run("python", "examples/quickstart.py")
