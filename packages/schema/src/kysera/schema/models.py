"""Pydantic models built from a table's columns: `TableModels` and `table_models`.

Each column becomes a field of the Python type its SQL type maps to (`column_python_type`),
``T | None`` where the column is nullable. The three models of a table:

- ``Read``: every column, as a row is returned, and (from `schema_models`) one field per
  relation of the table, empty until ``include=`` loads it: a list of the target's ``Read``
  entities for ``has_many`` / ``many_to_many``, one or ``None`` for ``belongs_to`` /
  ``has_one`` (typed for pydantic as ``Any``, see `Related`);
- ``Create``: the columns an insert may set; those the database fills in (an auto-increment
  or identity key, a server default) and nullable ones are optional, computed columns are
  left out;
- ``Update``: the same columns as ``Create``, all optional (a partial update).

Text columns with a length carry it as ``max_length``, so a value too long is refused
before it reaches the database (which would truncate it or fail with a driver error).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model
from sqlalchemy import ARRAY, JSON, Column, Enum, Integer, String, Table
from sqlalchemy.dialects.mysql import SET
from sqlalchemy.dialects.postgresql import DOMAIN

from kysera.repository import Relation

__all__ = ["Related", "TableModels", "column_python_type", "schema_models", "table_models"]

# Discovered names are used as they are: a column may be called "schema" or "model_id".
# Validators are built at first use: a service uses a few of a database's many tables.
_CONFIG = ConfigDict(protected_namespaces=(), from_attributes=True, defer_build=True)


class TableModels:
    """The pydantic models of one table, each built when first used.

    Attributes:
        Read: A row as stored (every column, and one field per relation).
        Create: Input for inserts.
        Update: Input for partial updates (every field optional).
    """

    __slots__ = ("__dict__", "_relation_fields", "table")

    def __init__(self, table: Table, relation_fields: Mapping[str, Any] | None = None) -> None:
        self.table = table
        self._relation_fields = dict(relation_fields or {})

    def __repr__(self) -> str:
        return f"<TableModels of {self.table.name!r}>"

    @functools.cached_property
    def Read(self) -> type[BaseModel]:
        fields: dict[str, Any] = dict(self._relation_fields)
        for column in self.table.columns:
            fields[column.key] = (_field_type(column), None if column.nullable else ...)
        return create_model(_model_name(self.table, "Read"), __config__=_CONFIG, **fields)

    @functools.cached_property
    def Create(self) -> type[BaseModel]:
        return create_model(
            _model_name(self.table, "Create"), __config__=_CONFIG, **self._input_fields(False)
        )

    @functools.cached_property
    def Update(self) -> type[BaseModel]:
        # Every field may be left out; none may be set to None unless the column allows it.
        return create_model(
            _model_name(self.table, "Update"), __config__=_CONFIG, **self._input_fields(True)
        )

    def _input_fields(self, partial: bool) -> dict[str, Any]:
        return {
            column.key: (
                _field_type(column),
                None if partial or _database_fills(column) else ...,
            )
            for column in self.table.columns
            if column.computed is None
        }


def column_python_type(column: Column[Any]) -> Any:
    """The Python type of ``column``'s values (without ``None`` for nullable columns).

    Enums map to their Python enum class, or to a ``Literal`` of their labels; arrays to
    ``list[item]``; a PostgreSQL ``DOMAIN`` to the type it constrains; a MySQL/MariaDB
    ``SET`` to ``set[Literal[members]]``; JSON to ``Any``
    (any JSON value); types without a Python type (a PostgreSQL ``tsvector``, say) to
    ``Any``.
    """
    sql_type = column.type
    if isinstance(sql_type, DOMAIN):  # PostgreSQL: values of the type it constrains
        return column_python_type(Column("value", sql_type.data_type))
    if isinstance(sql_type, SET):
        # SQLAlchemy's SET says str, but it reads a set of the members (and writes one).
        members = tuple(sql_type.values)
        return set[Literal[members]] if members else set[str]  # type: ignore[valid-type]
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
    """The ``Read``, ``Create`` and ``Update`` models of ``table``'s columns.

    Args:
        table: The table (or view).
        relation_fields: Extra ``Read`` fields, as ``{name: (type, default)}``.
    """
    return TableModels(table, relation_fields)


class Related:
    """Marks a relation field's ``Annotated`` type with the model of its rows.

    The field itself is typed ``list[Any]`` or ``Any`` for pydantic, which therefore never
    builds the related model's schema into this one (a schema of many related tables would
    otherwise nest every model reachable from each, and a long chain of foreign keys exceeds
    the recursion limit); ``include=`` reads `related_model` to build the loaded rows.
    """

    __slots__ = ("_models", "_target")

    def __init__(self, models: Mapping[str, TableModels], target: str) -> None:
        self._models = models
        self._target = target

    @property
    def related_model(self) -> type[BaseModel]:
        """The ``Read`` model of the related table."""
        return self._models[self._target].Read

    def __repr__(self) -> str:
        return f"Related({self._target!r})"


def schema_models(
    tables: Mapping[str, Table], relations: Iterable[Relation]
) -> dict[str, TableModels]:
    """The models of every table in ``tables``, each ``Read`` with its relations' fields."""
    relations = list(relations)
    names = {table: name for name, table in tables.items()}
    found: dict[str, TableModels] = {}
    for name, table in tables.items():
        fields: dict[str, Any] = {}
        for relation in relations:
            if relation.source is not table or relation.target not in names:
                continue
            marker = Related(found, names[relation.target])
            if relation.many:
                fields[relation.name] = (Annotated[list[Any], marker], Field(default_factory=list))
            else:
                fields[relation.name] = (Annotated[Any, marker], None)
        found[name] = TableModels(table, fields)
    return found
