"""The example service, tested through HTTP with httpx's ASGI transport.

Each test runs once per configured database (SQLite always; PostgreSQL and MySQL/MariaDB
when KYSERA_TEST_POSTGRES_URL / KYSERA_TEST_MYSQL_URL are set): that is what the
``kysera_engine`` fixture of kysera-core's pytest plugin does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa
from app import create_app
from schema import MIGRATIONS, MIGRATIONS_TABLE
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.migrations import MigrationRunner


@pytest.fixture
async def client(kysera_engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(kysera_engine)  # migrates at startup
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield client
    await MigrationRunner(kysera_engine, MIGRATIONS, table=MIGRATIONS_TABLE).reset()
    async with kysera_engine.begin() as conn:
        await conn.execute(sa.text(f"DROP TABLE {MIGRATIONS_TABLE}"))


async def create_user(client: httpx.AsyncClient, email: str, name: str = "Ada") -> int:
    response = await client.post("/users", json={"email": email, "name": name})
    assert response.status_code == 201, response.text
    user_id: int = response.json()["id"]
    return user_id


async def test_create_then_read_a_user(client: httpx.AsyncClient) -> None:
    response = await client.post("/users", json={"email": "ada@example.com", "name": "Ada"})
    assert response.status_code == 201
    created = response.json()
    assert created == {
        "id": created["id"],
        "email": "ada@example.com",
        "name": "Ada",
        "post_count": 0,
    }

    response = await client.get(f"/users/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created


async def test_invalid_input_is_422_and_writes_nothing(client: httpx.AsyncClient) -> None:
    response = await client.post("/users", json={"email": "not an email", "name": ""})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "VALIDATION_ERROR"
    assert sorted(error["loc"][0] for error in body["errors"]) == ["email", "name"]
    assert (await client.get("/users")).json()["total"] == 0


async def test_a_duplicate_email_is_409(client: httpx.AsyncClient) -> None:
    await create_user(client, "ada@example.com")
    response = await client.post("/users", json={"email": "ada@example.com", "name": "Eve"})
    assert response.status_code == 409
    # A stable public body: the code and the field, none of the database's internals.
    assert response.json() == {
        "code": "VALIDATION_UNIQUE_VIOLATION",
        "message": "already exists",
        "fields": ["email"],
    } or response.json() == {  # MySQL names the index, not the column
        "code": "VALIDATION_UNIQUE_VIOLATION",
        "message": "already exists",
        "fields": [],
    }
    assert (await client.get("/users")).json()["total"] == 1


async def test_unknown_ids_are_404(client: httpx.AsyncClient) -> None:
    for response in [
        await client.get("/users/999"),
        await client.patch("/users/999", json={"name": "Nobody"}),
        await client.delete("/users/999"),
        await client.post("/users/999/posts", json={"title": "Hello"}),
        await client.get("/users/999/posts"),
    ]:
        assert response.status_code == 404, response.request.url
        assert response.json() == {
            "code": "NOT_FOUND",
            "message": "not found",
            "filters": {"id": 999},
        }


async def test_partial_update(client: httpx.AsyncClient) -> None:
    user_id = await create_user(client, "ada@example.com")
    response = await client.patch(f"/users/{user_id}", json={"name": "Ada Lovelace"})
    assert response.status_code == 200
    assert response.json()["name"] == "Ada Lovelace"
    assert response.json()["email"] == "ada@example.com"

    response = await client.patch(f"/users/{user_id}", json={"email": "nope"})
    assert response.status_code == 422
    assert (await client.get(f"/users/{user_id}")).json()["email"] == "ada@example.com"


async def test_offset_pages(client: httpx.AsyncClient) -> None:
    for n in range(5):
        await create_user(client, f"user{n}@example.com", name=f"User {n}")
    response = await client.get("/users", params={"page": 2, "limit": 2})
    assert response.status_code == 200
    page = response.json()
    assert [user["name"] for user in page["items"]] == ["User 2", "User 3"]
    assert (page["total"], page["total_pages"], page["has_next"]) == (5, 3, True)

    filtered = (await client.get("/users", params={"name": "4"})).json()
    assert [user["name"] for user in filtered["items"]] == ["User 4"]


async def test_a_bad_page_request_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/users", params={"limit": 0})
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_QUERY"


async def test_keyset_feed_walks_every_user_once(client: httpx.AsyncClient) -> None:
    for n in range(7):
        await create_user(client, f"user{n}@example.com", name=f"User {n}")
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 3} | ({"after": cursor} if cursor else {})
        feed = (await client.get("/users/feed", params=params)).json()
        seen += [user["id"] for user in feed["items"]]
        cursor = feed["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True)
    assert len(seen) == len(set(seen)) == 7


async def test_a_garbage_cursor_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/users/feed", params={"after": "garbage"})
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_CURSOR"


async def test_one_transaction_per_request(client: httpx.AsyncClient) -> None:
    user_id = await create_user(client, "ada@example.com")
    first = await client.post(f"/users/{user_id}/posts", json={"title": "Notes", "body": "..."})
    assert first.status_code == 201

    # The counter is incremented before the insert fails: the failure rolls back both.
    again = await client.post(f"/users/{user_id}/posts", json={"title": "Notes"})
    assert again.status_code == 409
    assert again.json()["code"] == "VALIDATION_UNIQUE_VIOLATION"

    assert (await client.get(f"/users/{user_id}")).json()["post_count"] == 1
    posts = (await client.get(f"/users/{user_id}/posts")).json()
    assert [post["title"] for post in posts] == ["Notes"]


async def test_changes_are_audited_with_the_requests_actor(client: httpx.AsyncClient) -> None:
    user_id = await create_user(client, "ada@example.com")
    renamed = await client.patch(
        f"/users/{user_id}", json={"name": "Ada Lovelace"}, headers={"X-Actor": "admin-7"}
    )
    assert renamed.status_code == 200
    # Rejected input changes nothing, so it logs nothing.
    refused = await client.patch(
        f"/users/{user_id}", json={"email": "bad"}, headers={"X-Actor": "x"}
    )
    assert refused.status_code == 422

    history = (await client.get(f"/users/{user_id}/history")).json()
    assert [(change["operation"], change["changed_by"]) for change in history] == [
        ("UPDATE", "admin-7"),
        ("INSERT", None),
    ]
    assert history[0]["changed_fields"] == ["name"]


async def test_delete(client: httpx.AsyncClient) -> None:
    author = await create_user(client, "ada@example.com")
    other = await create_user(client, "eve@example.com")
    await client.post(f"/users/{author}/posts", json={"title": "Notes"})

    refused = await client.delete(f"/users/{author}")
    assert refused.status_code == 409  # the foreign key from svc_posts refuses
    assert refused.json()["code"] == "VALIDATION_FOREIGN_KEY_VIOLATION"

    assert (await client.delete(f"/users/{other}")).status_code == 204
    assert (await client.get(f"/users/{other}")).status_code == 404
    assert (await client.get(f"/users/{author}")).status_code == 200


async def test_error_bodies_carry_no_database_internals(client: httpx.AsyncClient) -> None:
    user_id = await create_user(client, "ada@example.com")
    await client.post(f"/users/{user_id}/posts", json={"title": "Notes"})
    refusals = [
        await client.post("/users", json={"email": "ada@example.com", "name": "Eve"}),
        await client.post(f"/users/{user_id}/posts", json={"title": "Notes"}),
        await client.delete(f"/users/{user_id}"),  # still has posts: the foreign key refuses
        await client.post("/users", json={"email": "not an email"}),
    ]
    for response in refusals:
        assert 400 <= response.status_code < 500, response.text
        body = response.json()
        assert set(body) <= {"code", "message", "fields", "errors", "filters"}, body
        for internal in ("sqlstate", "dialect", "constraint", "svc_", "failed", "Duplicate"):
            assert internal not in response.text, (internal, response.text)
