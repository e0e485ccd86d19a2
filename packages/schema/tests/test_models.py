"""Models of a large schema: built when used, never nesting every related model."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from kysera.schema import Related, Schema


def chain(size: int) -> tuple[sa.MetaData, dict[str, sa.Table]]:
    """``size`` tables, each referencing the one before (a long foreign-key chain)."""
    metadata = sa.MetaData()
    tables: dict[str, sa.Table] = {}
    for index in range(size):
        columns: list[Any] = [sa.Column("id", sa.Integer, primary_key=True)]
        if index:
            columns.append(sa.Column("parent_id", sa.ForeignKey(f"t{index - 1}.id")))
        tables[f"t{index}"] = sa.Table(f"t{index}", metadata, *columns)
    return metadata, tables


def test_a_long_foreign_key_chain_builds_each_model_alone() -> None:
    metadata, tables = chain(400)
    schema = Schema(metadata, tables, views=frozenset())
    middle = schema.models["t200"]
    row = middle.Read.model_validate({"id": 1, "parent_id": 7})
    assert (row.id, row.parent_id, row.parent) == (1, 7, None)  # type: ignore[attr-defined]
    assert row.t201 == []  # type: ignore[attr-defined]
    [marker] = [m for m in middle.Read.model_fields["parent"].metadata if isinstance(m, Related)]
    assert marker.related_model is schema.models["t199"].Read
    assert middle.Create.model_validate({"parent_id": 3}).model_dump(exclude_unset=True) == {
        "parent_id": 3
    }


def test_models_are_built_once_when_first_used() -> None:
    metadata, tables = chain(3)
    schema = Schema(metadata, tables, views=frozenset())
    models = schema.models["t1"]
    assert models.Read is models.Read
    assert models.Update is not models.Create
    assert not any(f.is_required() for f in models.Update.model_fields.values())


def test_a_domain_column_takes_the_values_of_the_type_it_constrains() -> None:
    # Pagila's year: CREATE DOMAIN year AS integer CHECK (VALUE >= 1901 AND VALUE <= 2155)
    metadata = sa.MetaData()
    year = postgresql.DOMAIN("year", sa.Integer, check="VALUE >= 1901 AND VALUE <= 2155")
    films = sa.Table(
        "film",
        metadata,
        sa.Column("film_id", sa.Integer, primary_key=True),
        sa.Column("release_year", year, nullable=False),
    )
    models = Schema(metadata, {"film": films}, views=frozenset()).models["film"]
    assert models.Create.model_validate({"release_year": 2006}).release_year == 2006  # type: ignore[attr-defined]
    with pytest.raises(pydantic.ValidationError):
        models.Create.model_validate({"release_year": "abc"})
