"""`generate_package`: a discovered schema as Python source, for ``kysera gen``.

The package has these files, each saying it is generated and how to regenerate it:

- ``tables.py``: SQLAlchemy Core tables (the reflected types, server defaults, keys);
- ``models.py``: ``<Table>Read``, ``<Table>Create`` and ``<Table>Update`` pydantic models,
  with relation fields on the ``Read`` models;
- ``repositories.py``: ``create_orm(executor, plugins)`` declaring the relations (and soft
  delete for tables with a ``deleted_at`` column), and a typed ``Repositories`` factory
  (``repos.film`` is a ``Repository[FilmRead]``);
- ``__init__.py``;
- with ``api="fastapi"``: ``api.py`` (FastAPI routes, see `kysera.schema._api_source`) and
  ``test_generated.py`` (pytest tests of every repository and route against the database,
  see `kysera.schema._test_source`).

Generation is deterministic: tables, columns and relations come out in one order, so the
same database gives byte-identical files and a new column changes only its own lines.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, Literal

import sqlalchemy
from sqlalchemy import ARRAY, Column, Table

from kysera.core import BadRequestError
from kysera.repository import Relation
from kysera.schema._api_source import api_source
from kysera.schema._source import (
    HEADER,
    STANDARD_TYPES,
    class_name,
    colliding_names,
    python_name,
    render_python_type,
    table_variable,
    unusable_columns,
    used_imports,
)
from kysera.schema._test_source import test_source
from kysera.schema.models import _database_fills, column_python_type
from kysera.schema.schema import Schema

__all__ = ["generate_package"]

_SOFT_DELETE_COLUMN = "deleted_at"


def _soft_delete_tables(schema: Schema) -> list[str]:
    """The tables (not views) with a nullable ``deleted_at`` date-time column."""
    return [
        name
        for name, table in schema.tables.items()
        if name not in schema.views
        and _SOFT_DELETE_COLUMN in table.c
        and table.c[_SOFT_DELETE_COLUMN].nullable
        and column_python_type(table.c[_SOFT_DELETE_COLUMN]) is dt.datetime
    ]


def _type_module(sql_type: Any) -> str:
    module = type(sql_type).__module__
    for dialect in ("postgresql", "mysql", "sqlite", "mssql", "oracle"):
        if module.startswith(f"sqlalchemy.dialects.{dialect}"):
            return dialect
    return "sa"


def _render_type(sql_type: Any) -> str:
    prefix = _type_module(sql_type)
    if isinstance(sql_type, ARRAY):
        return f"{prefix}.ARRAY({_render_type(sql_type.item_type)})"
    # A type's repr names the types among its arguments bare (JSONB(astext_type=Text())).
    arguments = _BARE_TYPE.sub(_qualified, repr(sql_type))
    return f"{prefix}.{arguments}"


_BARE_TYPE = re.compile(r"(?<![.\w'\"])([A-Z]\w*)\(")


def _qualified(match: re.Match[str]) -> str:
    name = match[1]
    return f"sa.{name}(" if match.start() > 0 and hasattr(sqlalchemy, name) else match[0]


def _column_source(column: Column[Any]) -> str:
    parts = [repr(column.name), _render_type(column.type)]
    for foreign_key in column.foreign_keys:
        parts.append(f"sa.ForeignKey({foreign_key.target_fullname!r})")
    if column.computed is not None:
        # So that SQLAlchemy never writes the column and reads it back after a write.
        computed = column.computed
        parts.append(f"sa.Computed({str(computed.sqltext)!r}, persisted={computed.persisted!r})")
    if column.primary_key:
        parts.append("primary_key=True")
        if column.autoincrement is True:
            parts.append("autoincrement=True")
        elif column.autoincrement is False or column.autoincrement == "auto":
            parts.append(f"autoincrement={column.autoincrement!r}")
    if not column.nullable and not column.primary_key:
        parts.append("nullable=False")
    default = column.server_default
    if default is not None and not (column.primary_key and column.autoincrement is True):
        text = getattr(default, "arg", None)
        text = getattr(text, "text", text)
        if isinstance(text, str):
            parts.append(f"server_default=sa.text({text!r})")
    return f"    sa.Column({', '.join(parts)}),"


def _key_in_column_order(table: Table) -> list[str]:
    """The key as ``primary_key=True`` on its columns alone would order it.

    A key declared in another order (``PRIMARY KEY (payment_date, payment_id)``) needs an
    explicit constraint: the key's order is the order of a tuple key and of keyset pages.
    """
    return [column.name for column in table.columns if column.primary_key]


def _tables_source(schema: Schema, header: str) -> str:
    modules = {_type_module(col.type) for table in schema.tables.values() for col in table.columns}
    modules |= {
        _type_module(col.type.item_type)
        for table in schema.tables.values()
        for col in table.columns
        if isinstance(col.type, ARRAY)
    }
    dialects = sorted(modules - {"sa"})
    lines = [header.format(what="SQLAlchemy Core tables of the database.")]
    lines.append("import sqlalchemy as sa")
    if dialects:
        lines.append(f"from sqlalchemy.dialects import {', '.join(dialects)}")
    lines += ["", "metadata = sa.MetaData()", ""]
    for name, table in schema.tables.items():
        lines.append(f"{table_variable(name)} = sa.Table(")
        lines.append(f"    {name!r},")
        lines.append("    metadata,")
        lines += [_column_source(column) for column in table.columns]
        key = [column.name for column in table.primary_key.columns]
        if name in schema.views or key != _key_in_column_order(table):
            lines.append(f"    sa.PrimaryKeyConstraint({', '.join(map(repr, key))}),")
        if table.schema is not None:
            lines.append(f"    schema={table.schema!r},")
        if name in schema.views:
            lines.append('    info={"view": True},')
        lines.append(")")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _models_source(schema: Schema, header: str) -> str:
    lines: list[str] = []
    body = [
        "",
        "# Bytes are base64 in JSON, both ways: raw bytes are not always valid UTF-8.",
        "_CONFIG = ConfigDict(",
        "    protected_namespaces=(),",
        "    from_attributes=True,",
        "    defer_build=True,",
        '    ser_json_bytes="base64",',
        '    val_json_bytes="base64",',
        ")",
        "",
    ]
    relations = _relations_by_source(schema)
    for name, table in schema.tables.items():
        cls = class_name(table)
        lines += ["", f"class {cls}Read(BaseModel):", f'    """A row of {name}."""', ""]
        lines.append("    model_config = _CONFIG")
        lines.append("")
        for column in table.columns:
            default = " = None" if column.nullable else ""
            lines.append(f"    {column.name}: {render_python_type(column)}{default}")
        for relation in relations.get(name, ()):
            target = f"{class_name(relation.target)}Read"
            field = python_name(relation.name)
            if relation.many:
                lines.append(f"    {field}: list[{target}] = Field(default_factory=list)")
            else:
                lines.append(f"    {field}: {target} | None = None")
        for role in ("Create", "Update"):
            lines += ["", "", f"class {cls}{role}(BaseModel):"]
            what = "an insert" if role == "Create" else "a partial update (fields may be left out)"
            lines += [f'    """Input for {what} of {name}."""', ""]
            lines.append("    model_config = _CONFIG")
            lines.append("")
            for column in table.columns:
                if column.computed is not None:
                    continue
                optional = role == "Update" or _database_fills(column)
                rendered = render_python_type(column)
                if optional and not rendered.endswith("| None") and rendered != "Any":
                    # May be left out (typed so for mypy); an explicit None for a NOT NULL
                    # column is refused by the database (NotNullError, nothing written).
                    rendered = f"{rendered} | None"
                default = " = None" if optional else ""
                lines.append(f"    {column.name}: {rendered}{default}")
        lines.append("")
    text = "\n".join(lines)
    lines = [header.format(what="Pydantic models of the database's rows.")]
    lines += ["from __future__ import annotations", ""]
    lines += used_imports(text, STANDARD_TYPES)
    lines += ["", "from pydantic import BaseModel, ConfigDict, Field", *body, text]
    return "\n".join(lines).rstrip() + "\n"


def _relations_by_source(schema: Schema) -> dict[str, list[Relation]]:
    names = {table: name for name, table in schema.tables.items()}
    found: dict[str, list[Relation]] = {}
    for relation in schema.relations:
        found.setdefault(names[relation.source], []).append(relation)
    for items in found.values():
        items.sort(key=lambda r: r.name)
    return found


def _columns(columns: Any) -> str:
    return "[" + ", ".join(repr(column.name) for column in columns) + "]"


def _relation_source(relation: Relation, names: Mapping[Table, str]) -> str:
    source = table_variable(names[relation.source])
    target = table_variable(names[relation.target])
    name = python_name(relation.name)
    if relation.kind == "many_to_many":
        assert relation.through is not None
        through = table_variable(names[relation.through])
        return (
            f"    many_to_many(tables.{source}, {name!r}, tables.{target}, "
            f"through=tables.{through}, source_key={_columns(relation.match)}, "
            f"target_key={_columns(relation.through_target)}),"
        )
    key = relation.local if relation.kind == "belongs_to" else relation.match
    return (
        f"    {relation.kind}(tables.{source}, {name!r}, tables.{target}, "
        f"foreign_key={_columns(key)}),"
    )


def _repositories_source(schema: Schema, header: str, package: str) -> str:
    names = {table: name for name, table in schema.tables.items()}
    kinds = sorted({relation.kind for relation in schema.relations})
    imports = ", ".join(["Orm", "Relation", "Repository", *kinds, "create_orm as _create_orm"])
    soft = _soft_delete_tables(schema)
    lines = [header.format(what="The repositories of the database, typed, with relations.")]
    lines += [
        "from __future__ import annotations",
        "",
        "from collections.abc import Sequence",
        "",
        "from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine",
        "",
        f"from kysera.repository import {imports}",
        *(["from kysera.schema import ViewRepository"] if schema.views else []),
        *(
            ["from kysera.soft_delete import SoftDeletePlugin, SoftDeleteRepository"]
            if soft
            else []
        ),
        "",
        f"from {package} import models, tables" if package else "from . import models, tables",
        "",
    ]
    if soft:
        names_text = ", ".join(map(repr, soft)) + ("," if len(soft) == 1 else "")
        lines += [f"SOFT_DELETE_TABLES = ({names_text})", ""]
    lines.append("RELATIONS: list[Relation] = [")
    lines += [_relation_source(relation, names) for relation in schema.relations]
    lines += [
        "]",
        "",
        "",
        "async def create_orm(",
        "    executor: AsyncEngine | AsyncConnection, plugins: Sequence[object] = ()",
        ") -> Orm:",
    ]
    if soft:
        lines += [
            '    """`kysera.repository.create_orm` with the relations declared, and soft delete',
            "    for the tables with a deleted_at column unless ``plugins`` has a soft-delete",
            '    plugin."""',
            '    if not any(getattr(plugin, "name", None) == "soft_delete" for plugin in plugins):',
            "        plugins = [SoftDeletePlugin(tables=SOFT_DELETE_TABLES), *plugins]",
        ]
    else:
        lines.append('    """`kysera.repository.create_orm` with the relations declared."""')
    lines += [
        "    orm = await _create_orm(executor, plugins)",
        "    orm.relate(*RELATIONS)",
        "    return orm",
        "",
        "",
        "class Repositories:",
        '    """One repository per table: ``repos.film``."""',
        "",
        "    def __init__(self, orm: Orm) -> None:",
    ]
    for name, table in schema.tables.items():
        cls = class_name(table)
        kind = "Repository"
        option = ""
        if name in schema.views:
            option = ", repository_class=ViewRepository"
        elif name in soft:
            kind = "SoftDeleteRepository"
            option = f",\n            repository_class=SoftDeleteRepository[models.{cls}Read]"
        lines += [
            f"        self.{python_name(name)}: {kind}[models.{cls}Read] = orm.repository(",
            f"            tables.{table_variable(name)},",
            f"            entity=models.{cls}Read,",
            f"            create=models.{cls}Create,",
            f"            update=models.{cls}Update{option},",
            "        )",
        ]
    return "\n".join(lines).rstrip() + "\n"


