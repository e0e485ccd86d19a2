"""The source of a generated package's ``test_generated.py``: pytest tests of every
repository and route, against the database the package was generated from.

Each test runs in a transaction that is rolled back (`kysera.core.testing.rollback_transaction`),
so the database is left as it was. For every table whose rows the test can make, it makes
one through ``POST`` (making the rows its required foreign keys point to first), reads it
back, finds it through the list route's key filters, patches it, deletes it and checks it is
gone; for every table and view it walks the list pages, checks that a forged cursor and an
undeclared query parameter are refused, and loads each repository's relations. Tables whose
required foreign keys form a cycle are only read, as are PostgreSQL's partitioned tables and
their partitions (a made-up partition key falls in no partition).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, SmallInteger, Table, UniqueConstraint

from kysera.schema._api_source import filter_fields, key_fields
from kysera.schema._source import base_type_text, python_name
from kysera.schema.models import _database_fills
from kysera.schema.schema import Schema

__all__ = ["test_source"]

_SAMPLE_VALUES = {
    "int": "1",
    "bool": "True",
    "float": "1.5",
    "Decimal": '"1"',
    "datetime": '"2020-01-02T03:04:05"',
    "date": '"2020-01-02"',
    "time": '"03:04:05"',
    "timedelta": "60",
    "UUID": "str(uuid.uuid4())",
    "bytes": '"Z2VuZXJhdGVk"',  # base64, as the models read bytes from JSON
    "dict[str, Any]": "{}",
}

_RUNTIME = '''

_texts_given: set[str] = set()


def _text(length: int) -> str:
    """A string no row is likely to hold yet (for unique columns), at most ``length`` long
    (exactly, up to 64: a CHAR column gives it back unpadded), not one given before in this
    run while a short length leaves new ones to find."""
    for _ in range(100):
        text = secrets.token_hex(32)[:length]
        if text not in _texts_given:
            break
    _texts_given.add(text)
    return text


_numbers_given: set[int] = set()


def _number(largest: int) -> int:
    """A key value no row is likely to hold yet: from the upper half of the column's range
    (applications count up from 1), and never the same one twice in a run."""
    while True:
        number = largest // 2 + 1 + secrets.randbelow(largest - largest // 2)
        if number not in _numbers_given:
            _numbers_given.add(number)
            return number


def _day() -> str:
    """A day no row is likely to hold yet (for unique columns): one in the years 6369 to 7737,
    never the same one twice in a run."""
    return (datetime.date(5000, 1, 1) + datetime.timedelta(days=_number(1_000_000))).isoformat()


def _moment() -> str:
    """A second no row is likely to hold yet (for unique columns): one in 2016 to 2032
    (MySQL's TIMESTAMP ends in 2038), never the same one twice in a run."""
    moment = datetime.datetime(2001, 1, 1) + datetime.timedelta(seconds=_number(10**9))
    return moment.isoformat()


class Shape(NamedTuple):
    """How the routes address a table: its path, its key's columns, whether the list route
    filters on them."""

    path: str
    key: tuple[str, ...]
    filters_on_key: bool


class Parent(NamedTuple):
    """A row the new row refers to: make it first, copy (its JSON name, ours) values."""

    table: str
    columns: tuple[tuple[str, str], ...]


def _run(test: Coroutine[Any, Any, None]) -> None:
    asyncio.run(test)


@asynccontextmanager
async def _app() -> AsyncIterator[tuple[httpx.AsyncClient, repositories.Repositories]]:
    """A client of the generated app on a connection whose work is rolled back."""
    url = os.environ.get("KYSERA_DATABASE_URL")
    if not url:
        pytest.fail("set KYSERA_DATABASE_URL to the database this package was generated from")
    engine = create_async_engine(async_url(url))
    try:
        async with rollback_transaction(engine) as connection:
            orm = await repositories.create_orm(connection)
            transport = httpx.ASGITransport(app=api.create_app(orm, secret="test-secret"))
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield client, repositories.Repositories(orm)
    finally:
        await engine.dispose()


async def _make(client: httpx.AsyncClient, table: str) -> dict[str, Any]:
    """Create a row of ``table`` through its route (and the rows it needs first)."""
    body = SAMPLES[table]()
    for parent in PARENTS[table]:
        made = await _make(client, parent.table)
        for theirs, ours in parent.columns:
            body[ours] = made[theirs]
    response = await client.post(TABLES[table].path, json=body)
    assert response.status_code == 201, response.text
    row: dict[str, Any] = response.json()
    return row


def _row_path(table: str, row: dict[str, Any]) -> str:
    shape = TABLES[table]
    return "/".join([shape.path, *(quote(str(row[name]), safe="") for name in shape.key)])


def _key_of(table: str, row: dict[str, Any]) -> str:
    return json.dumps([row[name] for name in TABLES[table].key])


def _forged(cursor: str) -> str:
    """The cursor with one character of its middle changed."""
    at = len(cursor) // 2
    while not cursor[at].isalnum():
        at += 1
    return cursor[:at] + ("B" if cursor[at] == "A" else "A") + cursor[at + 1 :]


@pytest.mark.parametrize("table", sorted(SAMPLES))
def test_a_row_is_created_read_listed_patched_and_deleted(table: str) -> None:
    async def check() -> None:
        async with _app() as (client, _):
            made = await _make(client, table)
            path = _row_path(table, made)
            read = await client.get(path)
            assert read.status_code == 200, read.text
            assert read.json() == made
            shape = TABLES[table]
            if shape.filters_on_key:
                filters = {name: made[name] for name in shape.key}
                listed = await client.get(shape.path, params=filters)
                assert listed.status_code == 200, listed.text
                assert listed.json()["items"] == [made]
            patched = await client.patch(path, json=PATCHES[table])
            assert patched.status_code == 200, patched.text
            for name, value in PATCHES[table].items():
                assert patched.json()[name] == value
            deleted = await client.delete(path)
            assert deleted.status_code == 204, deleted.text
            assert (await client.get(path)).status_code == 404
            assert (await client.delete(path)).status_code == 404

    _run(check())


@pytest.mark.parametrize("table", sorted(TABLES))
def test_pages_follow_signed_cursors_and_refuse_the_rest(table: str) -> None:
    async def check() -> None:
        async with _app() as (client, _):
            path = TABLES[table].path
            if table in SAMPLES:  # rows to page through
                for _ in range(3):
                    await _make(client, table)
            first = await client.get(path, params={"limit": 2})
            assert first.status_code == 200, first.text
            page, seen = first.json(), []
            for _ in range(5):
                seen += [_key_of(table, row) for row in page["items"]]
                if page["next_cursor"] is None:
                    break
                response = await client.get(path, params={"limit": 2, "after": page["next_cursor"]})
                assert response.status_code == 200, response.text
                page = response.json()
            assert len(seen) == len(set(seen)), "a row came twice"
            cursor = first.json()["next_cursor"]
            if cursor is not None:
                forged = await client.get(path, params={"after": _forged(cursor)})
                assert forged.status_code == 400, forged.text
            assert (await client.get(path, params={"not_a_filter": "1"})).status_code == 422
            assert (await client.get(path, params={"limit": 0})).status_code == 422

    _run(check())


@pytest.mark.parametrize("table", sorted(TABLES))
def test_the_repository_counts_and_loads_its_relations(table: str) -> None:
    async def check() -> None:
        async with _app() as (_, repos):
            repository = getattr(repos, REPOSITORIES[table])
            total = await repository.count()
            rows = await repository.find(limit=5, include=RELATIONS[table] or None)
            assert len(rows) == min(total, 5)

    _run(check())
'''


def _sample(column: Column[Any]) -> str:
    text = base_type_text(column)
    if text.startswith("Literal["):
        return text[len("Literal[") :].split(",")[0].rstrip("]")
    if text.startswith("list["):
        return "[]"
    if text.startswith("set[Literal["):  # a MySQL SET: one of its members, as a JSON list
        return f"[{text[len('set[Literal[') :].split(',')[0].rstrip(']')}]"
    if text.startswith("set["):
        return "[]"
    if text == "str" or text == "Any":
        length = getattr(column.type, "length", None)
        return f"_text({length if isinstance(length, int) else 16})"
    if _unique(column):
        unique = _unique_sample(column, text)
        if unique is not None:
            return unique
    return _SAMPLE_VALUES.get(text, '"generated"')


def _unique_sample(column: Column[Any], text: str) -> str | None:
    """A sample expression for a column two rows may not share, or ``None`` where the
    constant sample will do (text is random already; UUIDs are new)."""
    if text == "int":
        return f"_number({_largest_integer(column):_})"
    if text == "Decimal":
        precision = getattr(column.type, "precision", None)
        scale = getattr(column.type, "scale", None) or 0
        largest = 10 ** (precision - scale) - 1 if precision else 2**31 - 1
        return f"str(_number({largest:_}))" if largest >= 9 else None
    if text == "date":
        return "_day()"
    if text == "datetime":
        return "_moment()"
    return None


def _unique(column: Column[Any]) -> bool:
    """Whether two rows may not share the column's value (a key, a unique constraint or index)."""
    if column.primary_key or column.unique:
        return True
    table = column.table
    groups = [c.columns for c in table.constraints if isinstance(c, UniqueConstraint)]
    groups += [index.columns for index in table.indexes if index.unique]
    return any(group.contains_column(column) for group in groups)


def _largest_integer(column: Column[Any]) -> int:
    """The largest value every database's column of this integer type holds (signed)."""
    name = type(column.type).__name__.upper()
    if "TINY" in name:
        return 2**7 - 1
    if isinstance(column.type, SmallInteger) or "SMALL" in name:
        return 2**15 - 1
    if "MEDIUM" in name:
        return 2**23 - 1
    if isinstance(column.type, BigInteger) or "BIG" in name:
        return 2**63 - 1
    return 2**31 - 1


def _required(column: Column[Any]) -> bool:
    return column.computed is None and not column.nullable and not _database_fills(column)


def _parents(
    table: Table, names: dict[Table, str]
) -> list[tuple[str, list[tuple[str, str]]]] | None:
    """The rows a new row of ``table`` needs first, or ``None`` when it cannot have them."""
    needed = []
    for constraint in sorted(
        table.foreign_key_constraints, key=lambda c: [x.name for x in c.columns]
    ):
        if not any(_required(column) for column in constraint.columns):
            continue
        target = constraint.referred_table
        if target is table or target not in names:
            return None
        pairs = [(element.column.name, element.parent.name) for element in constraint.elements]
        needed.append((names[target], pairs))
    return needed


def _writable(schema: Schema) -> dict[str, list[tuple[str, list[tuple[str, str]]]]]:
    """The tables the test can make rows of, with the parents each needs."""
    names = {
        table: name
        for name, table in schema.tables.items()
        if name not in schema.views and not table.info.get("partitioned")
    }
    parents = {name: _parents(table, names) for table, name in names.items()}
    writable: dict[str, list[tuple[str, list[tuple[str, str]]]]] = {}

    def can_make(name: str, visiting: frozenset[str]) -> bool:
        needed = parents[name]
        if needed is None or name in visiting:
            return False
        return all(can_make(parent, visiting | {name}) for parent, _ in needed)

    for name in names.values():
        needed = parents[name]
        if needed is not None and can_make(name, frozenset()):
            writable[name] = needed
    return writable


def _patch(table: Table) -> str:
    """A change the PATCH check makes: a new value for the first plain text column."""
    keys = {column.name for column in table.primary_key.columns}
    for column in table.columns:
        if (
            column.name not in keys
            and not column.foreign_keys
            and column.computed is None
            and base_type_text(column) == "str"
        ):
            return f"{{{column.name!r}: {_sample(column)}}}"
    return "{}"


def test_source(schema: Schema, header: str, package: str) -> str:
    """The text of ``test_generated.py`` for ``schema`` (its checks hold whether a route
    deletes softly or for good)."""
    writable = _writable(schema)
    lines = ["", "TABLES: dict[str, Shape] = {"]
    for name, table in schema.tables.items():
        keys = tuple(field for field, _ in key_fields(table))
        filterable = {field for field, _ in filter_fields(table)}
        on_key = all(field in filterable for field in keys)
        lines.append(f"    {name!r}: Shape({'/' + python_name(name)!r}, {keys!r}, {on_key}),")
    lines += ["}", "REPOSITORIES: dict[str, str] = {"]
    lines += [f"    {name!r}: {python_name(name)!r}," for name in schema.tables]
    lines += ["}", "RELATIONS: dict[str, list[str]] = {"]
    for name, table in schema.tables.items():
        relation_names = sorted(python_name(r.name) for r in schema.relations if r.source is table)
        lines.append(f"    {name!r}: {relation_names!r},")
    lines += [
        "}",
        "# A new row's values besides its parents' keys (JSON names), fresh for every row.",
        "SAMPLES: dict[str, Callable[[], dict[str, Any]]] = {",
    ]
    for name in writable:
        table = schema.tables[name]
        in_parents = {ours for _, pairs in writable[name] for _, ours in pairs}
        values = [
            f"{column.name!r}: {_sample(column)}"
            for column in table.columns
            if _required(column) and column.name not in in_parents
        ]
        lines.append(f"    {name!r}: lambda: {{{', '.join(values)}}},")
    lines += ["}", "PARENTS: dict[str, tuple[Parent, ...]] = {"]
    for name, needed in writable.items():
        parents = "".join(f"Parent({target!r}, {tuple(pairs)!r}), " for target, pairs in needed)
        lines.append(f"    {name!r}: ({parents.rstrip()}),")
    lines += ["}", "PATCHES: dict[str, dict[str, Any]] = {"]
    lines += [f"    {name!r}: {_patch(schema.tables[name])}," for name in writable]
    lines.append("}")
    tables_text = "\n".join(lines)
    what = (
        "Tests of the generated package against the database it was generated from.\n\n"
        "Run with the database's URL: KYSERA_DATABASE_URL=... pytest test_generated.py\n"
        "Each test runs in a transaction that is rolled back; the database is left as it was."
    )
    source = [header.format(what=what)]
    source += [
        "from __future__ import annotations",
        "",
        "import asyncio",
        "import json",
        "import os",
        "import secrets",
        "import datetime",
        *(["import uuid"] if "uuid.uuid4()" in tables_text else []),
        "from collections.abc import AsyncIterator, Callable, Coroutine",
        "from contextlib import asynccontextmanager",
        "from typing import Any, NamedTuple",
        "from urllib.parse import quote",
        "",
        "import httpx",
        "import pytest",
        "from sqlalchemy.ext.asyncio import create_async_engine",
        "",
        "from kysera.core import async_url",
        "from kysera.core.testing import rollback_transaction",
        "",
        f"from {package} import api, repositories"
        if package
        else "from . import api, repositories",
    ]
    # The constants use the helpers, the tests use the constants: helpers, constants, tests.
    helpers, tests = _RUNTIME.split("\n\n\n@pytest.mark.parametrize", 1)
    source += [helpers, tables_text, "", "", "@pytest.mark.parametrize" + tests]
    return "\n".join(source).rstrip() + "\n"
