"""`database_now` compiles to each database's UTC clock; zoned and naive differ in the cache."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from kysera.ttl import database_now


def test_compiles_per_dialect() -> None:
    zoned, naive = database_now(sa.DateTime(timezone=True)), database_now(sa.DateTime())
    assert str(zoned.compile(dialect=postgresql.dialect())) == "statement_timestamp()"
    assert "AT TIME ZONE 'UTC'" in str(naive.compile(dialect=postgresql.dialect()))
    assert str(naive.compile(dialect=mysql.dialect())) == "UTC_TIMESTAMP(6)"
    assert "'now'" in str(naive.compile(dialect=sqlite.dialect()))


def test_zoned_and_naive_have_different_cache_keys() -> None:
    zoned, naive = database_now(sa.DateTime(timezone=True)), database_now(sa.DateTime())
    assert zoned._generate_cache_key() != naive._generate_cache_key()
    assert (
        zoned._generate_cache_key()
        == database_now(sa.DateTime(timezone=True))._generate_cache_key()
    )
