"""Pydantic models built from a table's columns: `TableModels` and `table_models`.

Each column becomes a field of the Python type its SQL type maps to (`column_python_type`),
``T | None`` where the column is nullable. The three models of a table:

- ``Read``: every column, as a row is returned, and (from `schema_models`) one field per
  relation of the table, empty until ``include=`` loads it: ``list[<Target>Read]`` for
  ``has_many`` / ``many_to_many``, ``<Target>Read | None`` for ``belongs_to`` / ``has_one``;
- ``Create``: the columns an insert may set; those the database fills in (an auto-increment
  or identity key, a server default) and nullable ones are optional, computed columns are
  left out;
- ``Update``: the same columns as ``Create``, all optional (a partial update).

Text columns with a length carry it as ``max_length``, so a value too long is refused
before it reaches the database (which would truncate it or fail with a driver error).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ForwardRef, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model
from sqlalchemy import ARRAY, JSON, Column, Enum, Integer, String, Table

from kysera.repository import Relation

__all__ = ["TableModels", "column_python_type", "schema_models", "table_models"]

# Discovered names are used as they are: a column may be called "schema" or "model_id".
_CONFIG = ConfigDict(protected_namespaces=(), from_attributes=True)


@dataclass(frozen=True)
class TableModels:
    """The pydantic models of one table.

    Attributes:
        Read: A row as stored (every column).
        Create: Input for inserts.
        Update: Input for partial updates (every field optional).
    """

    Read: type[BaseModel]
    Create: type[BaseModel]
    Update: type[BaseModel]


def column_python_type(column: Column[Any]) -> Any:
    """The Python type of ``column``'s values (without ``None`` for nullable columns).

    Enums map to their Python enum class, or to a ``Literal`` of their labels; arrays to
    ``list[item]``; JSON to ``Any`` (any JSON value); types without a Python type (a
    PostgreSQL ``tsvector``, say) to ``Any``.
    """
    sql_type = column.type
    if isinstance(sql_type, Enum):
        enum_class = sql_type.enum_class
        if isinstance(enum_class, type) and issubclass(enum_class, enum.Enum):
            return enum_class
        return Literal[tuple(sql_type.enums)] if sql_type.enums else str
    if isinstance(sql_type, ARRAY):
        item = Column("item", sql_type.item_type)
        return list[column_python_type(item)]  # type: ignore[misc]
    if isinstance(sql_type, JSON):
        return Any
    try:
        return sql_type.python_type
    except NotImplementedError:
        return Any


def _field_type(column: Column[Any]) -> Any:
    python_type = column_python_type(column)
    length = getattr(column.type, "length", None)
    if isinstance(column.type, String) and isinstance(length, int) and python_type is str:
        python_type = Annotated[str, Field(max_length=length)]
    if column.nullable and python_type is not Any:
        return python_type | None
    return python_type


def _database_fills(column: Column[Any]) -> bool:
    """Whether an insert may leave the column out: the database or SQLAlchemy fills it."""
    if column.nullable or column.server_default is not None or column.default is not None:
        return True
    if column.identity is not None:
        return True
    if column.primary_key and column.autoincrement is True:
        return True
    table = column.table
    return (
        column.autoincrement == "auto"
        and isinstance(column.type, Integer)
        and list(table.primary_key.columns) == [column]
        and not column.foreign_keys
    )


def _model_name(table: Table, role: str) -> str:
    words = "".join(part.capitalize() for part in table.name.replace("-", "_").split("_"))
    return f"{words or 'Table'}{role}"


def table_models(table: Table, relation_fields: Mapping[str, Any] | None = None) -> TableModels:
    """Build ``Read``, ``Create`` and ``Update`` models from ``table``'s columns.

    Args:
        table: The table (or view).
        relation_fields: Extra ``Read`` fields, as ``{name: (type, default)}``.
    """
    read_fields: dict[str, Any] = dict(relation_fields or {})
    create_fields: dict[str, Any] = {}
    for column in table.columns:
        field_type = _field_type(column)
        read_fields[column.key] = (field_type, None if column.nullable else ...)
        if column.computed is not None:
            continue
        create_fields[column.key] = (field_type, None if _database_fills(column) else ...)
    # Update: every field may be left out, none may be set to None unless the column allows it.
    update_fields: dict[str, Any] = {
        name: (field_type, None) for name, (field_type, _) in create_fields.items()
    }
    return TableModels(
        Read=create_model(_model_name(table, "Read"), __config__=_CONFIG, **read_fields),
        Create=create_model(_model_name(table, "Create"), __config__=_CONFIG, **create_fields),
        Update=create_model(_model_name(table, "Update"), __config__=_CONFIG, **update_fields),
    )


def schema_models(
    tables: Mapping[str, Table], relations: Iterable[Relation]
) -> dict[str, TableModels]:
    """The models of every table in ``tables``, each ``Read`` with its relations' fields."""
    relations = list(relations)
    read_names = {table: _model_name(table, "Read") for table in tables.values()}
    found: dict[str, TableModels] = {}
    for name, table in tables.items():
        fields: dict[str, Any] = {}
        for relation in relations:
            if relation.source is not table or relation.target not in read_names:
                continue
            target: Any = ForwardRef(read_names[relation.target])
            if relation.many:
                fields[relation.name] = (list[target], Field(default_factory=list))
            else:
                fields[relation.name] = (target | None, None)
        found[name] = table_models(table, fields)
    namespace = {read_names[tables[name]]: models.Read for name, models in found.items()}
    for models in found.values():
        models.Read.model_rebuild(_types_namespace=namespace)
    return found
