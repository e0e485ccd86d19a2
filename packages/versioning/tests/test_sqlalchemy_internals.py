"""The private SQLAlchemy attributes kysera-versioning relies on still mean what they did.

Compiled only (no database): if an upgrade renames or reshapes one of them, these fail with
the attribute's name instead of a plugin quietly leaving a version alone.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from kysera.versioning._sqlalchemy_internals import (
    bump_upsert,
    is_single_values_insert,
    sets_column,
)

items = sa.Table(
    "vi_items",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(20)),
    sa.Column("version", sa.Integer, nullable=False),
)


def test_sets_column_sees_values_and_ordered_values() -> None:
    assert sets_column(sa.update(items).values(version=3), "version")
    assert sets_column(sa.update(items).values({items.c.version: 3}), "version")
    assert not sets_column(sa.update(items).values(name="x"), "version")
    assert sets_column(sa.update(items).ordered_values((items.c.version, 3)), "version")
    assert sets_column(sa.insert(items).values(id=1, version=2), "version")


def test_is_single_values_insert_tells_the_insert_forms_apart() -> None:
    assert is_single_values_insert(sa.insert(items).values(id=1))
    assert not is_single_values_insert(sa.insert(items).values([{"id": 1}, {"id": 2}]))
    assert not is_single_values_insert(
        sa.insert(items).from_select(["id", "name", "version"], sa.select(items))
    )


def test_bump_upsert_extends_every_dialects_update_branch() -> None:
    upserts = {
        postgresql.dialect(): postgresql.insert(items)
        .values(id=1, name="a")
        .on_conflict_do_update(index_elements=[items.c.id], set_={"name": "a"}),
        sqlite.dialect(): sqlite.insert(items)
        .values(id=1, name="a")
        .on_conflict_do_update(index_elements=[items.c.id], set_={"name": "a"}),
        mysql.dialect(): mysql.insert(items)
        .values(id=1, name="a")
        .on_duplicate_key_update(name="a"),
    }
    for dialect, upsert in upserts.items():
        bumped = bump_upsert(upsert, items.c.version)
        assert bumped is not None, dialect.name
        sql = str(bumped.compile(dialect=dialect))
        assert "version + 1" in sql, (dialect.name, sql)
        # The original is untouched (a copy), and a second bump sees the version already set.
        assert "version + 1" not in str(upsert.compile(dialect=dialect))
        assert bump_upsert(bumped, items.c.version) is None
    assert bump_upsert(sa.insert(items).values(id=1), items.c.version) is None
