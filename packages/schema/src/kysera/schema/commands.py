"""``kysera inspect`` (what `discover` finds, as text or JSON) and ``kysera gen`` (it as a
Python package, `generate_package`)."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from sqlalchemy import Column, func, select

from kysera.core import BadRequestError, Command, command_engine, command_url
from kysera.schema.codegen import generate_package
from kysera.schema.discovery import discover
from kysera.schema.schema import Schema

__all__ = ["describe", "gen_command", "inspect_command"]


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--schema", help="the database schema (default: the default one)")
    parser.add_argument(
        "--include", action="append", metavar="TABLE", help="only this table or view (repeat)"
    )
    parser.add_argument(
        "--exclude", action="append", metavar="TABLE", help="leave out this table (repeat)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def _default(column: Column[Any]) -> str | None:
    """The SQL text of the column's server default (``None`` for a computed column)."""
    if column.server_default is None or column.computed is not None:
        return None
    return str(getattr(column.server_default, "arg", column.server_default))


def _computed(column: Column[Any]) -> str | None:
    """The SQL expression of a generated (computed) column."""
    return None if column.computed is None else str(column.computed.sqltext)


def describe(schema: Schema, counts: dict[str, int]) -> dict[str, Any]:
    """A JSON-ready description of ``schema``: per table its kind, row count, columns
    (type, nullable, primary key, default, the expression of a generated column), foreign
    keys and relations."""
    tables: dict[str, Any] = {}
    for name, table in schema.tables.items():
        tables[name] = {
            "kind": "view" if name in schema.views else "table",
            "rows": counts.get(name),
            "primary_key": [c.name for c in table.primary_key.columns],
            "columns": [
                {
                    "name": column.name,
                    "type": str(column.type),
                    "nullable": bool(column.nullable),
                    "default": _default(column),
                    "computed": _computed(column),
                }
                for column in table.columns
            ],
            "foreign_keys": [
                {
                    "columns": [c.name for c in constraint.columns],
                    "references": constraint.referred_table.name,
                }
                for constraint in sorted(
                    table.foreign_key_constraints, key=lambda c: [col.name for col in c.columns]
                )
            ],
            "relations": sorted(
                f"{relation.kind} {relation.name} -> {relation.target.name}"
                for relation in schema.relations
                if relation.source is table
            ),
        }
    return {"tables": tables}


def _text(description: dict[str, Any]) -> str:
    lines: list[str] = []
    for name, table in description["tables"].items():
        lines.append(f"{table['kind']} {name} ({table['rows']} rows)")
        for column in table["columns"]:
            marks = ["pk"] if column["name"] in table["primary_key"] else []
            marks.append("null" if column["nullable"] else "not null")
            if column["default"] is not None:
                marks.append(f"default {column['default']}")
            if column["computed"] is not None:
                marks.append(f"generated as {column['computed']}")
            lines.append(f"  {column['name']}: {column['type']} ({', '.join(marks)})")
        for key in table["foreign_keys"]:
            lines.append(f"  foreign key ({', '.join(key['columns'])}) -> {key['references']}")
        lines.extend(f"  {relation}" for relation in table["relations"])
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    async def inspect() -> int:
        engine = command_engine(command_url(args))
        try:
            schema = await discover(
                engine, schema=args.schema, include=args.include, exclude=args.exclude
            )
            counts: dict[str, int] = {}
            async with engine.connect() as connection:
                for name, table in schema.tables.items():
                    counts[name] = int(
                        await connection.scalar(select(func.count()).select_from(table)) or 0
                    )
        finally:
            await engine.dispose()
        description = describe(schema, counts)
        print(json.dumps(description, indent=2) if args.json else _text(description))
        return 0

    return asyncio.run(inspect())


inspect_command = Command(
    name="inspect",
    help="list the tables and views: columns, keys, relations and row counts",
    add_arguments=_arguments,
    run=_run,
)


def _gen_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="where the package goes")
    parser.add_argument(
        "--package",
        default=None,
        metavar="NAME",
        help="the package's import name (default: the last part of --out)",
    )
    parser.add_argument(
        "--api",
        choices=["fastapi"],
        default=None,
        help="also write api.py (FastAPI routes) and test_generated.py (their tests)",
    )
    parser.add_argument("--schema", help="the database schema (default: the default one)")
    parser.add_argument("--include", action="append", metavar="TABLE")
    parser.add_argument("--exclude", action="append", metavar="TABLE")


def _run_gen(args: argparse.Namespace) -> int:
    async def read() -> Schema:
        engine = command_engine(command_url(args))
        try:
            return await discover(
                engine, schema=args.schema, include=args.include, exclude=args.exclude
            )
        finally:
            await engine.dispose()

    out = Path(args.out)
    package = args.package or out.name
    if not all(part.isidentifier() for part in package.split(".")):
        raise BadRequestError(f"not a package name: {package!r} (pass --package)")
    schema = asyncio.run(read())
    files = generate_package(schema, out=args.out, package=args.package, api=args.api)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = out / name
        if not path.exists() or path.read_text() != text:  # unchanged files keep their mtime
            path.write_text(text)
    print(f"wrote {len(files)} files to {out} ({len(schema.tables)} tables and views)")
    return 0


gen_command = Command(
    name="gen",
    help="write tables, models and repositories of the database as a Python package",
    add_arguments=_gen_arguments,
    run=_run_gen,
)
