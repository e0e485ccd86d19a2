"""A rental-store schema shaped like the public Sakila sample database (its tables, keys,
an ENUM rating, nullable columns, composite keys, views), with a few thousand rows
generated deterministically, for keyset tests on a schema these tests did not shape.

The structure follows Sakila's published DDL (trimmed to the columns that matter for
ordering: ``film.rating`` is its ENUM, ``film_actor``/``film_category`` its composite
keys, ``rental.return_date`` and ``customer.email`` nullable, ``film_list`` a view over a
join and ``sales_by_category`` a GROUP BY view); the values are generated, with Sakila's
row counts for films (1000) and customers (599).
"""

from __future__ import annotations

import datetime as dt
import decimal
import random
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    insert,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection

RATINGS = ("G", "PG", "PG-13", "R", "NC-17")
metadata = MetaData()
category = Table(
    "sk_category",
    metadata,
    Column("category_id", SmallInteger, primary_key=True, autoincrement=False),
    Column("name", String(25), nullable=False),
)
actor = Table(
    "sk_actor",
    metadata,
    Column("actor_id", Integer, primary_key=True, autoincrement=False),
    Column("first_name", String(45), nullable=False),
    Column("last_name", String(45), nullable=False),
    Column("last_update", DateTime, nullable=False),
)
film = Table(
    "sk_film",
    metadata,
    Column("film_id", Integer, primary_key=True, autoincrement=False),
    Column("title", String(128), nullable=False),
    Column("release_year", SmallInteger, nullable=True),
    Column("rental_rate", Numeric(4, 2), nullable=False),
    Column("length", SmallInteger, nullable=True),
    Column("replacement_cost", Numeric(5, 2), nullable=False),
    Column("rating", Enum(*RATINGS, name="sk_mpaa_rating"), nullable=True),
    Column("last_update", DateTime, nullable=False),
)
film_actor = Table(
    "sk_film_actor",
    metadata,
    Column("actor_id", ForeignKey("sk_actor.actor_id"), primary_key=True),
    Column("film_id", ForeignKey("sk_film.film_id"), primary_key=True),
    Column("last_update", DateTime, nullable=False),
)
film_category = Table(
    "sk_film_category",
    metadata,
    Column("film_id", ForeignKey("sk_film.film_id"), primary_key=True),
    Column("category_id", ForeignKey("sk_category.category_id"), primary_key=True),
)
customer = Table(
    "sk_customer",
    metadata,
    Column("customer_id", Integer, primary_key=True, autoincrement=False),
    Column("store_id", SmallInteger, nullable=False),
    Column("first_name", String(45), nullable=False),
    Column("last_name", String(45), nullable=False),
    Column("email", String(50), nullable=True),
    Column("active", Boolean, nullable=False),
    Column("create_date", Date, nullable=False),
)
rental = Table(
    "sk_rental",
    metadata,
    Column("rental_id", Integer, primary_key=True, autoincrement=False),
    Column("rental_date", DateTime, nullable=False),
    Column("film_id", ForeignKey("sk_film.film_id"), nullable=False),
    Column("customer_id", ForeignKey("sk_customer.customer_id"), nullable=False),
    Column("return_date", DateTime, nullable=True),
)
payment = Table(
    "sk_payment",
    metadata,
    Column("payment_id", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", ForeignKey("sk_customer.customer_id"), nullable=False),
    Column("rental_id", ForeignKey("sk_rental.rental_id"), nullable=True),
    Column("amount", Numeric(5, 2), nullable=False),
    Column("payment_date", DateTime, nullable=False),
)
# The views as reflection shows them: no primary key.
film_list = Table(
    "sk_film_list",
    MetaData(),
    Column("fid", Integer),
    Column("title", String(128)),
    Column("category", String(25)),
    Column("price", Numeric(4, 2)),
    Column("length", SmallInteger),
    Column("rating", Enum(*RATINGS, name="sk_mpaa_rating")),
)
sales_by_category = Table(
    "sk_sales_by_category",
    MetaData(),
    Column("category", String(25)),
    Column("total_sales", Numeric(10, 2)),
)
VIEWS = {
    "sk_film_list": (
        "SELECT f.film_id AS fid, f.title AS title, c.name AS category, "
        "f.rental_rate AS price, f.length AS length, f.rating AS rating "
        "FROM sk_film f JOIN sk_film_category fc ON fc.film_id = f.film_id "
        "JOIN sk_category c ON c.category_id = fc.category_id"
    ),
    "sk_sales_by_category": (
        "SELECT c.name AS category, SUM(p.amount) AS total_sales "
        "FROM sk_payment p JOIN sk_rental r ON p.rental_id = r.rental_id "
        "JOIN sk_film_category fc ON fc.film_id = r.film_id "
        "JOIN sk_category c ON c.category_id = fc.category_id GROUP BY c.name"
    ),
}
CATEGORIES = [
    "Action", "Animation", "Children", "Classics", "Comedy", "Documentary", "Drama", "Family",
    "Foreign", "Games", "Horror", "Music", "New", "Sci-Fi", "Sports", "Travel",
]  # fmt: skip
FIRST = ["PENELOPE", "NICK", "ED", "JENNIFER", "JOHNNY", "BETTE", "GRACE", "MATTHEW", "JOE"]
LAST = ["GUINESS", "WAHLBERG", "CHASE", "DAVIS", "LOLLOBRIGIDA", "NICHOLSON", "MOSTEL", "berry"]
WORDS = ["ACADEMY", "DINOSAUR", "ACE", "GOLDFINGER", "ADAPTATION", "HOLES", "AFFAIR", "Zorro"]


def rows() -> dict[Table, list[dict[str, Any]]]:
    """Every table's rows, the same on every call."""
    chooser = random.Random(20060214)
    start = dt.datetime(2005, 5, 24, 22, 53, 30)
    moment = dt.datetime(2006, 2, 15, 4, 34, 33)
    films = [
        {
            "film_id": number,
            # Titles repeat: only the key tells films apart.
            "title": f"{chooser.choice(WORDS)} {chooser.choice(WORDS)}",
            "release_year": None if number % 17 == 0 else 2006,
            "rental_rate": decimal.Decimal(chooser.choice(["0.99", "2.99", "4.99"])),
            "length": None if number % 23 == 0 else chooser.randint(46, 185),
            "replacement_cost": decimal.Decimal(chooser.randint(999, 2999)) / 100,
            "rating": None if number % 31 == 0 else chooser.choice(RATINGS),
            "last_update": moment,
        }
        for number in range(1, 1001)
    ]
    actors = [
        {
            "actor_id": number,
            "first_name": chooser.choice(FIRST),
            "last_name": chooser.choice(LAST),
            "last_update": moment,
        }
        for number in range(1, 201)
    ]
    pairs = sorted({(chooser.randint(1, 200), chooser.randint(1, 1000)) for _ in range(2600)})
    film_actors = [
        {"actor_id": actor_id, "film_id": film_id, "last_update": moment}
        for actor_id, film_id in pairs
    ]
    categories = [{"category_id": i, "name": name} for i, name in enumerate(CATEGORIES, 1)]
    film_categories = [
        {"film_id": number, "category_id": chooser.randint(1, 16)} for number in range(1, 1001)
    ]
    customers = [
        {
            "customer_id": number,
            "store_id": 1 + number % 2,
            "first_name": chooser.choice(FIRST),
            "last_name": chooser.choice(LAST),
            "email": None if number % 13 == 0 else f"c{number}@sakilacustomer.org",
            "active": number % 19 != 0,
            "create_date": dt.date(2006, 2, 14) + dt.timedelta(days=number % 3),
        }
        for number in range(1, 600)
    ]
    rentals = []
    for number in range(1, 3001):
        rented = start + dt.timedelta(minutes=chooser.randint(0, 60 * 24 * 90))
        returned = None if number % 11 == 0 else rented + dt.timedelta(days=chooser.randint(1, 9))
        rentals.append(
            {
                "rental_id": number,
                "rental_date": rented,
                "film_id": chooser.randint(1, 1000),
                "customer_id": chooser.randint(1, 599),
                "return_date": returned,
            }
        )
    payments = [
        {
            "payment_id": number,
            "customer_id": rentals[number - 1]["customer_id"],
            "rental_id": None if number % 29 == 0 else number,
            "amount": decimal.Decimal(chooser.choice(["0.99", "2.99", "4.99", "5.99", "9.99"])),
            "payment_date": rentals[number - 1]["rental_date"],
        }
        for number in range(1, 3001)
    ]
    return {
        category: categories,
        actor: actors,
        film: films,
        film_actor: film_actors,
        film_category: film_categories,
        customer: customers,
        rental: rentals,
        payment: payments,
    }


async def load(connection: AsyncConnection) -> None:
    """Create the tables and views and insert the rows (anything there before is dropped)."""
    await drop(connection)
    await connection.run_sync(metadata.create_all)
    for table, table_rows in rows().items():
        await connection.execute(insert(table), table_rows)
    for name, body in VIEWS.items():
        await connection.execute(text(f"CREATE VIEW {name} AS {body}"))


async def drop(connection: AsyncConnection) -> None:
    for name in VIEWS:
        await connection.execute(text(f"DROP VIEW IF EXISTS {name}"))
    await connection.run_sync(metadata.drop_all)
