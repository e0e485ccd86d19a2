"""Validation of repository input and the building of entities from rows.

Input (``create``/``update`` data) is always validated before anything is written. Rows
read back are turned into ``entity`` instances either by validating them
(``validate_results=True``) or by trusting the database and filling the instance directly.
"""

from __future__ import annotations

import copy
import os
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import pydantic
from pydantic import BaseModel, TypeAdapter
from pydantic.fields import FieldInfo
from sqlalchemy import DateTime, Table

from kysera.core import BadRequestError, ValidationError
from kysera.core._stored_time import in_utc_for

__all__ = ["default_validate_results", "partial_model"]

VALIDATION_MODE_ENV = "KYSERA_VALIDATION_MODE"
_MODES = {"always": True, "never": False}


def default_validate_results() -> bool:
    """Whether repositories validate rows by default: ``KYSERA_VALIDATION_MODE``.

    ``always`` (the default when unset) validates every row with the entity model;
    ``never`` trusts the database and builds entities without validation.

    Raises:
        ValueError: The variable holds another value.
    """
    mode = os.environ.get(VALIDATION_MODE_ENV, "always").strip().lower() or "always"
    if mode not in _MODES:
        raise ValueError(f"{VALIDATION_MODE_ENV} must be 'always' or 'never', got {mode!r}")
    return _MODES[mode]


_PARTIAL_MODELS: weakref.WeakKeyDictionary[type[BaseModel], type[BaseModel]] = (
    weakref.WeakKeyDictionary()
)
_LIST_ADAPTERS: weakref.WeakKeyDictionary[type[BaseModel], TypeAdapter[list[Any]]] = (
    weakref.WeakKeyDictionary()
)


def partial_model(model: type[BaseModel]) -> type[BaseModel]:
    """Return a copy of ``model`` in which every field is optional (for partial updates).

    Field types and constraints are kept: a field that may not be ``None`` still rejects an
    explicit ``None``; an omitted field is simply not updated. Built once per model.
    """
    found = _PARTIAL_MODELS.get(model)
    if found is None:
        found = _PARTIAL_MODELS[model] = _build_partial_model(model)
    return found


def _list_adapter(model: type[BaseModel]) -> TypeAdapter[list[Any]]:
    found = _LIST_ADAPTERS.get(model)
    if found is None:
        found = _LIST_ADAPTERS[model] = TypeAdapter(list[model])  # type: ignore[valid-type]
    return found


