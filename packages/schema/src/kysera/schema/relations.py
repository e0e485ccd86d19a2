"""Relations derived from a discovered schema's foreign keys: `schema_relations`.

Every foreign key gives a ``belongs_to`` on the child and a ``has_many`` on the parent, named
as `kysera.repository.foreign_key_relations` names them (``film.language_id`` → ``language``
and ``language.film``; a self reference whose two names would be the same, such as
``staff.reports_to``, names the ``has_many`` after the key: ``staff_by_reports_to``). A
*join table* (its primary key is made of exactly the columns of two foreign keys, other
columns riding along such as Sakila's ``film_actor.last_update``; or, without a primary key,
it has nothing but the two foreign keys' columns) also gives a ``many_to_many`` on each
side, named after the other table (``film.actor`` through ``film_actor``), unless that name
is taken.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ForeignKeyConstraint, Table

from kysera.repository import Relation, foreign_key_relations, many_to_many

__all__ = ["join_table_ends", "schema_relations"]


def join_table_ends(table: Table) -> tuple[ForeignKeyConstraint, ForeignKeyConstraint] | None:
    """The two foreign keys of ``table`` if it is a pure join table, else ``None``."""
    constraints = sorted(
        (c for c in table.constraints if isinstance(c, ForeignKeyConstraint)),
        key=lambda c: [col.key for col in c.columns],
    )
    if len(constraints) != 2:
        return None
    referenced = [col.key for col in constraints[0].columns] + [
        col.key for col in constraints[1].columns
    ]
    if len(set(referenced)) != len(referenced):
        return None
    key = {col.key for col in table.primary_key.columns}
    # Keyed by the two foreign keys (other columns, a timestamp say, may ride along), or
    # without a key and nothing but them.
    if key != set(referenced) and (key or set(referenced) != set(table.c.keys())):
        return None
    return constraints[0], constraints[1]


def schema_relations(tables: Iterable[Table]) -> list[Relation]:
    """The relations of ``tables``: from every foreign key, and through every join table."""
    tables = list(tables)
    found = foreign_key_relations(tables)
    taken = {(relation.source, relation.name) for relation in found}
    for through in tables:
        ends = join_table_ends(through)
        if ends is None:
            continue
        first, second = ends
        for near, far in ((first, second), (second, first)):
            source, target = near.referred_table, far.referred_table
            if source is target:
                continue  # a self-referencing join table: names would be ambiguous
            name = target.name
            if name in source.c or (source, name) in taken:
                continue
            taken.add((source, name))
            found.append(
                many_to_many(
                    source,
                    name,
                    target,
                    through=through,
                    source_key=[col.key for col in near.columns],
                    target_key=[col.key for col in far.columns],
                )
            )
    return found
