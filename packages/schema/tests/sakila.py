"""A part of MySQL's Sakila sample database (a DVD rental store), for discovery tests.

The tables, column types, defaults, keys and the view follow the published Sakila schema and
its PostgreSQL port (an ``mpaa_rating`` enum type, ``text[]`` special features), not a schema
designed for these tests: two foreign keys from ``film`` to ``language``, join tables with a
composite key and an extra column, MySQL ``ENUM``/``SET``/``YEAR``/unsigned types, server
defaults everywhere. ``staff.reports_to``, ``staff.preferences`` (JSON) and
``staff.deleted_at`` are not in Sakila: a self reference, a JSON column and a soft-deletable
table.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

TABLES = (
    "language",
    "actor",
    "category",
    "film",
    "film_actor",
    "film_category",
    "staff",
)
VIEWS = ("film_list",)
NAMES = TABLES + VIEWS

_VIEW = """
CREATE VIEW film_list AS
SELECT film.film_id AS fid, film.title AS title, category.name AS category,
       film.rental_rate AS price, film.rating AS rating
FROM film
JOIN film_category ON film_category.film_id = film.film_id
JOIN category ON category.category_id = film_category.category_id
"""

_POSTGRESQL = [
    "CREATE TYPE mpaa_rating AS ENUM ('G', 'PG', 'PG-13', 'R', 'NC-17')",
    """CREATE TABLE language (
        language_id serial PRIMARY KEY,
        name character(20) NOT NULL,
        last_update timestamp without time zone DEFAULT now() NOT NULL)""",
    """CREATE TABLE actor (
        actor_id serial PRIMARY KEY,
        first_name character varying(45) NOT NULL,
        last_name character varying(45) NOT NULL,
        last_update timestamp without time zone DEFAULT now() NOT NULL)""",
    """CREATE TABLE category (
        category_id serial PRIMARY KEY,
        name character varying(25) NOT NULL,
        last_update timestamp without time zone DEFAULT now() NOT NULL)""",
    """CREATE TABLE film (
        film_id serial PRIMARY KEY,
        title character varying(255) NOT NULL,
        description text,
        release_year integer,
        language_id smallint NOT NULL REFERENCES language (language_id),
        original_language_id smallint REFERENCES language (language_id),
        rental_duration smallint DEFAULT 3 NOT NULL,
        rental_rate numeric(4,2) DEFAULT 4.99 NOT NULL,
        length smallint,
        replacement_cost numeric(5,2) DEFAULT 19.99 NOT NULL,
        rating mpaa_rating DEFAULT 'G',
        last_update timestamp without time zone DEFAULT now() NOT NULL,
        special_features text[])""",
    """CREATE TABLE film_actor (
        actor_id smallint NOT NULL REFERENCES actor (actor_id),
        film_id smallint NOT NULL REFERENCES film (film_id),
        last_update timestamp without time zone DEFAULT now() NOT NULL,
        PRIMARY KEY (actor_id, film_id))""",
    """CREATE TABLE film_category (
        film_id smallint NOT NULL REFERENCES film (film_id),
        category_id smallint NOT NULL REFERENCES category (category_id),
        last_update timestamp without time zone DEFAULT now() NOT NULL,
        PRIMARY KEY (film_id, category_id))""",
    """CREATE TABLE staff (
        staff_id serial PRIMARY KEY,
        first_name character varying(45) NOT NULL,
        last_name character varying(45) NOT NULL,
        email character varying(50),
        active boolean DEFAULT true NOT NULL,
        reports_to integer REFERENCES staff (staff_id),
        picture bytea,
        preferences jsonb,
        deleted_at timestamp with time zone)""",
    _VIEW,
]

_MYSQL = [
    """CREATE TABLE language (
        language_id TINYINT UNSIGNED NOT NULL AUTO_INCREMENT,
        name CHAR(20) NOT NULL,
        last_update TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
        PRIMARY KEY (language_id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE actor (
        actor_id SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT,
        first_name VARCHAR(45) NOT NULL,
        last_name VARCHAR(45) NOT NULL,
        last_update TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
        PRIMARY KEY (actor_id), KEY idx_actor_last_name (last_name)) ENGINE=InnoDB""",
    """CREATE TABLE category (
        category_id TINYINT UNSIGNED NOT NULL AUTO_INCREMENT,
        name VARCHAR(25) NOT NULL,
        last_update TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
        PRIMARY KEY (category_id)) ENGINE=InnoDB""",
    """CREATE TABLE film (
        film_id SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT,
        title VARCHAR(128) NOT NULL,
        description TEXT DEFAULT NULL,
        release_year YEAR DEFAULT NULL,
        language_id TINYINT UNSIGNED NOT NULL,
        original_language_id TINYINT UNSIGNED DEFAULT NULL,
        rental_duration TINYINT UNSIGNED NOT NULL DEFAULT 3,
        rental_rate DECIMAL(4,2) NOT NULL DEFAULT 4.99,
        length SMALLINT UNSIGNED DEFAULT NULL,
        replacement_cost DECIMAL(5,2) NOT NULL DEFAULT 19.99,
        rating ENUM('G','PG','PG-13','R','NC-17') DEFAULT 'G',
        special_features SET('Trailers','Commentaries','Deleted Scenes','Behind the Scenes')
            DEFAULT NULL,
        last_update TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
        PRIMARY KEY (film_id),
        CONSTRAINT fk_film_language FOREIGN KEY (language_id)
            REFERENCES language (language_id),
        CONSTRAINT fk_film_language_original FOREIGN KEY (original_language_id)
            REFERENCES language (language_id)) ENGINE=InnoDB""",
    """CREATE TABLE film_actor (
        actor_id SMALLINT UNSIGNED NOT NULL,
        film_id SMALLINT UNSIGNED NOT NULL,
        last_update TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
        PRIMARY KEY (actor_id, film_id),
        CONSTRAINT fk_film_actor_actor FOREIGN KEY (actor_id) REFERENCES actor (actor_id),
        CONSTRAINT fk_film_actor_film FOREIGN KEY (film_id) REFERENCES film (film_id))
        ENGINE=InnoDB""",
    """CREATE TABLE film_category (
        film_id SMALLINT UNSIGNED NOT NULL,
        category_id TINYINT UNSIGNED NOT NULL,
        last_update TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
        PRIMARY KEY (film_id, category_id),
        CONSTRAINT fk_film_category_film FOREIGN KEY (film_id) REFERENCES film (film_id),
        CONSTRAINT fk_film_category_category FOREIGN KEY (category_id)
            REFERENCES category (category_id)) ENGINE=InnoDB""",
    """CREATE TABLE staff (
        staff_id TINYINT UNSIGNED NOT NULL AUTO_INCREMENT,
        first_name VARCHAR(45) NOT NULL,
        last_name VARCHAR(45) NOT NULL,
        email VARCHAR(50) DEFAULT NULL,
        active BOOLEAN NOT NULL DEFAULT TRUE,
        reports_to TINYINT UNSIGNED DEFAULT NULL,
        picture BLOB DEFAULT NULL,
        preferences JSON DEFAULT NULL,
        deleted_at DATETIME(6) DEFAULT NULL,
        PRIMARY KEY (staff_id),
        CONSTRAINT fk_staff_reports_to FOREIGN KEY (reports_to) REFERENCES staff (staff_id))
        ENGINE=InnoDB""",
    _VIEW,
]

_SQLITE = [
    """CREATE TABLE language (
        language_id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
        name CHAR(20) NOT NULL,
        last_update TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)""",
    """CREATE TABLE actor (
        actor_id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
        first_name VARCHAR(45) NOT NULL,
        last_name VARCHAR(45) NOT NULL,
        last_update TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)""",
    """CREATE TABLE category (
        category_id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
        name VARCHAR(25) NOT NULL,
        last_update TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)""",
    """CREATE TABLE film (
        film_id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
        title VARCHAR(255) NOT NULL,
        description BLOB SUB_TYPE TEXT DEFAULT NULL,
        release_year VARCHAR(4) DEFAULT NULL,
        language_id SMALLINT NOT NULL,
        original_language_id SMALLINT DEFAULT NULL,
        rental_duration SMALLINT DEFAULT 3 NOT NULL,
        rental_rate DECIMAL(4,2) DEFAULT 4.99 NOT NULL,
        length SMALLINT DEFAULT NULL,
        replacement_cost DECIMAL(5,2) DEFAULT 19.99 NOT NULL,
        rating VARCHAR(10) DEFAULT 'G',
        special_features VARCHAR(100) DEFAULT NULL,
        last_update TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
        CONSTRAINT fk_film_language FOREIGN KEY (language_id)
            REFERENCES language (language_id),
        CONSTRAINT fk_film_language_original FOREIGN KEY (original_language_id)
            REFERENCES language (language_id))""",
    """CREATE TABLE film_actor (
        actor_id INT NOT NULL,
        film_id INT NOT NULL,
        last_update TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
        PRIMARY KEY (actor_id, film_id),
        CONSTRAINT fk_film_actor_actor FOREIGN KEY (actor_id) REFERENCES actor (actor_id),
        CONSTRAINT fk_film_actor_film FOREIGN KEY (film_id) REFERENCES film (film_id))""",
    """CREATE TABLE film_category (
        film_id INT NOT NULL,
        category_id SMALLINT NOT NULL,
        last_update TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
        PRIMARY KEY (film_id, category_id),
        CONSTRAINT fk_film_category_film FOREIGN KEY (film_id) REFERENCES film (film_id),
        CONSTRAINT fk_film_category_category FOREIGN KEY (category_id)
            REFERENCES category (category_id))""",
    """CREATE TABLE staff (
        staff_id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
        first_name VARCHAR(45) NOT NULL,
        last_name VARCHAR(45) NOT NULL,
        email VARCHAR(50) DEFAULT NULL,
        active SMALLINT DEFAULT 1 NOT NULL,
        reports_to INT DEFAULT NULL,
        picture BLOB DEFAULT NULL,
        preferences JSON DEFAULT NULL,
        deleted_at TIMESTAMP DEFAULT NULL,
        CONSTRAINT fk_staff_reports_to FOREIGN KEY (reports_to) REFERENCES staff (staff_id))""",
    _VIEW,
]

_DDL = {"postgresql": _POSTGRESQL, "mysql": _MYSQL, "sqlite": _SQLITE}


async def drop_sakila(engine: AsyncEngine) -> None:
    """Drop the view, the tables (children first) and PostgreSQL's enum type, if present."""
    async with engine.begin() as connection:
        await connection.execute(text("DROP VIEW IF EXISTS film_list"))
        for name in reversed(TABLES):
            await connection.execute(text(f"DROP TABLE IF EXISTS {name}"))
        if engine.dialect.name == "postgresql":
            await connection.execute(text("DROP TYPE IF EXISTS mpaa_rating"))


async def create_sakila(engine: AsyncEngine) -> None:
    """Create the tables and the view, and a few rows."""
    await drop_sakila(engine)
    async with engine.begin() as connection:
        for statement in _DDL[engine.dialect.name]:
            await connection.execute(text(statement))
        await connection.execute(
            text("INSERT INTO language (language_id, name) VALUES (1, 'English'), (2, 'Italian')")
        )
        await connection.execute(
            text(
                "INSERT INTO actor (actor_id, first_name, last_name) VALUES "
                "(1, 'PENELOPE', 'GUINESS'), (2, 'NICK', 'WAHLBERG'), (3, 'ED', 'CHASE')"
            )
        )
        await connection.execute(
            text("INSERT INTO category (category_id, name) VALUES (1, 'Action'), (2, 'Comedy')")
        )
        await connection.execute(
            text(
                "INSERT INTO film (film_id, title, language_id, rating) VALUES "
                "(1, 'ACADEMY DINOSAUR', 1, 'PG'), (2, 'ACE GOLDFINGER', 1, 'G')"
            )
        )
        await connection.execute(
            text("INSERT INTO film_actor (actor_id, film_id) VALUES (1, 1), (2, 1), (3, 2)")
        )
        await connection.execute(
            text("INSERT INTO film_category (film_id, category_id) VALUES (1, 1), (2, 2)")
        )
        if engine.dialect.name == "postgresql":
            # Explicit keys above: move the sequences past them, as a dump's setval does.
            for table, key in (
                ("language", "language_id"),
                ("actor", "actor_id"),
                ("category", "category_id"),
                ("film", "film_id"),
            ):
                await connection.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', '{key}'), 10)")
                )
