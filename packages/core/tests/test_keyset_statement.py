"""The page statement keyset pagination builds in one copy is the one SQLAlchemy's generative
methods build, on every dialect, for every shape of statement and ordering it pages."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, select, text
from sqlalchemy.dialects.mysql import aiomysql
from sqlalchemy.dialects.postgresql import asyncpg
from sqlalchemy.dialects.sqlite import aiosqlite
from sqlalchemy.engine import Dialect

from kysera.core._keyset import compose_page, limit_clause, plan_keyset

metadata = MetaData()
items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("n", Integer, nullable=False),
    Column("a", Integer),
    Column("s", String(8)),
)
owners = Table("owners", metadata, Column("id", Integer, primary_key=True), Column("name", String))
pets = Table(
    "pets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner_id", ForeignKey("owners.id")),
    Column("age", Integer, nullable=False),
)

DIALECTS: list[Dialect] = [asyncpg.dialect(), aiomysql.dialect(), aiosqlite.dialect()]
CASES: list[tuple[Any, list[Any]]] = [
    (select(items), [items.c.n]),
    (select(items), [items.c.n.desc(), items.c.id]),
    (select(items.c.id, items.c.s).order_by(items.c.s), [items.c.a.desc().nulls_first()]),
    (select(items).where(items.c.n > 3).fetch(7), [items.c.s, items.c.a]),
    (
        select(owners.c.name, pets.c.age).select_from(owners.outerjoin(pets)),
        [pets.c.age.desc()],
    ),
    (
        select(owners.c.name, pets.c.age).outerjoin(pets, pets.c.owner_id == owners.c.id),
        [pets.c.age],
    ),
    (select(items).where(text("n > 1 OR n < 0"), items.c.n != 2), [items.c.a.desc()]),
]


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda dialect: dialect.name)
@pytest.mark.parametrize(("statement", "order_by"), CASES)
def test_a_page_statement_is_what_the_generative_methods_build(
    dialect: Dialect, statement: Any, order_by: list[Any]
) -> None:
    plan = plan_keyset(statement, order_by)
    base = statement.add_columns(*plan.extra) if plan.extra else statement
    width = len(plan.keys)
    for backwards in (False, True):
        for nulls in (None, (False,) * width, (True,) + (False,) * (width - 1)):
            if nulls is not None and nulls[0] and not plan.keys[0].nullable:
                continue
            condition, order, orm = plan._build_parts(dialect, backwards, nulls)
            assert not orm
            limit = limit_clause(21)

            built = compose_page(base, condition, order, limit)
            generated = compose_page(base, condition, order, limit, generative=True)

            assert str(built.compile(dialect=dialect)) == str(generated.compile(dialect=dialect))
            assert built._generate_cache_key() == generated._generate_cache_key()
            assert built._fetch_clause is None
            # The statement paged is left as it was.
            assert base._limit_clause is None
            assert base._order_by_clauses == statement._order_by_clauses
