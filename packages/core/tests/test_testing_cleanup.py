"""clean_database: discovers tables, empties them children first, leaves no session state."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import BadRequestError, ForeignKeyError, classify_database_errors
from kysera.core.pytest_plugin import create_test_engine
from kysera.core.testing import clean_database, count_rows, seed_database

metadata = sa.MetaData()
authors = sa.Table(
    "tst_authors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50), nullable=False),
)
books = sa.Table(
    "tst_books",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("author_id", sa.ForeignKey("tst_authors.id"), nullable=False),
)
reviews = sa.Table(
    "tst_reviews",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("book_id", sa.ForeignKey("tst_books.id"), nullable=False),
)
# A table that references itself, and two tables that reference each other.
categories = sa.Table(
    "tst_categories",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("parent_id", sa.ForeignKey("tst_categories.id"), nullable=True),
)
teams = sa.Table(
    "tst_teams",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "captain_id",
        sa.ForeignKey("tst_players.id", use_alter=True, name="fk_tst_teams_captain"),
        nullable=True,
    ),
)
players = sa.Table(
    "tst_players",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("team_id", sa.ForeignKey("tst_teams.id"), nullable=False),
)
migrations = sa.Table(
    "kysera_migrations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
)
MINE = [t.name for t in metadata.sorted_tables]


@pytest.fixture(scope="module")
async def schema(kysera_engine: AsyncEngine) -> AsyncIterator[None]:
    async with kysera_engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
    yield
    await clean_database(kysera_engine, tables=MINE)  # the cycle's rows would block DROP
    async with kysera_engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)


@pytest.fixture
async def engine(kysera_engine: AsyncEngine, schema: None) -> AsyncIterator[AsyncEngine]:
    yield kysera_engine
    await clean_database(kysera_engine, tables=MINE)


@pytest.fixture
async def others(engine: AsyncEngine) -> list[str]:
    """Tables other tests of this package may have in the database: never ours to empty."""
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    return [name for name in names if name not in MINE]


async def fill(engine: AsyncEngine) -> None:
    await seed_database(
        engine,
        {
            authors: [{"id": 1, "name": "Le Guin"}, {"id": 2, "name": "Borges"}],
            books: [{"id": 1, "author_id": 1}, {"id": 2, "author_id": 2}],
            reviews: [{"id": 1, "book_id": 1}],
            categories: [{"id": 1, "parent_id": None}, {"id": 2, "parent_id": 1}],
            teams: [{"id": 1, "captain_id": None}],
            players: [{"id": 1, "team_id": 1}, {"id": 2, "team_id": 1}],
            migrations: [{"id": 1, "name": "001_init"}],
        },
    )
    # Close the cycle: the team's captain is one of its players; rows referencing their own table.
    async with engine.begin() as conn:
        await conn.execute(teams.update().values(captain_id=2))
        await conn.execute(categories.update().where(categories.c.id == 1).values(parent_id=2))


@pytest.mark.parametrize("strategy", ["delete", "truncate"])
async def test_discovers_tables_and_empties_them_children_first(
    engine: AsyncEngine, others: list[str], strategy: str
) -> None:
    await fill(engine)

    cleaned = await clean_database(engine, strategy, exclude=others)  # type: ignore[arg-type]

    assert sorted(cleaned) == sorted(set(MINE) - {"kysera_migrations"})
    if strategy == "delete":
        assert (
            cleaned.index("tst_reviews") < cleaned.index("tst_books") < cleaned.index("tst_authors")
        )
    for table in (authors, books, reviews, categories, teams, players):
        assert await count_rows(engine, table) == 0, table.name
    assert await count_rows(engine, migrations) == 1  # the migrations table is left alone


async def test_truncate_restarts_generated_ids_and_delete_does_not(
    engine: AsyncEngine, others: list[str]
) -> None:
    async def next_author_id() -> int:
        async with engine.begin() as conn:
            result = await conn.execute(authors.insert(), {"name": "next"})
            return int(result.inserted_primary_key[0])

    await seed_database(engine, {authors: [{"name": "a"}, {"name": "b"}, {"name": "c"}]})
    # PostgreSQL truncates a parent only together with the tables referencing it.
    await clean_database(engine, "truncate", tables=[authors, books, reviews])
    assert await next_author_id() == 1

    if engine.dialect.name != "sqlite":  # SQLite reuses max(rowid) + 1 either way
        await clean_database(engine, "delete", tables=[authors, books, reviews])
        assert await next_author_id() == 2


async def test_a_table_list_cleans_only_those_tables_in_a_safe_order(engine: AsyncEngine) -> None:
    await fill(engine)

    cleaned = await clean_database(engine, tables=["tst_authors", books, "tst_reviews"])

    assert cleaned == ["tst_reviews", "tst_books", "tst_authors"]
    assert await count_rows(engine, categories) == 2
    assert await count_rows(engine, players) == 2


async def test_the_migrations_table_name_is_configurable(
    engine: AsyncEngine, others: list[str]
) -> None:
    await fill(engine)

    await clean_database(engine, exclude=others, migrations_table="tst_authors")

    assert await count_rows(engine, migrations) == 0
    assert await count_rows(engine, authors) == 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"strategy": "drop"}, "unknown clean_database strategy"),
        ({"tables": ["tst_nope"]}, "unknown table 'tst_nope'"),
        ({"tables": ['tst_books"; DROP TABLE tst_authors; --']}, "quotes, semicolons"),
        ({"tables": ["tst_books;"]}, "quotes, semicolons"),
        ({"tables": ["tst_books`"]}, "quotes, semicolons"),
        ({"tables": ["tst_books'"]}, "quotes, semicolons"),
        ({"exclude": ["tst_nope"]}, "unknown table"),
        ({"tables": [""]}, "non-empty"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_deleted(
    engine: AsyncEngine, arguments: dict[str, object], message: str
) -> None:
    await fill(engine)

    with pytest.raises(BadRequestError, match=message):
        await clean_database(engine, **arguments)  # type: ignore[arg-type]

    assert await count_rows(engine, authors) == 2
    assert await count_rows(engine, reviews) == 1


@pytest.mark.parametrize("strategy", ["delete", "truncate"])
async def test_no_session_setting_stays_on_the_pooled_connection(
    kysera_database_url: str, schema: None, strategy: str
) -> None:
    engine = create_test_engine(kysera_database_url, pool_size=1, max_overflow=0)
    try:
        await fill(engine)
        await clean_database(engine, strategy, tables=MINE)  # type: ignore[arg-type]

        # The same (only) pooled connection enforces foreign keys at once, as before.
        async with engine.connect() as conn:
            if engine.dialect.name == "mysql":
                checks = await conn.exec_driver_sql("SELECT @@SESSION.foreign_key_checks")
                assert checks.scalar_one() == 1
            if engine.dialect.name == "sqlite":
                deferred = await conn.exec_driver_sql("PRAGMA defer_foreign_keys")
                assert deferred.scalar_one() == 0
            with pytest.raises(ForeignKeyError):
                async with classify_database_errors():
                    await conn.execute(books.insert(), {"id": 9, "author_id": 999})
    finally:
        await clean_database(engine, tables=MINE)
        await engine.dispose()


@pytest.mark.kysera_databases("postgresql")
@pytest.mark.parametrize("strategy", ["delete", "truncate"])
async def test_postgresql_needs_no_superuser(engine: AsyncEngine, strategy: str) -> None:
    # The usual deployment: an ordinary role that owns the application's tables.
    await fill(engine)
    async with engine.begin() as conn:
        await conn.exec_driver_sql(
            "DO $$ BEGIN CREATE ROLE kysera_test_cleaner NOLOGIN NOSUPERUSER; "
            "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
        for name in MINE:
            await conn.exec_driver_sql(f"ALTER TABLE {name} OWNER TO kysera_test_cleaner")

    async with engine.begin() as conn:
        await conn.exec_driver_sql("SET LOCAL ROLE kysera_test_cleaner")
        is_superuser = await conn.exec_driver_sql(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        )
        assert is_superuser.scalar_one() is False
        await clean_database(conn, strategy, tables=MINE)  # type: ignore[arg-type]

    assert await count_rows(engine, players) == 0
    assert await count_rows(engine, migrations) == 0


async def test_on_a_connection_it_runs_in_the_callers_transaction(engine: AsyncEngine) -> None:
    await fill(engine)

    async with engine.connect() as conn:
        await clean_database(conn, tables=[reviews])
        assert await count_rows(conn, reviews) == 0
        await conn.rollback()

    assert await count_rows(engine, reviews) == 1
