"""The source of a generated package's ``api.py``: FastAPI routes for every table and view.

Per table: ``GET /t`` (a page in key order: ``limit``, signed ``after``/``before`` cursors and
equality filters on an allow-list of columns; any other query parameter is refused),
``GET /t/{key}``, ``POST /t``, ``PATCH /t/{key}`` and ``DELETE /t/{key}`` (a soft delete when
the table has a ``deleted_at`` column). A composite key is one path segment per column. Views
get the list route only. Kysera's errors become JSON responses with a status by class.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Table

from kysera.schema._source import (
    STANDARD_TYPES,
    base_type_text,
    class_name,
    python_name,
    used_imports,
)
from kysera.schema.schema import Schema

__all__ = ["PAGE_PARAMETERS", "api_source", "filter_fields", "key_fields"]

PAGE_PARAMETERS = ("limit", "after", "before")
# Values a query string cannot carry as one equality filter.
_NOT_FILTERABLE = ("Any", "bytes", "dict[", "list[", "set[")

_PREAMBLE = '''
ItemT = TypeVar("ItemT")

MAX_PAGE_SIZE = 100


class Page(BaseModel, Generic[ItemT]):
    """One page of a list, in key order.

    Pass ``next_cursor`` as ``after`` for the next page, ``prev_cursor`` as ``before`` for the
    previous one. Cursors are signed: a client cannot make one up.
    """

    items: list[ItemT]
    next_cursor: str | None
    prev_cursor: str | None


class _ListParameters(BaseModel):
    """The query parameters of every list route; any parameter not declared is refused."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=20, ge=1, le=MAX_PAGE_SIZE)
    after: str | None = None
    before: str | None = None


_PAGING = frozenset(_ListParameters.model_fields)


def _where(query: _ListParameters) -> dict[str, Any]:
    """The equality filters the request gave."""
    return query.model_dump(exclude_unset=True, exclude=set(_PAGING))


_STATUS_BY_ERROR: tuple[tuple[type[KyseraError], int], ...] = (
    (NotFoundError, 404),
    (UniqueConstraintError, 409),
    (ForeignKeyError, 409),
    (NotNullError, 422),
    (CheckConstraintError, 422),
    (ValidationError, 422),
    (BadRequestError, 400),
)


async def kysera_error_response(request: Request, error: Exception) -> JSONResponse:
    """A Kysera error as ``{"code", "message"}`` with a status by its class.

    The database's own errors say only their code and a generic message: its message names
    tables and constraints, which are not part of the API.
    """
    assert isinstance(error, KyseraError)
    for error_class, status_code in _STATUS_BY_ERROR:
        if isinstance(error, error_class):
            break
    else:
        status_code = 503 if is_transient_error(error) else 500
    if status_code >= 500:
        message = "the database could not complete the request"
    elif isinstance(error, DatabaseError):
        message = "the database refused the values (a conflict, a missing or invalid value)"
    else:
        message = error.message
    return JSONResponse({"code": error.code, "message": message}, status_code=status_code)
