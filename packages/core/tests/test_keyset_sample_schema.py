"""Keyset walks on a Sakila-shaped rental-store schema (see sample_schema.py): its tables,
composite keys, ENUM rating, nullable columns, joins and views, on every database."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import InvalidQueryError, paginate_cursor
from kysera.core._keyset import plan_keyset

# The schema module sits next to this file (the tests run with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))
from sample_schema import (
    actor,
    category,
    customer,
    film,
    film_actor,
    film_category,
    film_list,
    load,
    payment,
    rental,
    sales_by_category,
)
from sample_schema import drop as drop_schema


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def store(kysera_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    async with kysera_engine.begin() as connection:
        await load(connection)
    yield kysera_engine
    async with kysera_engine.begin() as connection:
        await drop_schema(connection)


async def full_result(
    engine: AsyncEngine, statement: Any, order_by: list[Any], unique: bool = False
) -> list[dict[str, Any]]:
    plan = plan_keyset(statement, order_by, unique=unique)
    terms = list(plan._build_parts(engine.dialect, False, None)[1])
    async with engine.connect() as connection:
        result = await connection.execute(statement.order_by(None).order_by(*terms))
        return [dict(row) for row in result.mappings()]


async def walk(
    engine: AsyncEngine, statement: Any, order_by: list[Any], limit: int, **options: Any
) -> list[dict[str, Any]]:
    forward: list[dict[str, Any]] = []
    page = await paginate_cursor(engine, statement, order_by=order_by, limit=limit, **options)
    forward += page.items
    while page.next_cursor is not None:
        page = await paginate_cursor(
            engine, statement, order_by=order_by, limit=limit, after=page.next_cursor, **options
        )
        forward += page.items
    backward = list(page.items)
    while page.prev_cursor is not None:
        page = await paginate_cursor(
            engine, statement, order_by=order_by, limit=limit, before=page.prev_cursor, **options
        )
        backward = page.items + backward
    assert backward == forward
    return forward


CASES: dict[str, tuple[Any, list[Any]]] = {
    "films by rating (ENUM, nullable)": (select(film), [film.c.rating.desc(), film.c.length]),
    "films by title, rate": (
        select(film.c.title, film.c.rental_rate),
        [film.c.title, film.c.rental_rate.desc()],
    ),
    "films of 2006 by length, nulls first": (
        select(film).where(film.c.release_year == 2006),
        [film.c.length.nulls_first()],
    ),
    "actors by name": (select(actor), [actor.c.last_name, actor.c.first_name.desc()]),
    "film_actor (composite key) by film": (select(film_actor), [film_actor.c.film_id.desc()]),
    "customers by email (nullable), active": (
        select(customer).where(customer.c.active.is_(True)),
        [customer.c.email.desc(), customer.c.create_date],
    ),
    "rentals by return date (nullable)": (
        select(rental).where(rental.c.customer_id < 300),
        [rental.c.return_date.desc().nulls_first()],
    ),
    "payments by amount, date": (
        select(payment.c.payment_id, payment.c.amount),
        [payment.c.amount.desc(), payment.c.payment_date],
    ),
    "cast of films: film ⋈ film_actor ⋈ actor": (
        select(film.c.title, actor.c.last_name)
        .join_from(film, film_actor)
        .join(actor, actor.c.actor_id == film_actor.c.actor_id)
        .where(film.c.rating.in_(["PG", "R"])),
        [actor.c.last_name, film.c.title.desc()],
    ),
    "customers and their rentals (outer join)": (
        select(customer.c.last_name, rental.c.return_date).outerjoin_from(customer, rental),
        [rental.c.return_date, customer.c.last_name.desc()],
    ),
    "films per category (select_from join)": (
        select(category.c.name, film.c.rating).select_from(category.join(film_category).join(film)),
        [category.c.name, film.c.rating],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_a_walk_over_the_sample_schema_is_its_full_result(
    store: AsyncEngine, case: str
) -> None:
    statement, order_by = CASES[case]

    walked = await walk(store, statement, order_by, limit=97)

    assert walked == await full_result(store, statement, order_by)
    assert walked


async def test_rentals_per_customer_as_a_grouped_subquery(store: AsyncEngine) -> None:
    counts = (
        select(rental.c.customer_id, func.count().label("rentals"))
        .group_by(rental.c.customer_id)
        .subquery("counts")
    )
    statement = select(counts)

    walked = await walk(store, statement, [counts.c.rentals.desc()], limit=50)

    assert walked == await full_result(store, statement, [counts.c.rentals.desc()])
    assert sum(row["rentals"] for row in walked) == 3000


async def test_a_view_is_refused_without_unique_and_walks_with_it(store: AsyncEngine) -> None:
    with pytest.raises(InvalidQueryError, match="unique=True"):
        await paginate_cursor(store, select(film_list), order_by=[film_list.c.price])

    # Each film has one category in this data: fid identifies a row of the view.
    order_by = [film_list.c.rating, film_list.c.price.desc(), film_list.c.fid]
    walked = await walk(store, select(film_list), order_by, limit=120, unique=True)

    assert walked == await full_result(store, select(film_list), order_by, unique=True)
    assert len(walked) == 1000


async def test_a_grouped_view_walks_with_unique(store: AsyncEngine) -> None:
    order_by = [sales_by_category.c.total_sales.desc(), sales_by_category.c.category]

    walked = await walk(store, select(sales_by_category), order_by, limit=3, unique=True)

    assert walked == await full_result(store, select(sales_by_category), order_by, unique=True)
    assert len(walked) == 16
