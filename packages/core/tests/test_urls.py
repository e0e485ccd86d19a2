"""`async_url`: every URL a platform hands out becomes one create_async_engine accepts."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import create_async_engine

from kysera.core import BadRequestError, async_url, driver_extra


@pytest.mark.parametrize(
    ("given_url", "expected"),
    [
        ("postgresql://app:pw@db/shop", "postgresql+asyncpg://app:pw@db/shop"),
        ("postgres://app@db:5433/shop", "postgresql+asyncpg://app@db:5433/shop"),
        ("postgresql+psycopg2://app@db/shop", "postgresql+asyncpg://app@db/shop"),
        ("mysql://root@db/shop?charset=utf8mb4", "mysql+asyncmy://root@db/shop?charset=utf8mb4"),
        ("mysql+pymysql://root@db/shop", "mysql+asyncmy://root@db/shop"),
        # SQLAlchemy's MariaDB dialect is its MySQL one by another name, which Kysera's
        # dialect checks would not recognise.
        ("mariadb://root@db/shop", "mysql+asyncmy://root@db/shop"),
        ("mariadb+pymysql://root@db/shop", "mysql+asyncmy://root@db/shop"),
        ("mariadb+aiomysql://root@db/shop", "mysql+aiomysql://root@db/shop"),
        ("postgres+asyncpg://app@db/shop", "postgresql+asyncpg://app@db/shop"),
        ("mysql+aiomysql://root@db/shop", "mysql+aiomysql://root@db/shop"),
        ("sqlite:///app.db", "sqlite+aiosqlite:///app.db"),
        ("sqlite://", "sqlite+aiosqlite://"),
        ("sqlite+pysqlite:///app.db", "sqlite+aiosqlite:///app.db"),
        # An async driver already named is kept.
        ("postgresql+psycopg://app@db/shop", "postgresql+psycopg://app@db/shop"),
        ("mysql+asyncmy://root@db/shop", "mysql+asyncmy://root@db/shop"),
        ("sqlite+aiosqlite:///app.db", "sqlite+aiosqlite:///app.db"),
    ],
)
def test_plain_and_sync_urls_get_the_async_driver(given_url: str, expected: str) -> None:
    assert async_url(given_url).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize(
    ("installed", "driver"),
    [({"asyncmy", "aiomysql"}, "asyncmy"), ({"aiomysql"}, "aiomysql"), (set(), "asyncmy")],
)
def test_plain_mysql_urls_get_asyncmy_or_else_the_installed_aiomysql(
    monkeypatch: pytest.MonkeyPatch, installed: set[str], driver: str
) -> None:
    import kysera.core.urls as urls

    # kysera-core[aiomysql] installs aiomysql alone; with neither driver the error names asyncmy.
    monkeypatch.setattr(urls, "_installed", lambda module: module in installed)
    assert async_url("mysql://root@db/shop").get_driver_name() == driver
    assert driver_extra("mysql://root@db/shop") == ("aiomysql" if driver == "aiomysql" else "mysql")


def test_a_url_object_is_accepted_and_the_password_kept() -> None:
    url = sa.make_url("postgresql://app:s3cret@db/shop")
    assert async_url(url).password == "s3cret"


def test_the_result_makes_an_async_engine_for_every_backend() -> None:
    for url in ("postgresql://u@h/d", "mysql://u@h/d", "sqlite:///x.db"):
        engine = create_async_engine(async_url(url))
        assert engine.dialect.is_async


def test_not_a_url_is_a_bad_request() -> None:
    with pytest.raises(BadRequestError, match="not a database URL"):
        async_url("not a url")


def test_the_extra_that_installs_the_driver() -> None:
    assert driver_extra("postgres://u@h/d") == "postgresql"
    assert driver_extra("mysql://u@h/d") == "mysql"
    assert driver_extra("sqlite://") == "sqlite"
    assert driver_extra("oracle+oracledb://u@h/d") is None


@settings(deadline=None)
@given(
    backend=st.sampled_from(["postgresql", "postgres", "mysql", "mariadb", "sqlite"]),
    database=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=20),
)
def test_mapping_is_idempotent_and_keeps_the_database(backend: str, database: str) -> None:
    url = f"sqlite:///{database}" if backend == "sqlite" else f"{backend}://user@host/{database}"
    once = async_url(url)
    assert async_url(once) == once
    assert once.database == database
    assert create_async_engine(once).dialect.is_async
