"""Repositories without an ORM, the repositories factory, validation modes and models."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from pydantic import BaseModel, Field
from repository_support import User, UserCreate, counters, users
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core import BadRequestError, ValidationError
from kysera.core.testing import snapshot_table
from kysera.repository import (
    Repository,
    create_orm,
    create_repositories_factory,
    create_repository,
    default_validate_results,
    partial_model,
)


async def test_a_factory_binds_every_repository_to_one_transaction(engine: AsyncEngine) -> None:
    make_repositories = create_repositories_factory(
        {
            "users": lambda executor: create_repository(executor, users, entity=User),
            "counters": lambda executor: create_repository(executor, counters),
        }
    )

    async with engine.connect() as connection:
        repos = make_repositories(connection)
        await repos.users.create({"email": "f@example.com", "name": "F"})
        await repos.counters.create({"name": "users", "value": 1})
        await connection.rollback()
    assert await snapshot_table(engine, users) == []

    async with engine.begin() as connection:
        repos = make_repositories(connection)
        await repos.counters.create({"name": "users", "value": 1})
    assert len(await snapshot_table(engine, counters)) == 1
    with pytest.raises(TypeError):
        create_repositories_factory({"not an identifier": lambda executor: None})


def test_validation_mode_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KYSERA_VALIDATION_MODE", raising=False)
    assert default_validate_results() is True
    monkeypatch.setenv("KYSERA_VALIDATION_MODE", "never")
    assert default_validate_results() is False
    monkeypatch.setenv("KYSERA_VALIDATION_MODE", "sometimes")
    with pytest.raises(ValueError, match="always"):
        default_validate_results()


async def test_repositories_follow_the_mode_unless_told(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KYSERA_VALIDATION_MODE", "never")
    orm = await create_orm(engine)
    assert orm.repository(users, entity=User).validate_results is False
    assert orm.repository(users, entity=User, validate_results=True).validate_results is True
    strict_orm = await create_orm(engine, validate_results=True)
    assert strict_orm.repository(users, entity=User).validate_results is True


def test_the_update_model_defaults_to_an_all_optional_create_model() -> None:
    class ItemCreate(BaseModel):
        name: str = Field(min_length=2)
        size: int = 1

    ItemUpdate = partial_model(ItemCreate)

    assert ItemUpdate().model_dump(exclude_unset=True) == {}
    assert ItemUpdate(size=3).model_dump(exclude_unset=True) == {"size": 3}
    with pytest.raises(Exception, match="at least 2"):
        ItemUpdate(name="x")
    with pytest.raises(Exception, match="valid string"):
        ItemUpdate(name=None)


def test_models_with_fields_that_are_not_columns_are_refused(engine: AsyncEngine) -> None:
    class Wrong(UserCreate):
        password: str

    with pytest.raises(ValueError, match="password"):
        create_repository(engine, users, create=Wrong)
    with pytest.raises(BadRequestError, match="input model Wrong has the field 'password'") as e:
        create_repository(engine, users, update=Wrong)
    assert e.value.code == "BAD_REQUEST"


def test_an_entity_model_with_a_required_field_that_is_not_a_column_is_refused_at_once(
    engine: AsyncEngine,
) -> None:
    class WrongEntity(BaseModel):
        id: int
        nickname: str  # no column, no default: no row could ever fill it

    with pytest.raises(BadRequestError, match="entity model WrongEntity has the field 'nickname'"):
        create_repository(engine, users, entity=WrongEntity)

    class ComputedEntity(BaseModel):
        id: int
        shown: bool = True  # not a column, but the row need not fill it

    assert create_repository(engine, users, entity=ComputedEntity).entity is ComputedEntity
    with pytest.raises(TypeError):
        Repository("not an engine", users)  # type: ignore[arg-type]


def test_a_table_with_a_column_keyed_other_than_its_name_is_refused_at_once(
    engine: AsyncEngine,
) -> None:
    # Rows come back keyed by the column's name, input goes in by its key: before this
    # refusal, such a table read rows it could not match to models (or to keys, on MySQL).
    metadata = sa.MetaData()
    renamed = sa.Table(
        "renamed_lines",
        metadata,
        sa.Column("Line ID", sa.Integer, primary_key=True, key="line_id"),
        sa.Column("item", sa.String(20)),
    )
    with pytest.raises(BadRequestError, match="'Line ID' as 'line_id'"):
        create_repository(engine, renamed)


async def test_update_can_change_the_primary_key(engine: AsyncEngine) -> None:
    repo = create_repository(engine, counters)
    await repo.create({"name": "old", "value": 1})

    moved = await repo.update("old", {"name": "new"})

    assert moved == {"name": "new", "value": 1, "note": None}
    assert await repo.find_by_id("old") is None
    with pytest.raises(ValidationError):
        await repo.bulk_update([("new", {"value": 2}), "not a pair"])  # type: ignore[list-item]
