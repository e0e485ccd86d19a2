"""Repository reads and writes on every database: entities, dicts, composite keys, errors."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from repository_support import Membership, User, UserCreate, counters, memberships, users
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import (
    InvalidQueryError,
    KyseraError,
    NotFoundError,
    NotNullError,
    UniqueConstraintError,
    ValidationError,
)
from kysera.core.capture import capture_queries
from kysera.core.pytest_plugin import create_test_engine
from kysera.core.testing import snapshot_table
from kysera.repository import Repository, create_repository


def user_repository(engine: AsyncEngine, **kwargs: Any) -> Repository[User]:
    return create_repository(engine, users, entity=User, create=UserCreate, **kwargs)


def alice(**extra: Any) -> dict[str, Any]:
    return {"email": "alice@example.com", "name": "Alice", "age": 30, **extra}


async def test_create_returns_the_stored_row_with_database_defaults(engine: AsyncEngine) -> None:
    repo = user_repository(engine)

    created = await repo.create({"email": "bob@example.com", "name": "Bob"})

    assert isinstance(created, User)
    assert created.id > 0
    assert created.status == "active"
    assert created.age is None
    assert await snapshot_table(engine, users) == [created.model_dump()]


async def test_find_by_id_get_and_missing_rows(engine: AsyncEngine) -> None:
    repo = user_repository(engine)
    created = await repo.create(alice())

    assert await repo.find_by_id(created.id) == created
    assert await repo.find_by_id({"id": created.id}) == created
    assert await repo.get(created.id) == created
    assert await repo.find_by_id(created.id + 1000) is None
    with pytest.raises(NotFoundError) as raised:
        await repo.get(created.id + 1000)
    assert raised.value.entity == "rp_users"


async def test_invalid_input_raises_validation_error_and_writes_nothing(
    engine: AsyncEngine,
) -> None:
    repo = user_repository(engine)

    with pytest.raises(ValidationError) as raised:
        await repo.create({"email": "not-an-email", "name": ""})
    assert {error["loc"][-1] for error in raised.value.errors} == {"email", "name"}

    with pytest.raises(ValidationError):
        await repo.create_many([alice(), {"email": "x@example.com", "name": "X", "age": -1}])
    with pytest.raises(ValidationError):
        await repo.create("not a mapping")

    assert await snapshot_table(engine, users) == []


async def test_create_many_returns_rows_in_input_order(engine: AsyncEngine) -> None:
    repo = user_repository(engine)
    rows = [
        {"email": f"user{n}@example.com", "name": f"User {n}", **({"age": n} if n % 2 else {})}
        for n in range(7)
    ]

    created = await repo.create_many(rows)

    assert [user.email for user in created] == [row["email"] for row in rows]
    assert [user.age for user in created] == [n if n % 2 else None for n in range(7)]
    assert len({user.id for user in created}) == 7
    assert await repo.create_many([]) == []
    assert await repo.count() == 7


async def test_reads_filter_order_and_slice(engine: AsyncEngine) -> None:
    repo = user_repository(engine)
    await repo.create_many(
        [{"email": f"u{n}@example.com", "name": f"N{n}", "age": n * 10} for n in range(5)]
    )

    adults = await repo.find({"age": {"$gte": 20}}, order_by="-age")
    assert [user.age for user in adults] == [40, 30, 20]
    assert [u.age for u in await repo.find(order_by="age", limit=2, offset=1)] == [10, 20]
    assert [u.age for u in await repo.find_all(order_by=[("age", "desc")], limit=1)] == [40]
    assert (await repo.find_one({"name": "N3"})).age == 30  # type: ignore[union-attr]
    assert await repo.find_one({"name": "nobody"}) is None
    assert await repo.count() == 5
    assert await repo.count({"age": {"$lt": 20}}) == 2
    assert await repo.exists({"name": "N4"}) is True
    assert await repo.exists({"name": "nobody"}) is False
    items, total = await repo.find_and_count({"age": {"$gt": 0}}, order_by="age", limit=2)
    assert ([u.age for u in items], total) == ([10, 20], 4)
    assert await repo.find(users.c.age.between(10, 20), order_by="age", columns=["name"]) == [
        {"name": "N1"},
        {"name": "N2"},
    ]


async def test_find_by_ids_and_an_empty_list_sends_no_query(engine: AsyncEngine) -> None:
    repo = user_repository(engine)
    created = await repo.create_many([alice(), {"email": "b@example.com", "name": "B"}])

    found = await repo.find_by_ids([user.id for user in created] + [10**6])
    assert sorted(user.id for user in found) == sorted(user.id for user in created)
    with capture_queries(engine) as log:
        assert await repo.find_by_ids([]) == []
        assert await repo.delete_many([]) == 0
    assert log.count == 0


async def test_bad_queries_raise_invalid_query_error(engine: AsyncEngine) -> None:
    repo = user_repository(engine)
    with pytest.raises(InvalidQueryError, match="email"):
        await repo.find({"nope": 1})
    with pytest.raises(InvalidQueryError):
        await repo.find(order_by="nope")
    with pytest.raises(InvalidQueryError):
        await repo.find(limit=-1)
    with pytest.raises(InvalidQueryError):
        await repo.find(columns=["password"])
    with pytest.raises(InvalidQueryError):
        await repo.find_by_id((1, 2))


async def test_update_is_partial_validated_and_returns_the_row(engine: AsyncEngine) -> None:
    repo = user_repository(engine)
    created = await repo.create(alice())

    updated = await repo.update(created.id, {"age": 31})
    assert updated == created.model_copy(update={"age": 31})

    with pytest.raises(ValidationError):
        await repo.update(created.id, {"age": -5})
    with pytest.raises(ValidationError):
        await repo.update(created.id, {"name": None})
    with pytest.raises(NotFoundError):
        await repo.update(created.id + 1000, {"age": 1})
    assert await repo.update(created.id, {}) == updated
    assert await snapshot_table(engine, users) == [updated.model_dump()]


async def test_update_many_and_deletes(engine: AsyncEngine) -> None:
    repo = user_repository(engine)
    created = await repo.create_many(
        [{"email": f"d{n}@example.com", "name": f"D{n}", "age": n} for n in range(5)]
    )

    assert await repo.update_many({"age": {"$lt": 2}}, {"status": "minor"}) == 2
    assert await repo.count({"status": "minor"}) == 2
    assert await repo.delete(created[0].id) is True
    assert await repo.delete(created[0].id) is False
    assert await repo.delete_many([user.id for user in created[1:3]] + [10**6]) == 2
    assert [row["id"] for row in await snapshot_table(engine, users)] == [u.id for u in created[3:]]
    with pytest.raises(InvalidQueryError):
        await repo.update_many(None, {"status": "x"})


# MariaDB has no WITH ... UPDATE: a CTE in an UPDATE's WHERE is a syntax error there.
@pytest.mark.kysera_databases("sqlite", "postgresql")
async def test_update_many_counts_rows_when_its_where_uses_a_cte(engine: AsyncEngine) -> None:
    # SQLAlchemy renders WITH ... UPDATE, for which Python's sqlite3 reports rowcount -1.
    repo = user_repository(engine)
    await repo.create_many(
        [{"email": f"c{n}@example.com", "name": f"C{n}", "age": n} for n in range(5)]
    )
    young = sa.select(users.c.id).where(users.c.age < 3).cte("young")

    assert await repo.update_many(users.c.id.in_(sa.select(young.c.id)), {"status": "y"}) == 3
    assert await repo.update_many(users.c.id.in_(sa.select(young.c.id)), {"status": "y"}) == 3
    assert await repo.update_many(users.c.age > 99, {"status": "n"}) == 0
    assert await repo.count({"status": "y"}) == 3


async def test_database_errors_surface_as_kysera_errors(engine: AsyncEngine) -> None:
    repo = user_repository(engine)
    await repo.create(alice())

    with pytest.raises(UniqueConstraintError) as raised:
        await repo.create(alice(name="Other"))
    assert not isinstance(raised.value, sa.exc.SQLAlchemyError)
    assert isinstance(raised.value.__cause__, Exception)

    plain = create_repository(engine, users)
    with pytest.raises(NotNullError):
        await plain.create({"email": "no-name@example.com"})
    assert await repo.count() == 1


async def test_plain_dicts_without_models(engine: AsyncEngine) -> None:
    repo = create_repository(engine, users)

    created = await repo.create({"email": "p@example.com", "name": "Plain"})
    assert created == {
        "id": created["id"],
        "email": "p@example.com",
        "name": "Plain",
        "age": None,
        "status": "active",
    }
    assert await repo.update(created["id"], {"age": 3}) == {**created, "age": 3}
    with pytest.raises(ValidationError, match="unknown column"):
        await repo.create({"email": "q@example.com", "name": "Q", "password": "x"})
    with pytest.raises(ValidationError):
        await repo.update(created["id"], {"nope": 1})


async def test_composite_primary_keys(engine: AsyncEngine) -> None:
    repo = create_repository(engine, memberships, entity=Membership)
    await repo.create_many(
        [{"org_id": 1, "user_id": 1, "role": "owner"}, {"org_id": 1, "user_id": 2, "role": "dev"}]
    )

    assert (await repo.get((1, 2))).role == "dev"
    assert (await repo.find_by_id({"org_id": 1, "user_id": 1})).role == "owner"  # type: ignore[union-attr]
    assert await repo.find_by_id((2, 1)) is None
    assert len(await repo.find_by_ids([(1, 1), (1, 2), (9, 9)])) == 2
    assert (await repo.update((1, 2), {"role": "lead"})).role == "lead"
    assert [
        m.role for m in await repo.bulk_update([((1, 1), {"role": "a"}), ((1, 2), {"role": "b"})])
    ] == ["a", "b"]
    with pytest.raises(InvalidQueryError, match="org_id"):
        await repo.find_by_id(1)
    with pytest.raises(InvalidQueryError):
        await repo.find_by_id({"org_id": 1})
    assert await repo.delete((1, 1)) is True
    assert await repo.delete_many([(1, 2)]) == 1
    assert await repo.count() == 0


async def test_validate_results_never_builds_entities_without_validation(
    engine: AsyncEngine,
) -> None:
    trusting = user_repository(engine, validate_results=False)
    validating = user_repository(engine, validate_results=True)

    created = await trusting.create(alice())
    assert isinstance(created, User)
    assert created == await validating.get(created.id)
    assert created.model_fields_set == set(User.model_fields)
    assert created.model_dump() == (await snapshot_table(engine, users))[0]


async def test_rows_that_do_not_fit_the_entity_raise_validation_error(engine: AsyncEngine) -> None:
    class Strict(User):
        age: int  # the database allows NULL

    repo = create_repository(engine, users, entity=Strict)
    await create_repository(engine, users).create({"email": "n@example.com", "name": "N"})

    with pytest.raises(ValidationError):
        await repo.find_all()
    with pytest.raises(KyseraError):
        await repo.find_one({})


async def test_offset_and_keyset_pages_of_entities(engine: AsyncEngine) -> None:
    repo = user_repository(engine)
    await repo.create_many(
        [{"email": f"p{n}@example.com", "name": f"P{n}", "age": n % 3} for n in range(7)]
    )

    first = await repo.paginate(page=1, limit=3)
    assert ([u.name for u in first.items], first.total, first.total_pages) == (
        ["P0", "P1", "P2"],
        7,
        3,
    )
    assert all(isinstance(user, User) for user in first.items)
    last = await repo.paginate(page=2, limit=3, where={"age": {"$gt": 0}}, order_by="-id")
    assert ([u.name for u in last.items], last.has_next, last.has_prev) == (["P1"], False, True)

    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await repo.paginate_cursor(limit=2, after=cursor, order_by=["age", "-id"])
        seen += [user.name for user in page.items]
        if not page.has_next:
            break
        cursor = page.next_cursor
    assert seen == ["P6", "P3", "P0", "P4", "P1", "P5", "P2"]
    back = await repo.paginate_cursor(limit=2, before=cursor, order_by=["age", "-id"])
    assert [user.name for user in back.items] == ["P4", "P1"]
    with pytest.raises(InvalidQueryError):
        await repo.paginate(page=0)


async def test_create_many_without_returning_counts_the_rows(engine: AsyncEngine) -> None:
    repo = user_repository(engine)

    inserted = await repo.create_many(
        [{"email": f"r{n}@example.com", "name": f"R{n}"} for n in range(5)], returning=False
    )

    assert inserted == 5
    assert await repo.count({"status": "active"}) == 5
    assert await repo.create_many([], returning=False) == 0
    with pytest.raises(ValidationError):
        await repo.create_many([{"email": "bad", "name": "B"}], returning=False)
    assert await repo.count() == 5


async def test_updates_that_change_nothing_still_find_their_rows(engine: AsyncEngine) -> None:
    # MySQL reports matched rather than changed rows (CLIENT_FOUND_ROWS): no false NotFound.
    repo = user_repository(engine)
    created = await repo.create(alice())

    assert await repo.update(created.id, {"age": created.age}) == created
    assert await repo.update_many({"id": created.id}, {"age": created.age}) == 1
    assert await repo.bulk_update([(created.id, {"age": created.age})]) == [created]


@pytest.mark.kysera_databases("mysql")
async def test_without_insert_returning_rows_are_read_back(
    engine: AsyncEngine, kysera_database_url: str
) -> None:
    # MySQL 8 has no INSERT ... RETURNING (MariaDB 10.5+ has): run that path on MariaDB.
    mysql8_like = create_test_engine(kysera_database_url)
    try:
        async with mysql8_like.connect():
            pass  # the dialect learns the server's features on first connect
        mysql8_like.dialect.insert_returning = False
        repo = user_repository(mysql8_like)

        created = await repo.create(alice())
        many = await repo.create_many(
            [{"email": f"m{n}@example.com", "name": f"M{n}"} for n in range(3)]
        )

        assert created == await repo.get(created.id)
        assert [user.email for user in many] == [f"m{n}@example.com" for n in range(3)]
        assert [user.id for user in many] == sorted(user.id for user in many)
        assert len(await snapshot_table(engine, users)) == 4
    finally:
        await mysql8_like.dispose()


async def test_a_key_the_database_matches_loosely_reads_back_its_row(engine: AsyncEngine) -> None:
    """MySQL/MariaDB compare text keys case-insensitively by default: an update by "HITS"
    changes the row "hits", and the re-select after it finds that row (it used to report
    NotFoundError for the row it had just updated). PostgreSQL and SQLite compare exactly."""
    repo = create_repository(engine, counters)
    await repo.create({"name": "hits", "value": 1})
    matches_loosely = engine.dialect.name == "mysql"

    if matches_loosely:
        assert await repo.update("HITS", {"value": 2}) == {"name": "hits", "value": 2, "note": None}
        assert await repo.bulk_update([("Hits", {"value": 3})]) == [
            {"name": "hits", "value": 3, "note": None}
        ]
    else:
        with pytest.raises(NotFoundError):
            await repo.update("HITS", {"value": 2})
        with pytest.raises(NotFoundError):
            await repo.bulk_update([("Hits", {"value": 3})])

    assert (await repo.get("hits"))["value"] == (3 if matches_loosely else 1)


async def test_keyset_unique_true_pages_by_the_ordering_given(engine: AsyncEngine) -> None:
    repo = user_repository(engine)
    await repo.create_many(
        [{"email": f"u{n}@example.com", "name": f"U{n}", "age": n % 2} for n in range(5)]
    )

    # Names are unique in this data, though no constraint says so: the caller asserts it.
    with capture_queries(engine) as captured:
        page = await repo.paginate_cursor(limit=2, order_by=["-name"], unique=True)
        rest = await repo.paginate_cursor(
            limit=5, order_by=["-name"], unique=True, after=page.next_cursor
        )

    assert [u.name for u in page.items + rest.items] == ["U4", "U3", "U2", "U1", "U0"]
    # The asserted ordering is used as given: no primary key appended.
    order_by = captured.queries[0].sql.split("ORDER BY")[1]
    assert "name DESC" in order_by
    assert ".id" not in order_by