'''


def key_fields(table: Table) -> list[tuple[str, Column[Any]]]:
    """The primary key's columns with their field names, in key order."""
    return [(column.name, column) for column in table.primary_key.columns]


def filter_fields(table: Table) -> list[tuple[str, Column[Any]]]:
    """The columns a list route filters on (equality), with their field names."""
    return [
        (column.name, column)
        for column in table.columns
        if column.name not in PAGE_PARAMETERS
        and not base_type_text(column).startswith(_NOT_FILTERABLE)
    ]


def _key_argument(fields: list[tuple[str, Column[Any]]]) -> str:
    if len(fields) == 1:
        return fields[0][0]
    return "{" + ", ".join(f"{field!r}: {field}" for field, _ in fields) + "}"


def _table_routes(name: str, table: Table, *, view: bool, soft_delete: bool) -> list[str]:
    cls = class_name(table)
    attribute = python_name(name)
    read = f"models.{cls}Read"
    repository = f"repos.{attribute}"
    decorator = f"tags=[{name!r}], response_model_exclude_unset=True"
    lines = [
        "",
        f'    @router.get("/{attribute}", {decorator})',
        f"    async def list_{attribute}(",
        f"        query: Annotated[{cls}Query, Query()],",
        f"    ) -> Page[{read}]:",
        f"        page = await {repository}.paginate_cursor(",
        "            query.limit, query.after, query.before, _where(query), secret=secret",
        "        )",
        f"        return Page[{read}](",
        "            items=page.items, next_cursor=page.next_cursor, prev_cursor=page.prev_cursor",
        "        )",
    ]
    if view:
        return lines
    keys = key_fields(table)
    path = f"/{attribute}/" + "/".join(f"{{{field}}}" for field, _ in keys)
    parameters = ", ".join(f"{field}: {base_type_text(column)}" for field, column in keys)
    key = _key_argument(keys)
    lines += [
        "",
        f'    @router.get("{path}", {decorator})',
        f"    async def get_{attribute}({parameters}) -> {read}:",
        f"        return await {repository}.get({key})",
        "",
        f'    @router.post("/{attribute}", status_code=201, {decorator})',
        f"    async def create_{attribute}(body: models.{cls}Create) -> {read}:",
        f"        return await {repository}.create(body)",
        "",
        f'    @router.patch("{path}", {decorator})',
        f"    async def update_{attribute}(",
        f"        {parameters}, body: models.{cls}Update",
        f"    ) -> {read}:",
        f"        return await {repository}.update({key}, body)",
        "",
        f'    @router.delete("{path}", status_code=204, tags=[{name!r}])',
        f"    async def delete_{attribute}({parameters}) -> Response:",
    ]
    if soft_delete:
        lines.append(f"        await {repository}.soft_delete({key})  # NotFoundError: 404")
    else:
        lines += [
            f"        if not await {repository}.delete({key}):",
            f"            raise NotFoundError(entity={name!r}, filters={key})",
        ]
    lines.append("        return Response(status_code=204)")
    return lines


def _query_model(name: str, table: Table) -> list[str]:
    fields = filter_fields(table)
    lines = [
        "",
        "",
        f"class {class_name(table)}Query(_ListParameters):",
        f'    """``GET /{python_name(name)}``: page parameters and the columns it filters on."""',
    ]
    if fields:
        lines.append("")
    lines += [f"    {field}: {base_type_text(column)} | None = None" for field, column in fields]
    return lines


def api_source(schema: Schema, header: str, package: str, soft_delete: list[str]) -> str:
    """The text of ``api.py`` for ``schema``."""
    body: list[str] = []
    for name, table in schema.tables.items():
        body += _query_model(name, table)
    body += [
        "",
        "",
        "def create_router(repos: Repositories, *, secret: str | bytes) -> APIRouter:",
        '    """The routes of every table and view.',
        "",
        "    Add `kysera_error_response` as the app's handler of `KyseraError` (`create_app`",
        "    does both).",
        "",
        "    Args:",
        "        repos: The repositories the routes use.",
        "        secret: Signs the list routes' cursors (HMAC-SHA256).",
        '    """',
        "    router = APIRouter()",
    ]
    for name, table in schema.tables.items():
        body += _table_routes(
            name, table, view=name in schema.views, soft_delete=name in soft_delete
        )
    body += [
        "",
        "    return router",
        "",
        "",
        "def create_app(orm: Orm, *, secret: str | bytes) -> FastAPI:",
        '    """A FastAPI app with every route and Kysera\'s errors as JSON responses."""',
        "    app = FastAPI()",
        "    app.include_router(create_router(Repositories(orm), secret=secret))",
        "    app.add_exception_handler(KyseraError, kysera_error_response)",
        "    return app",
    ]
    text = "\n".join(body)
    lines = [header.format(what="FastAPI routes of the database's tables and views.")]
    lines += ["from __future__ import annotations", ""]
    standard = [(m, n) for m, n in STANDARD_TYPES if m != "typing"]
    lines += used_imports(text, standard)
    lines += [
        "from typing import "
        + ", ".join(
            ["Annotated", "Any", "Generic", *(["Literal"] if "Literal[" in text else []), "TypeVar"]
        ),
        "",
        "from fastapi import APIRouter, FastAPI, Query, Request, Response",
        "from fastapi.responses import JSONResponse",
        "from pydantic import BaseModel, ConfigDict, Field",
        "",
        "from kysera.core import (",
        "    BadRequestError,",
        "    CheckConstraintError,",
        "    DatabaseError,",
        "    ForeignKeyError,",
        "    KyseraError,",
        "    NotFoundError,",
        "    NotNullError,",
        "    UniqueConstraintError,",
        "    ValidationError,",
        "    is_transient_error,",
        ")",
        "from kysera.repository import Orm",
        "",
    ]
    if package:
        lines += [
            f"from {package} import models",
            f"from {package}.repositories import Repositories",
        ]
    else:
        lines += ["from . import models", "from .repositories import Repositories"]
    lines += [_PREAMBLE.rstrip("\n"), text]
    return "\n".join(lines).rstrip() + "\n"
