"""The private SQLAlchemy attributes kysera-repository writes still mean what they did.

Compiled only (no database): if an upgrade renames one of them, this fails with the
attribute's name instead of a scoping plugin quietly reading the wrong FROM clause.
"""

from __future__ import annotations

import sqlalchemy as sa

from kysera.repository._sqlalchemy_internals import replace_froms

metadata = sa.MetaData()
parents = sa.Table("ri_parents", metadata, sa.Column("id", sa.Integer, primary_key=True))
children = sa.Table(
    "ri_children",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("parent_id", sa.ForeignKey("ri_parents.id")),
)


def test_replace_froms_swaps_the_joins_of_a_statement_for_the_given_sources() -> None:
    joined = sa.select(parents.c.id, children.c.id).join_from(parents, children)
    rebuilt = sa.outerjoin(parents, children, children.c.parent_id == parents.c.id)
    copied = replace_froms(joined, [rebuilt])
    sql = str(copied)
    assert "LEFT OUTER JOIN ri_children" in sql
    assert sql.count("JOIN") == 1
    assert "LEFT OUTER" not in str(joined)  # the original is unchanged
