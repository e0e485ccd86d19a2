"""Kysera quickstart: a guided tour on SQLite, no server needed.

From the repository root:

    python3 -m venv .venv && .venv/bin/pip install -r examples/requirements.txt
    .venv/bin/python examples/quickstart.py

Each step prints what it shows and asserts it, so this file doubles as a smoke test
(``nox -s examples`` runs it in CI).
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from kysera.audit import AuditPlugin, audit_context, audit_migration_down, audit_migration_up
from kysera.core import NotFoundError, UniqueConstraintError, ValidationError
from kysera.migrations import MigrationRunner, migration
from kysera.repository import Orm, Repository, create_orm
from kysera.soft_delete import RecordNotDeletedError, SoftDeletePlugin
from kysera.timestamps import TimestampsPlugin, UTCDateTime

# --- The schema: plain SQLAlchemy Core tables -------------------------------------------------

metadata = sa.MetaData()
users_table = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(200), nullable=False, unique=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("karma", sa.Integer, nullable=False, server_default="0"),
    # The plugins find their columns by name: timestamps ...
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # ... and soft delete (NULL: not deleted).
    sa.Column("deleted_at", UTCDateTime, nullable=True),
)
posts_table = sa.Table(
    "posts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("author_id", sa.ForeignKey("users.id"), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
)


# --- Entities and input models: pydantic ------------------------------------------------------


class User(BaseModel):
    id: int
    email: str
    name: str
    karma: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class UserCreate(BaseModel):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    name: str = Field(min_length=1, max_length=100)
    karma: int = Field(default=0, ge=0)


class Post(BaseModel):
    id: int
    author_id: int
    title: str


# --- Migrations: defined in code here; files in migrations/ work the same way ------------------


async def create_users(conn: AsyncConnection) -> None:
    await conn.run_sync(users_table.create)


async def drop_users(conn: AsyncConnection) -> None:
    await conn.run_sync(users_table.drop)


async def create_posts(conn: AsyncConnection) -> None:
    await conn.run_sync(posts_table.create)


async def drop_posts(conn: AsyncConnection) -> None:
    await conn.run_sync(posts_table.drop)


MIGRATIONS = [
    migration("001_create_users", up=create_users, down=drop_users, description="users"),
    migration("002_create_posts", up=create_posts, down=drop_posts, description="posts"),
    # kysera-audit ships the migration for its log table.
    migration("003_create_audit_logs", up=audit_migration_up, down=audit_migration_down),
]


# --- The tour ----------------------------------------------------------------------------------

step_number = 0


def step(title: str) -> None:
    global step_number
    step_number += 1
    print(f"\n{step_number}. {title}")


def say(text: str) -> None:
    print(f"   {text}")


async def migrate(engine: AsyncEngine) -> None:
    step("Migrations: each runs in its own transaction, together with its bookkeeping row")
    runner = MigrationRunner(engine, MIGRATIONS)
    result = await runner.up()
    say(f"applied {list(result.applied)} in {result.duration_ms:.0f} ms")
    again = await runner.up()
    say(f"running up() again applies nothing: skipped {list(again.skipped)}")
    assert len(result.applied) == len(MIGRATIONS)
    assert not again.applied
    status = await runner.status()
    assert status.up_to_date


async def create_and_read(users: Repository[User]) -> User:
    step("Repositories: validated writes, entities back, where-dicts for reads")
    ada = await users.create({"email": "ada@example.com", "name": "Ada", "karma": 36})
    await users.create_many(
        [
            {"email": f"user{n}@example.com", "name": f"User {n}", "karma": n * 3}
            for n in range(1, 25)
        ]
    )
    say(f"created User(id={ada.id}, email={ada.email!r}, name={ada.name!r}, karma={ada.karma})")
    say(f"... and 24 more in one INSERT; the table holds {await users.count()} users")
    top = await users.find({"karma": {"$gte": 60}}, order_by="-karma", limit=3)
    say(f"karma >= 60, best first: {[user.name for user in top]}")
    assert [user.karma for user in top] == [72, 69, 66]
    ada = await users.update(ada.id, {"karma": 37})
    say(f"update returns the new entity: karma={ada.karma}")
    return ada


async def errors(users: Repository[User]) -> None:
    step("Errors: typed, with a stable code, and nothing half-written")
    before = await users.count()
    try:
        await users.create({"email": "not an email", "name": ""})
    except ValidationError as error:
        fields = sorted(str(problem["loc"][0]) for problem in error.errors)
        say(f"{type(error).__name__} [{error.code}] on {fields}: checked before any SQL")
    try:
        await users.create({"email": "ada@example.com", "name": "Ada again"})
    except UniqueConstraintError as error:
        say(f"{type(error).__name__} [{error.code}] on {error.table}{list(error.columns)}")
    try:
        await users.get(12345)
    except NotFoundError as error:
        say(f"{type(error).__name__} [{error.code}]: {error}")
    assert await users.count() == before


async def transaction_rolls_back(orm: Orm, users: Any, posts: Repository[Post]) -> None:
    step("Transactions: every repository joins orm.transaction(); an exception rolls it all back")
    before = (await users.count(), await posts.count(), len(await users.get_table_audit_logs()))
    try:
        async with orm.transaction():
            grace = await users.create({"email": "grace@example.com", "name": "Grace"})
            await posts.create({"author_id": grace.id, "title": "On compilers"})
            say("inside: created Grace and her first post ...")
            raise RuntimeError("payment declined")
    except RuntimeError as error:
        say(f"... then {error!r}: the block raised")
    after = (await users.count(), await posts.count(), len(await users.get_table_audit_logs()))
    say(f"(users, posts, audit entries) before {before}, after {after}: nothing was written")
    assert after == before

    async with orm.transaction():
        grace = await users.create({"email": "grace@example.com", "name": "Grace"})
        await posts.create({"author_id": grace.id, "title": "On compilers"})
    say(f"the same block without the error commits both: {await posts.count()} post")


async def paginate(users: Repository[User]) -> None:
    step("Pagination: offset pages with a total, and keyset pages with opaque cursors")
    page = await users.paginate(page=2, limit=10, order_by="name")
    say(
        f"offset: page {page.page} of {page.total_pages} ({page.total} users), "
        f"has_next={page.has_next}, first on the page: {page.items[0].name}"
    )
    assert page.total == 26
    assert len(page.items) == 10

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        keyset = await users.paginate_cursor(limit=10, after=cursor, order_by=["-karma"])
        seen += [user.email for user in keyset.items]
        pages += 1
        if not keyset.has_next:
            break
        cursor = keyset.next_cursor
    say(f"keyset: {pages} pages by karma, {len(seen)} users, none skipped or repeated")
    say(f"a cursor looks like {cursor!r}")
    assert len(seen) == len(set(seen)) == 26


# --- The plugins: each adds methods to the repositories and rewrites their statements ---------


async def timestamps(users: Any, ada: User) -> User:
    step("Timestamps (kysera-timestamps): created_at and updated_at, set for you, in UTC")
    say(f"Ada: created_at {ada.created_at.isoformat()}")
    renamed = await users.update(ada.id, {"name": "Ada Lovelace"})
    say(f"after an update: updated_at {renamed.updated_at.isoformat()}")
    assert renamed.created_at == ada.created_at <= renamed.updated_at
    assert renamed.updated_at.utcoffset() is not None  # aware, on every database
    latest = await users.find_recently_updated(limit=1)
    say(f"find_recently_updated(limit=1): {[user.name for user in latest]}")
    assert [user.id for user in latest] == [ada.id]
    return renamed


async def soft_delete(users: Any, ada: User) -> None:
    step("Soft delete (kysera-soft-delete): deleted rows stay, hidden from every read")
    before = await users.count()
    await users.soft_delete(ada.id)
    hidden = await users.find_by_id(ada.id)
    say(f"count() {before} -> {await users.count()}; find_by_id(ada) -> {hidden}")
    say(f"count(include_deleted=True) still sees {await users.count(include_deleted=True)}")
    say(f"find_deleted(): {[user.name for user in await users.find_deleted()]}")
    await users.restore(ada.id)
    say(f"restore(ada): count() is {await users.count()} again")
    try:
        await users.restore(ada.id)
    except RecordNotDeletedError as error:
        say(f"restoring her twice: {type(error).__name__} [{error.code}]")
    assert await users.count() == before


async def audit_history(users: Any, ada: User) -> None:
    step("Audit log (kysera-audit): every write logged in the same transaction as the change")
    with audit_context(user_id="alice", ticket="SUP-42"):
        await users.update(ada.id, {"karma": 100})
    history = await users.get_audit_history(ada.id)
    say(f"Ada's history, oldest first ({len(history)} entries):")
    for entry in reversed(history):
        fields = ", ".join(entry.changed_fields or ())
        say(f"  {entry.operation:<11} by {entry.changed_by or '-':<6} {fields}")
    newest = history[0]
    assert newest.changed_by == "alice"
    assert newest.metadata == {"ticket": "SUP-42"}
    assert newest.old_values["karma"] == 37
    assert newest.new_values["karma"] == 100
    operations = [entry.operation for entry in reversed(history)]
    assert operations[0] == "INSERT"
    assert {"SOFT_DELETE", "RESTORE"} <= set(operations)


async def main() -> None:
    print("Kysera quickstart: SQLite, no server needed.")
    with tempfile.TemporaryDirectory() as directory:
        engine = create_async_engine(f"sqlite+aiosqlite:///{Path(directory) / 'quickstart.db'}")
        try:
            await migrate(engine)
            plugins = [SoftDeletePlugin(), TimestampsPlugin(), AuditPlugin()]
            orm = await create_orm(engine, plugins=plugins)
            users = orm.repository(users_table, entity=User, create=UserCreate)
            posts = orm.repository(posts_table, entity=Post)
            ada = await create_and_read(users)
            await errors(users)
            await transaction_rolls_back(orm, users, posts)
            await paginate(users)
            ada = await timestamps(users, ada)
            await soft_delete(users, ada)
            await audit_history(users, ada)
        finally:
            await engine.dispose()
    print("\nDone. Next: the guides in docs/, and examples/service/ for a FastAPI service.")


if __name__ == "__main__":
    asyncio.run(main())
