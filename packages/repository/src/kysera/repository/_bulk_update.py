"""The input side of ``bulk_update``: every ``(id, data)`` pair checked and validated before
anything is written, then grouped so that the number of statements does not grow with the
number of rows (one executemany ``UPDATE`` per distinct set of changed columns).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kysera.core import ValidationError
from kysera.repository._keys import PrimaryKey

__all__ = ["BulkUpdatePlan", "plan_bulk_update"]


@dataclass(frozen=True, slots=True)
class BulkUpdatePlan:
    """What ``bulk_update`` writes, decided before it touches the database.

    Attributes:
        keys: The changed rows' keys (normalised), in the order of the changes.
        final_keys: The same rows' keys once updated (a change may set key columns).
        parameter_sets: One executemany per distinct set of changed columns: each item's
            values plus its key's bind parameters. Changes setting nothing are left out.
    """

    keys: list[Any]
    final_keys: list[Any]
    parameter_sets: list[list[dict[str, Any]]]


def plan_bulk_update(
    changes: Iterable[Any],
    validate: Callable[[Any], dict[str, Any]],
    key: PrimaryKey,
) -> BulkUpdatePlan:
    """Check that each change is an ``(id, data)`` pair and ``validate`` its data.

    Raises:
        ValidationError: A change is not a pair (at once), or any data is invalid (after
            validating them all; every error's ``loc`` starts with the change's index).
        InvalidQueryError: A key has the wrong shape for the table.
    """
    prepared: list[tuple[Any, dict[str, Any], dict[str, Any]]] = []
    errors: list[dict[str, Any]] = []
    for index, change in enumerate(changes):
        if not isinstance(change, (tuple, list)) or len(change) != 2:
            raise ValidationError(
                f"bulk_update takes (id, data) pairs; item {index} is {change!r}",
                errors=[{"type": "tuple_type", "loc": (index,), "msg": "Expected (id, data)"}],
            )
        id, data = change
        try:
            values = validate(data)
        except ValidationError as error:
            errors += [{**item, "loc": (index, *item.get("loc", ()))} for item in error.errors]
            continue
        prepared.append((key.normalize(id), values, key.params(id)))
    if errors:
        raise ValidationError(
            f"invalid {key.table.name} data in bulk_update: {len(errors)} error(s)",
            errors=errors,
        )
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for _, values, params in prepared:
        if values:
            groups.setdefault(tuple(values), []).append({**values, **params})
    return BulkUpdatePlan(
        keys=[item[0] for item in prepared],
        final_keys=[key.after_update(item[0], item[1]) for item in prepared],
        parameter_sets=list(groups.values()),
    )
