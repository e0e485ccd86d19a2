"""Reading an ``include=`` spec: which relations to load, with which options, into which
fields.

The spec is checked in full before any statement runs, like a where-dict: unknown relation
names, unknown options, bad filters and missing entity fields are `InvalidQueryError`s
naming what would be valid.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Table

from kysera.core import InvalidQueryError
from kysera.repository.ordering import compile_order_by
from kysera.repository.relations import Relation
from kysera.repository.where import compile_where

__all__ = ["IncludePlan", "RelationsOf", "plan_includes"]

RelationsOf = Callable[[Table], Mapping[str, Relation]]
"""Returns the relations whose parent is a table."""

OPTIONS: Final = ("count", "include", "limit", "order_by", "where")
"""The options one relation of an ``include=`` spec takes."""

MAX_DEPTH: Final = 16
"""How deeply includes may nest (a guard against runaway or hostile specs)."""


@dataclass(frozen=True, eq=False)
class IncludePlan:
    """One relation to load, checked and compiled.

    Attributes:
        relation: The relation.
        field: Where the result goes: the relation's name, or ``<name>_count``.
        model: The model of the related rows (``None``: dicts).
        where: The compiled filter on the related table, or ``None``.
        order_by: The compiled ordering of the related rows (may be empty).
        limit: At most this many related rows per parent, or ``None``.
        count: Load the number of related rows instead of the rows.
        children: The includes of the related rows.
    """

    relation: Relation
    field: str
    model: type[BaseModel] | None
    where: ColumnElement[bool] | None
    order_by: tuple[Any, ...]
    limit: int | None
    count: bool
    children: tuple[IncludePlan, ...]


def plan_includes(
    relations_of: RelationsOf,
    table: Table,
    model: type[BaseModel] | None,
    include: Any,
    *,
    path: str = "include",
    depth: int = 0,
) -> tuple[IncludePlan, ...]:
    """Check ``include`` against the relations of ``table`` and the fields of ``model``.

    ``include`` is a relation name, a list of names, or a dict of names to option dicts
    (``{}`` or ``True`` for no options).

    Raises:
        InvalidQueryError: Unknown relation or option, a bad option value, or an entity
            model without the field a relation is loaded into.
    """
    if depth >= MAX_DEPTH:
        raise InvalidQueryError(f"{path}: includes nest deeper than {MAX_DEPTH} levels")
    specs = _normalize(include, path)
    available = relations_of(table)
    plans = []
    for name, options in specs.items():
        relation = available.get(name)
        if relation is None:
            valid = sorted(available)
            hint = (
                f"relations of {table.name!r} are {valid}"
                if valid
                else f"{table.name!r} has no relations; declare them with orm.relate(...)"
            )
            raise InvalidQueryError(f"{path}: unknown relation {name!r}; {hint}")
        plans.append(_plan(relations_of, relation, model, options, f"{path}.{name}", depth))
    return tuple(plans)


def _normalize(include: Any, path: str) -> dict[str, Mapping[str, Any]]:
    if isinstance(include, str):
        return {include: {}}
    if isinstance(include, (list, tuple)):
        names: dict[str, Mapping[str, Any]] = {}
        for item in include:
            if not isinstance(item, str):
                raise InvalidQueryError(
                    f"{path}: a list of includes holds relation names, got {item!r}"
                )
            names[item] = {}
        return names
    if isinstance(include, Mapping):
        specs: dict[str, Mapping[str, Any]] = {}
        for name, options in include.items():
            if not isinstance(name, str):
                raise InvalidQueryError(f"{path}: relation names are strings, got {name!r}")
            if options is True or options is None:
                options = {}
            if not isinstance(options, Mapping):
                raise InvalidQueryError(
                    f"{path}.{name}: options are a dict (keys {list(OPTIONS)}), got {options!r}"
                )
            specs[name] = options
        return specs
    raise InvalidQueryError(
        f"{path}: include takes a relation name, a list of names or a dict of names to "
        f"options, got {type(include).__name__}"
    )


def _plan(
    relations_of: RelationsOf,
    relation: Relation,
    model: type[BaseModel] | None,
    options: Mapping[str, Any],
    path: str,
    depth: int,
) -> IncludePlan:
    unknown = sorted(str(key) for key in options if key not in OPTIONS)
    if unknown:
        raise InvalidQueryError(f"{path}: unknown option(s) {unknown}; options are {list(OPTIONS)}")
    target = relation.target
    count = options.get("count", False)
    if not isinstance(count, bool):
        raise InvalidQueryError(f"{path}: count must be True or False, got {count!r}")
    limit = options.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise InvalidQueryError(f"{path}: limit must be a non-negative integer, got {limit!r}")
    if limit is not None and not relation.many:
        raise InvalidQueryError(f"{path}: limit applies to lists; {relation.kind} loads one row")
    if count and not relation.many:
        raise InvalidQueryError(f"{path}: count applies to lists; {relation.kind} loads one row")
    if count and any(options.get(key) is not None for key in ("include", "limit", "order_by")):
        raise InvalidQueryError(f"{path}: count takes only where (no include, limit, order_by)")
    where = compile_where(target, options.get("where"))
    order = options.get("order_by")
    order_by = tuple(compile_order_by(target, order)) if order is not None else ()
    field = f"{relation.name}_count" if count else relation.name
    child_model = _field_model(model, relation, field, count, path)
    children: tuple[IncludePlan, ...] = ()
    nested = options.get("include")
    if nested is not None:
        children = plan_includes(
            relations_of, target, child_model, nested, path=f"{path}.include", depth=depth + 1
        )
    return IncludePlan(relation, field, child_model, where, order_by, limit, count, children)


def _field_model(
    model: type[BaseModel] | None, relation: Relation, field: str, count: bool, path: str
) -> type[BaseModel] | None:
    """The model of the related rows, read from the parent model's field annotation."""
    if model is None:
        return None
    fields = model.model_fields
    missing = [column.key for column in relation.local if column.key not in fields]
    if missing:
        raise InvalidQueryError(
            f"{path}: {model.__name__} has no field for {missing}, the key relation "
            f"{relation.name!r} is loaded by"
        )
    info = fields.get(field)
    if info is None:
        target = relation.target.name
        shape = (
            f"{field}: int = 0"
            if count
            else f"{field}: list[...] = []"
            if relation.many
            else f"{field}: ... | None = None"
        )
        raise InvalidQueryError(
            f"{path}: {model.__name__} has no field {field!r} to load {target!r} rows into; "
            f"add `{shape}` to the model"
        )
    if count:
        return None
    for meta in info.metadata:  # pydantic keeps an Annotated field's metadata here
        related = getattr(meta, "related_model", None)
        if isinstance(related, type) and issubclass(related, BaseModel):
            return related
    return _model_in(info.annotation)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``list[M]``, ``M | None``, ``Optional[M]`` (else ``None``).

    An ``Annotated[...]`` whose metadata has a ``related_model`` attribute (a pydantic model)
    names the model that way: generated models (kysera.schema) type relation fields as
    ``Annotated[list[Any], Related(...)]``, so that pydantic does not build every related
    model's schema into every model's (a chain of 250 related tables exceeded the recursion
    limit).
    """
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is None:
        return None
    if origin is typing.Union or origin is types.UnionType or origin in (list, tuple, set):
        for argument in typing.get_args(annotation):
            found = _model_in(argument)
            if found is not None:
                return found
    if origin is typing.Annotated:
        arguments = typing.get_args(annotation)
        for meta in arguments[1:]:
            related = getattr(meta, "related_model", None)
            if isinstance(related, type) and issubclass(related, BaseModel):
                return related
        return _model_in(arguments[0])
    return None