def _build_partial_model(model: type[BaseModel]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        optional = copy.copy(field)
        optional.default = None
        optional.default_factory = None
        fields[name] = (field.annotation, optional)
    partial: type[BaseModel] = pydantic.create_model(
        f"{model.__name__}Partial",
        __config__=model.model_config,
        __module__=model.__module__,
        **fields,
    )
    return partial


def _to_kysera_error(table: Table, error: pydantic.ValidationError) -> ValidationError:
    errors = error.errors(include_url=False)
    first: Mapping[str, Any] = errors[0] if errors else {}
    location = ".".join(str(part) for part in first.get("loc", ()))
    message = f"invalid {table.name} data: {first.get('msg', 'invalid')}"
    if location:
        message += f" ({location})"
    if len(errors) > 1:
        message += f" and {len(errors) - 1} more error(s)"
    return ValidationError(message, errors=errors)


class InputValidator:
    """Validates create or update input and returns plain column dicts.

    With a model, input (a mapping or a model instance) is validated by it. A create dump
    keeps every field the caller set plus defaults that are not ``None`` (an unset optional
    field is left to the database default); an update dump keeps only the fields set.
    Without a model, input must be a mapping whose keys are columns of the table.
    """

    __slots__ = (
        "_adapter",
        "_columns",
        "_datetime_types",
        "_field_names",
        "_partial",
        "model",
        "table",
    )

    def __init__(self, table: Table, model: type[BaseModel] | None, *, partial: bool) -> None:
        self.table = table
        self.model = model
        self._partial = partial
        self._columns = frozenset(table.columns.keys())
        # Plain DateTime columns: aware values become UTC (see kysera.core._stored_time).
        self._datetime_types = {
            column.key: column.type for column in table.columns if isinstance(column.type, DateTime)
        }
        self._field_names: tuple[str, ...] = ()
        self._adapter: TypeAdapter[list[Any]] | None = None
        if model is not None:
            _check_fields_are_columns(table, model, "input")
            self._field_names = tuple(model.model_fields)
            self._adapter = _list_adapter(model)

    def one(self, data: Any) -> dict[str, Any]:
        """Validate one input and return its column values.

        Raises:
            ValidationError: The input is invalid.
        """
        model = self.model
        if model is None:
            return self._in_utc(self._check_mapping(data, None))
        try:
            instance = data if type(data) is model else model.model_validate(data)
        except pydantic.ValidationError as error:
            raise _to_kysera_error(self.table, error) from None
        return self._in_utc(self._dump(instance))

    def _in_utc(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` with aware datetimes of plain DateTime columns in UTC (`in_utc_for`)."""
        for key, column_type in self._datetime_types.items():
            value = values.get(key)
            if isinstance(value, datetime) and value.tzinfo is not None:
                values[key] = in_utc_for(column_type, value)
        return values

    def many(self, rows: Iterable[Any]) -> list[dict[str, Any]]:
        """Validate several inputs (all of them before returning) and return their values.

        Raises:
            ValidationError: Any input is invalid; ``errors`` locations start with its index.
        """
        if isinstance(rows, (str, bytes, Mapping)):
            raise ValidationError(
                f"invalid {self.table.name} data: expected a list of rows",
                errors=[{"type": "list_type", "loc": (), "msg": "Input should be a valid list"}],
            )
        items = list(rows)
        if self.model is None:
            columns, check = self._columns, self._check_mapping
            # A plain dict of columns is copied inline (what _check_mapping does for it).
            checked = (
                item.copy() if type(item) is dict and item.keys() <= columns else check(item, index)
                for index, item in enumerate(items)
            )
            if not self._datetime_types:
                return list(checked)
            datetime_keys, in_utc = self._datetime_types.keys(), self._in_utc
            return [
                values if datetime_keys.isdisjoint(values.keys()) else in_utc(values)
                for values in checked
            ]
        adapter = self._adapter
        assert adapter is not None
        try:
            instances = adapter.validate_python(items)
        except pydantic.ValidationError as error:
            raise _to_kysera_error(self.table, error) from None
        # One serializer call for the whole list is about twice as fast as model_dump()
        # per instance.
        if self._partial:
            dumped: list[dict[str, Any]] = adapter.dump_python(instances, exclude_unset=True)
            return [self._in_utc(values) for values in dumped] if self._datetime_types else dumped
        dumped = adapter.dump_python(instances)
        field_count = len(self._field_names)
        for instance, values in zip(instances, dumped, strict=True):
            fields_set = instance.model_fields_set
            if len(fields_set) != field_count:
                for name in self._field_names:
                    if name not in fields_set and values[name] is None:
                        del values[name]
        return [self._in_utc(values) for values in dumped] if self._datetime_types else dumped

    def _dump(self, instance: BaseModel) -> dict[str, Any]:
        if self._partial:
            return instance.model_dump(exclude_unset=True)
        values = instance.model_dump()
        fields_set = instance.model_fields_set
        if len(fields_set) != len(self._field_names):
            for name in self._field_names:
                if name not in fields_set and values[name] is None:
                    del values[name]
        return values

    def _check_mapping(self, data: Any, index: int | None) -> dict[str, Any]:
        if type(data) is dict and data.keys() <= self._columns:
            return data.copy()
        prefix: tuple[Any, ...] = () if index is None else (index,)
        if not isinstance(data, Mapping):
            raise ValidationError(
                f"invalid {self.table.name} data: expected a mapping of column values, "
                f"got {type(data).__name__}",
                errors=[{"type": "dict_type", "loc": prefix, "msg": "Input should be a dict"}],
            )
        unknown = [key for key in data if key not in self._columns]
        if unknown:
            raise ValidationError(
                f"invalid {self.table.name} data: unknown column(s) {unknown}; "
                f"columns are {sorted(self._columns)}",
                errors=[
                    {"type": "extra_forbidden", "loc": (*prefix, key), "msg": "Unknown column"}
                    for key in unknown
                ],
            )
        return dict(data)


def _fast_constructor(model: type[BaseModel], columns: frozenset[str]) -> Callable[..., Any]:
    """Build instances without validation by filling ``__dict__`` the way pydantic does.

    ``row`` must be a dict owned by the caller (it may become the instance's ``__dict__``).

    Only used for plain models (every field a column, no private attributes, no extra
    fields, no aliases); anything else goes through ``model_construct``.
    """
    names = tuple(model.model_fields)
    all_names = frozenset(names)
    new = object.__new__
    set_attribute = object.__setattr__

    def construct(row: dict[str, Any]) -> Any:
        instance = new(model)
        # The row dict is built for this call alone: adopt it when it holds exactly the
        # fields (copying costs more than the rest of the construction).
        values = row if row.keys() == all_names else {name: row[name] for name in names}
        set_attribute(instance, "__dict__", values)
        set_attribute(instance, "__pydantic_fields_set__", set(all_names))
        set_attribute(instance, "__pydantic_extra__", None)
        set_attribute(instance, "__pydantic_private__", None)
        return instance

    return construct


def _is_plain(model: type[BaseModel], columns: frozenset[str]) -> bool:
    fields: dict[str, FieldInfo] = model.model_fields
    return (
        all(name in columns and field.alias is None for name, field in fields.items())
        and not model.__private_attributes__
        and model.model_config.get("extra") != "allow"
        and not model.__pydantic_root_model__
    )


class EntityBuilder:
    """Turns row dicts into entities (or returns them as dicts when there is no entity).

    Args:
        table: The table the rows come from.
        entity: The entity model, or ``None`` for plain dicts.
        validate: Validate rows with ``model_validate`` (``True``) or trust the database.
    """

    __slots__ = ("build", "build_many", "entity", "validate")

    def __init__(self, table: Table, entity: type[BaseModel] | None, *, validate: bool) -> None:
        if entity is not None:
            _check_fields_are_columns(table, entity, "entity")
        self.entity = entity
        self.validate = validate
        build: Callable[[dict[str, Any]], Any]
        if entity is None:
            build = _identity
        elif validate:
            build = entity.model_validate
        else:
            columns = frozenset(table.columns.keys())
            if _is_plain(entity, columns):
                build = _fast_constructor(entity, columns)
            else:
                construct = entity.model_construct

                def build(row: dict[str, Any]) -> Any:
                    return construct(**row)

        self.build: Callable[[dict[str, Any]], Any] = build

        build_many: Callable[[list[dict[str, Any]]], list[Any]]
        if entity is not None and validate:
            # One validator call for the whole list: cheaper than a call per row, and it
            # allocates less for the garbage collector to walk.
            build_many = _list_adapter(entity).validate_python
        else:

            def build_many(rows: list[dict[str, Any]]) -> list[Any]:
                return [build(row) for row in rows]

        self.build_many = build_many

    def wrap_error(self, table: Table, error: pydantic.ValidationError) -> ValidationError:
        """The kysera error for a row that failed entity validation."""
        return _to_kysera_error(table, error)


def _check_fields_are_columns(table: Table, model: type[BaseModel], role: str) -> None:
    """Refuse, when the repository is built, a model whose fields the table cannot fill.

    An input model may only have columns as fields (anything else could not be written). An
    entity model's required fields must be columns (or have a column as alias): a row could
    never fill the others, and the first read would fail. Entity fields with a default may
    be computed by the application.

    Raises:
        BadRequestError: Naming the model, the first offending field and the table.
    """
    columns = set(table.columns.keys())
    for name, field in model.model_fields.items():
        if name in columns or (field.alias is not None and field.alias in columns):
            continue
        if role == "entity" and not field.is_required():
            continue
        raise BadRequestError(
            f"{role} model {model.__name__} has the field {name!r}, which is not a column of "
            f"table {table.name!r} (columns: {', '.join(sorted(columns))})",
        )


def _identity(row: dict[str, Any]) -> dict[str, Any]:
    return row
