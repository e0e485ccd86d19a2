"""A small FastAPI service on Kysera: one transaction per request, repositories, error mapping.

Run it (from the repository root, with uvicorn installed):

    uvicorn --app-dir examples/service --factory app:app_from_environment

(KYSERA_DATABASE_URL names the database; by default a SQLite file in the temporary
directory.)

Every request that declares the ``Repos`` dependency runs inside one ``orm.transaction()``:
the repositories join it on their own (a context variable), it commits when the endpoint
returns and rolls back when it raises. The dependency is scoped to the endpoint function, so
the commit happens *before* the response is sent: a failed commit becomes an error response,
never a 200 for data that was not written.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from schema import (
    AUDIT_TABLE,
    MIGRATIONS,
    MIGRATIONS_TABLE,
    Post,
    PostCreate,
    User,
    UserCreate,
    UserUpdate,
    posts_table,
    users_table,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kysera.audit import AuditPlugin, audit_context
from kysera.core import (
    BadRequestError,
    CircuitOpenError,
    DatabaseError,
    ForeignKeyError,
    KyseraError,
    NotFoundError,
    UniqueConstraintError,
    ValidationError,
    is_transient_error,
)
from kysera.migrations import MigrationRunner
from kysera.repository import Orm, Repository, create_orm

# --- Errors: one place maps Kysera's error classes to HTTP ----------------------------------

# Most specific first; the first class the error is an instance of wins.
HTTP_STATUS_BY_ERROR: list[tuple[type[KyseraError], int]] = [
    (NotFoundError, status.HTTP_404_NOT_FOUND),
    (UniqueConstraintError, status.HTTP_409_CONFLICT),
    (ForeignKeyError, status.HTTP_409_CONFLICT),
    (ValidationError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (BadRequestError, status.HTTP_400_BAD_REQUEST),  # bad cursor, unknown column, bad limit
    (CircuitOpenError, status.HTTP_503_SERVICE_UNAVAILABLE),
]


def http_status_for(error: KyseraError) -> int:
    for error_class, status_code in HTTP_STATUS_BY_ERROR:
        if isinstance(error, error_class):
            return status_code
    if isinstance(error, DatabaseError) and is_transient_error(error):
        return status.HTTP_503_SERVICE_UNAVAILABLE  # deadlock, lost connection: retry later
    return status.HTTP_500_INTERNAL_SERVER_ERROR


logger = logging.getLogger("service")


def public_body(error: KyseraError, status_code: int) -> dict[str, Any]:
    """What the client sees: a stable ``code``, a ``message``, and field names at most.

    The database's internals (its message, dialect, SQLSTATE, constraint and table names) are
    not part of the API: they would change with the database, and tell an attacker about the
    schema. They go to the log instead.
    """
    if status_code >= 500:
        return {"code": error.code, "message": "the database is unavailable"}
    if isinstance(error, NotFoundError):
        filters = error.filters if isinstance(error.filters, dict) else {"id": error.filters}
        return {"code": error.code, "message": "not found", "filters": _json_value(filters)}
    if isinstance(error, UniqueConstraintError):
        fields = list(error.columns)
        return {"code": error.code, "message": "already exists", "fields": fields}
    if isinstance(error, ForeignKeyError):
        message = "refers to a missing row, or is still referred to"
        return {"code": error.code, "message": message, "fields": list(error.columns)}
    if isinstance(error, ValidationError):
        errors = [
            {"loc": list(item.get("loc", ())), "msg": item.get("msg"), "type": item.get("type")}
            for item in error.errors
        ]
        return {"code": error.code, "message": "invalid request body", "errors": errors}
    if isinstance(error, DatabaseError):  # any other database refusal: no internals either
        return {"code": error.code, "message": "the request conflicts with stored data"}
    # BadRequestError and the like: Kysera's own message about the client's query arguments.
    return {"code": error.code, "message": error.message}


def _json_value(value: Any) -> Any:
    return (
        value if isinstance(value, (str, int, float, bool, type(None), dict, list)) else str(value)
    )


async def kysera_error_response(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, KyseraError)
    status_code = http_status_for(error)
    # The full error, internals included, for the operators.
    logger.warning("%s %s -> %s %s", request.method, request.url.path, status_code, error.to_dict())
    headers = {"Retry-After": "1"} if status_code == 503 else None
    return JSONResponse(public_body(error, status_code), status_code=status_code, headers=headers)


# --- The database: an ORM and its repositories, built once at startup ------------------------


@dataclass(frozen=True)
class Repositories:
    orm: Orm  # orm.execute() runs a Core statement in the same transaction, through plugins
    users: Any  # a Repository[User] with the audit plugin's methods (get_audit_history, ...)
    posts: Repository[Post]


async def open_repositories(engine: AsyncEngine) -> Repositories:
    orm = await create_orm(engine, plugins=[AuditPlugin(table=AUDIT_TABLE)])
    users = orm.repository(users_table, entity=User, create=UserCreate, update=UserUpdate)
    posts = orm.repository(posts_table, entity=Post, create=PostCreate)
    return Repositories(orm=orm, users=users, posts=posts)


# --8<-- [start:transaction]
async def request_transaction(request: Request) -> AsyncIterator[Repositories]:
    """One transaction per request; every repository call of the endpoint runs in it."""
    repositories: Repositories = request.app.state.repositories
    # Who made the change, for the audit log (a real service takes it from authentication).
    with audit_context(user_id=request.headers.get("x-actor"), path=request.url.path):
        async with repositories.orm.transaction():
            yield repositories


# scope="function": commit (or roll back) when the endpoint returns, before the response.
Repos = Annotated[Repositories, Depends(request_transaction, scope="function")]
# --8<-- [end:transaction]


# --- Responses ---------------------------------------------------------------------------------


class UserPage(BaseModel):
    items: list[User]
    total: int
    page: int
    total_pages: int
    has_next: bool


class UserFeed(BaseModel):
    items: list[User]
    next_cursor: str | None


class Change(BaseModel):
    operation: str
    changed_by: str | None
    changed_fields: list[str]
    changed_at: datetime


# --- The application ---------------------------------------------------------------------------


def create_app(engine: AsyncEngine, *, migrate: bool = True) -> FastAPI:
    """Build the service on ``engine``; with ``migrate``, apply pending migrations at startup."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if migrate:
            await MigrationRunner(engine, MIGRATIONS, table=MIGRATIONS_TABLE).up()
        app.state.repositories = await open_repositories(engine)
        yield

    app = FastAPI(title="Kysera example service", lifespan=lifespan)
    app.add_exception_handler(KyseraError, kysera_error_response)

    @app.post("/users", status_code=status.HTTP_201_CREATED)
    async def create_user(data: dict[str, Any], repos: Repos) -> User:
        # The repository validates with UserCreate: a bad body is a ValidationError (422).
        return await repos.users.create(data)

    @app.get("/users")
    async def list_users(
        repos: Repos,
        page: Annotated[int, Query()] = 1,
        limit: Annotated[int, Query()] = 20,
        name: Annotated[str | None, Query()] = None,
    ) -> UserPage:
        where = {"name": {"$contains": name}} if name else None
        result = await repos.users.paginate(page=page, limit=limit, where=where, order_by="id")
        return UserPage(
            items=result.items,
            total=result.total,
            page=result.page,
            total_pages=result.total_pages,
            has_next=result.has_next,
        )

    @app.get("/users/feed")
    async def user_feed(
        repos: Repos, after: str | None = None, limit: Annotated[int, Query()] = 20
    ) -> UserFeed:
        result = await repos.users.paginate_cursor(limit=limit, after=after, order_by="-id")
        return UserFeed(items=result.items, next_cursor=result.next_cursor)

    @app.get("/users/{user_id}")
    async def get_user(user_id: int, repos: Repos) -> User:
        return await repos.users.get(user_id)

    @app.patch("/users/{user_id}")
    async def update_user(user_id: int, data: dict[str, Any], repos: Repos) -> User:
        return await repos.users.update(user_id, data)

    @app.delete("/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
    async def delete_user(user_id: int, repos: Repos) -> None:
        # A user who still has posts: the foreign key refuses, ForeignKeyError -> 409.
        if not await repos.users.delete(user_id):
            raise NotFoundError(entity="svc_users", filters={"id": user_id})

    # --8<-- [start:publish]
    @app.post("/users/{user_id}/posts", status_code=status.HTTP_201_CREATED)
    async def publish_post(user_id: int, data: dict[str, Any], repos: Repos) -> Post:
        # Two writes, one transaction: the counter and the post are written together or not
        # at all (a duplicate title rolls back the counter too).
        counted = await repos.orm.execute(
            users_table.update()
            .where(users_table.c.id == user_id)
            .values(post_count=users_table.c.post_count + 1)
        )
        if counted.rowcount == 0:
            raise NotFoundError(entity="svc_users", filters={"id": user_id})
        return await repos.posts.create({**data, "author_id": user_id})

    # --8<-- [end:publish]

    @app.get("/users/{user_id}/history")
    async def user_history(user_id: int, repos: Repos) -> list[Change]:
        await repos.users.get(user_id)
        history = await repos.users.get_audit_history(user_id)  # newest first
        return [
            Change(
                operation=entry.operation,
                changed_by=entry.changed_by,
                changed_fields=entry.changed_fields,
                changed_at=entry.changed_at,
            )
            for entry in history
        ]

    @app.get("/users/{user_id}/posts")
    async def list_posts(user_id: int, repos: Repos) -> list[Post]:
        await repos.users.get(user_id)  # 404 for an unknown user, not an empty list
        return await repos.posts.find({"author_id": user_id}, order_by="id")

    return app


def app_from_environment() -> FastAPI:
    """The ASGI application for a server: ``uvicorn --factory app:app_from_environment``."""
    # By default a SQLite file in the temporary directory, not in whichever directory the
    # server was started from (the repository root, say).
    default = Path(tempfile.gettempdir()) / "kysera-example-service.db"
    url = os.environ.get("KYSERA_DATABASE_URL", f"sqlite+aiosqlite:///{default}")
    engine = create_async_engine(url)
    if engine.dialect.name == "sqlite":
        # SQLite enforces foreign keys only when asked to, per connection.
        @event.listens_for(engine.sync_engine, "connect")
        def enforce_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return create_app(engine)