def _database_schema(schema: Schema) -> str | None:
    """The database schema the tables were discovered in, if one was named."""
    named = {table.schema for table in schema.tables.values() if table.schema}
    return named.pop() if len(named) == 1 else None


def generate_package(
    schema: Schema,
    *,
    out: str,
    package: str | None = None,
    api: Literal["fastapi"] | None = None,
) -> dict[str, str]:
    """The files of the generated package, by file name.

    Args:
        schema: What `discover` found.
        out: The output directory, as the regeneration command should name it.
        package: The package's import name, for absolute imports (default: relative).
        api: ``"fastapi"`` adds ``api.py`` (FastAPI routes for every table and view) and
            ``test_generated.py`` (tests of every repository and route).

    Raises:
        BadRequestError: ``api`` is not ``None`` or ``"fastapi"``; a column's name is not
            a Python name a pydantic field can have (``Order Date``, ``class``, ``_id``); or
            two tables would get the same Python name (``film_actor``, ``FilmActor``).
    """
    if api not in (None, "fastapi"):
        raise BadRequestError(f"unknown api {api!r}: the generator knows 'fastapi'")
    unusable = [
        f"{name}.{column}"
        for name, table in schema.tables.items()
        for column in unusable_columns(table)
    ]
    if unusable:
        raise BadRequestError(
            f"columns whose names are not Python names are not supported yet: "
            f"{', '.join(unusable)}; leave their tables out (--exclude TABLE)"
        )
    colliding = colliding_names(schema.tables)
    if colliding:
        # One name for two tables would silently bind a repository to the wrong table.
        raise BadRequestError(
            f"tables whose generated Python names would be the same are not supported yet: "
            f"{'; '.join(colliding)}; leave all but one of each out (--exclude TABLE)"
        )
    options = "".join(
        f" --{option} {value}"
        for option, value in (
            ("schema", _database_schema(schema)),
            ("package", package),
            ("api", api),
        )
        if value
    )
    header = HEADER.replace("{out}", out).replace("{options}", options)
    files = {
        "__init__.py": header.format(what="Tables, models and repositories of the database."),
        "tables.py": _tables_source(schema, header),
        "models.py": _models_source(schema, header),
        "repositories.py": _repositories_source(schema, header, package or ""),
    }
    if api == "fastapi":
        soft = _soft_delete_tables(schema)
        files["api.py"] = api_source(schema, header, package or "", soft)
        files["test_generated.py"] = test_source(schema, header, package or "")
    return files
