"""Relations between tables: `belongs_to`, `has_many`, `has_one` and `many_to_many`.

A relation is declared once, on the ORM (``orm.relate(...)``), and resolved at once: its
foreign key is found among the tables' ``ForeignKey`` constraints (or taken as given), so a
missing or ambiguous key is reported where the relation is written, not at the first read.
Loading them (``include=``, ``repo.load``) lives in ``_loading``.

Every relation is reduced to the same shape: the parent's ``local`` columns are matched
against ``match`` columns, which are the related table's own columns (``belongs_to``,
``has_many``, ``has_one``) or the join table's columns pointing at the parent
(``many_to_many``, which then joins the related table on ``through_target = target_key``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Column, ForeignKeyConstraint, Table, exc

from kysera.core import InvalidQueryError

__all__ = [
    "Relation",
    "RelationKind",
    "belongs_to",
    "foreign_key_relations",
    "has_many",
    "has_one",
    "many_to_many",
]

RelationKind = Literal["belongs_to", "has_many", "has_one", "many_to_many"]
"""What a relation yields per parent: one row or ``None`` (``belongs_to``, ``has_one``) or a
list (``has_many``, ``many_to_many``)."""

ColumnsSpec = Column[Any] | str | Sequence[Column[Any] | str]
"""A column, a column name, or several of them (a composite key), in key order."""


@dataclass(frozen=True, eq=False)
class Relation:
    """A resolved relation from ``source`` rows to ``target`` rows.

    Create relations with `belongs_to`, `has_many`, `has_one` or `many_to_many`.

    Attributes:
        kind: The kind of relation.
        name: The attribute (or dict key) the related rows are put under.
        source: The table of the parent rows.
        target: The table of the related rows.
        local: The parent's columns holding the key, in key order.
        match: The columns compared with ``local``: on ``target``, or on ``through`` for
            ``many_to_many``.
        through: The join table of a ``many_to_many`` relation, else ``None``.
        through_target: ``through``'s columns pointing at ``target`` (``many_to_many``).
        target_key: ``target``'s columns that ``through_target`` points at.
    """

    kind: RelationKind
    name: str
    source: Table
    target: Table
    local: tuple[Column[Any], ...]
    match: tuple[Column[Any], ...]
    through: Table | None = None
    through_target: tuple[Column[Any], ...] = ()
    target_key: tuple[Column[Any], ...] = ()

    @property
    def many(self) -> bool:
        """Whether each parent gets a list (else one row or ``None``)."""
        return self.kind in ("has_many", "many_to_many")

    def __repr__(self) -> str:
        through = f", through={self.through.name!r}" if self.through is not None else ""
        return (
            f"{self.kind}({self.source.name!r}, {self.name!r}, {self.target.name!r}, "
            f"local={[c.key for c in self.local]}, match={[c.key for c in self.match]}{through})"
        )


def belongs_to(
    source: Table,
    name: str,
    target: Table,
    *,
    foreign_key: ColumnsSpec | None = None,
    references: ColumnsSpec | None = None,
) -> Relation:
    """Each ``source`` row refers to at most one ``target`` row (``books.author_id``).

    Args:
        source: The table holding the foreign key.
        name: The relation's name (``"author"``).
        target: The referenced table.
        foreign_key: ``source``'s key column(s); inferred from ``source``'s foreign keys to
            ``target`` when there is exactly one.
        references: ``target``'s column(s) the key refers to; inferred from the foreign key
            (or ``target``'s primary key when the columns carry no ``ForeignKey``).

    Raises:
        InvalidQueryError: No foreign key, several (pass ``foreign_key=``), or columns that
            do not belong to the tables.
    """
    _check_name(source, name)
    child, parent = _resolve_key(source, target, foreign_key, references, name)
    return Relation("belongs_to", name, source, target, local=child, match=parent)


def has_many(
    source: Table,
    name: str,
    target: Table,
    *,
    foreign_key: ColumnsSpec | None = None,
    references: ColumnsSpec | None = None,
) -> Relation:
    """Each ``source`` row has a list of ``target`` rows pointing at it (``books.author_id``).

    Args:
        source: The referenced (parent) table.
        name: The relation's name (``"books"``).
        target: The table holding the foreign key.
        foreign_key: ``target``'s key column(s); inferred when ``target`` has exactly one
            foreign key to ``source``.
        references: ``source``'s column(s) the key refers to (default: from the foreign
            key, else ``source``'s primary key).

    Raises:
        InvalidQueryError: No foreign key, several (pass ``foreign_key=``), or columns that
            do not belong to the tables.
    """
    return _reverse("has_many", source, name, target, foreign_key, references)


def has_one(
    source: Table,
    name: str,
    target: Table,
    *,
    foreign_key: ColumnsSpec | None = None,
    references: ColumnsSpec | None = None,
) -> Relation:
    """Each ``source`` row has at most one ``target`` row pointing at it (a profile).

    Arguments as for `has_many`. Should several rows point at one parent, the first in the
    relation's ``order_by`` (default: ``target``'s primary key) is taken.
    """
    return _reverse("has_one", source, name, target, foreign_key, references)


def many_to_many(
    source: Table,
    name: str,
    target: Table,
    *,
    through: Table,
    source_key: ColumnsSpec | None = None,
    target_key: ColumnsSpec | None = None,
) -> Relation:
    """``source`` and ``target`` rows linked by the rows of a join table (``book_tags``).

    Args:
        source: The parent table.
        name: The relation's name (``"tags"``).
        target: The related table.
        through: The join table, with a foreign key to each side.
        source_key: ``through``'s column(s) pointing at ``source``; needed when ``through``
            has several foreign keys to it (a self-referencing ``follows`` table).
        target_key: ``through``'s column(s) pointing at ``target``; likewise.

    Raises:
        InvalidQueryError: A side without a foreign key, or with several and no key given.
    """
    _check_name(source, name)
    if not isinstance(through, Table):
        raise TypeError(f"through must be a sqlalchemy.Table, not {type(through).__name__}")
    to_source, source_columns = _resolve_key(through, source, source_key, None, name)
    exclude = to_source if source is target else None
    to_target, target_columns = _resolve_key(
        through, target, target_key, None, name, exclude=exclude
    )
    return Relation(
        "many_to_many",
        name,
        source,
        target,
        local=source_columns,
        match=to_source,
        through=through,
        through_target=to_target,
        target_key=target_columns,
    )


def foreign_key_relations(tables: Iterable[Table]) -> list[Relation]:
    """The relations ``create_orm(..., relations="foreign_keys")`` derives from foreign keys.

    For every foreign key from a child to a parent table:

    - a ``belongs_to`` on the child, named after the key column without its ``_id`` suffix
      (``books.author_id`` → ``author``); a composite key, or a column whose name would
      stay the same, gives the parent table's name instead;
    - a ``has_many`` on the parent, named after the child table (``books``); when the child
      has several foreign keys to the parent, each is named ``<child>_by_<belongs_to name>``
      (``messages_by_sender``). A self reference whose two sides would get the same name
      (``staff.reports_to``: both ``staff``) names the ``has_many`` after the key columns:
      ``staff_by_reports_to``.

    A derived name already taken by a column, or by another derived relation, is skipped.
    """
    found: list[Relation] = []
    taken: set[tuple[Table, str]] = set()
    for child in tables:
        by_parent: dict[Table, list[ForeignKeyConstraint]] = {}
        for constraint in _constraints(child):
            by_parent.setdefault(constraint.referred_table, []).append(constraint)
        for parent, constraints in by_parent.items():
            for constraint in constraints:
                child_columns = tuple(constraint.columns)
                parent_columns = tuple(element.column for element in constraint.elements)
                forward = _derived_belongs_to_name(constraint)
                backward = child.name if len(constraints) == 1 else f"{child.name}_by_{forward}"
                sides: tuple[tuple[RelationKind, Table, str, Table, Any, Any], ...] = (
                    ("belongs_to", child, forward, parent, child_columns, parent_columns),
                    ("has_many", parent, backward, child, parent_columns, child_columns),
                )
                for kind, table, name, target, local, match in sides:
                    if kind == "has_many" and parent is child and name == forward:
                        keys = "_".join(column.key for column in child_columns)
                        name = f"{child.name}_by_{keys}"
                    if name in table.c or (table, name) in taken:
                        continue
                    taken.add((table, name))
                    found.append(Relation(kind, name, table, target, local=local, match=match))
    return found


# --- resolution -----------------------------------------------------------------------------


def _reverse(
    kind: Literal["has_many", "has_one"],
    source: Table,
    name: str,
    target: Table,
    foreign_key: ColumnsSpec | None,
    references: ColumnsSpec | None,
) -> Relation:
    _check_name(source, name)
    child, parent = _resolve_key(target, source, foreign_key, references, name)
    return Relation(kind, name, source, target, local=parent, match=child)


def _check_name(source: Table, name: str) -> None:
    if not isinstance(source, Table):
        raise TypeError(f"a relation's table must be a sqlalchemy.Table, not {type(source)}")
    if not isinstance(name, str) or not name.isidentifier():
        raise InvalidQueryError(f"a relation's name must be an identifier, got {name!r}")
    if name in source.c:
        raise InvalidQueryError(
            f"relation {name!r} of {source.name!r} has the name of one of its columns; "
            "choose another name"
        )


def _constraints(table: Table) -> list[ForeignKeyConstraint]:
    """The table's foreign keys whose referred table is known (sorted, for stable output)."""
    found = []
    for constraint in table.foreign_key_constraints:
        try:
            constraint.referred_table  # noqa: B018 (raises when the target is not in MetaData)
        except exc.NoReferencedTableError:  # a key to a table outside the MetaData
            continue
        found.append(constraint)
    return sorted(found, key=lambda constraint: [column.key for column in constraint.columns])


def _resolve_key(
    child: Table,
    parent: Table,
    given: ColumnsSpec | None,
    references: ColumnsSpec | None,
    name: str,
    *,
    exclude: tuple[Column[Any], ...] | None = None,
) -> tuple[tuple[Column[Any], ...], tuple[Column[Any], ...]]:
    """Return (child's key columns, parent's referenced columns), in matching order."""
    candidates = [c for c in _constraints(child) if c.referred_table is parent]
    if exclude is not None:
        # A self-referencing join table: the other foreign key to the same table.
        candidates = [c for c in candidates if tuple(c.columns) != exclude]
    if given is None:
        if not candidates:
            raise InvalidQueryError(
                f"relation {name!r}: {child.name!r} has no foreign key to {parent.name!r}; "
                f"pass foreign_key= (the column(s) of {child.name!r} holding the key)"
            )
        if len(candidates) > 1:
            options = [[column.key for column in c.columns] for c in candidates]
            raise InvalidQueryError(
                f"relation {name!r}: {child.name!r} has {len(candidates)} foreign keys to "
                f"{parent.name!r} ({options}); pass the one to use as foreign_key= "
                "(source_key=/target_key= for many_to_many)"
            )
        constraint = candidates[0]
        pairs = {element.parent: element.column for element in constraint.elements}
        child_columns = tuple(constraint.columns)
        parent_columns = tuple(pairs[column] for column in child_columns)
        if references is not None:
            parent_columns = _columns_of(parent, references, name, "references")
            _check_lengths(child_columns, parent_columns, name)
        return child_columns, parent_columns
    child_columns = _columns_of(child, given, name, "foreign_key")
    if references is not None:
        parent_columns = _columns_of(parent, references, name, "references")
    else:
        parent_columns = _referenced(child_columns, parent, candidates, name)
    _check_lengths(child_columns, parent_columns, name)
    return child_columns, parent_columns


def _referenced(
    child_columns: tuple[Column[Any], ...],
    parent: Table,
    candidates: list[ForeignKeyConstraint],
    name: str,
) -> tuple[Column[Any], ...]:
    """The parent columns that the given child columns refer to."""
    for constraint in candidates:
        if set(constraint.columns) == set(child_columns):
            pairs = {element.parent: element.column for element in constraint.elements}
            return tuple(pairs[column] for column in child_columns)
    # Column-level ForeignKeys (or none at all): each column's own reference, else the
    # parent's primary key, in order.
    referenced: list[Column[Any]] = []
    for column in child_columns:
        target = next(
            (key.column for key in column.foreign_keys if key.column.table is parent), None
        )
        if target is None:
            break
        referenced.append(target)
    else:
        return tuple(referenced)
    primary = tuple(parent.primary_key.columns)
    if len(primary) != len(child_columns):
        raise InvalidQueryError(
            f"relation {name!r}: {[c.key for c in child_columns]} has no foreign key to "
            f"{parent.name!r} and does not match its primary key {[c.key for c in primary]}; "
            "pass references= (the referenced column(s))"
        )
    return primary


def _columns_of(
    table: Table, spec: ColumnsSpec, name: str, argument: str
) -> tuple[Column[Any], ...]:
    items: Sequence[Any] = [spec] if isinstance(spec, (str, Column)) else list(spec)
    if not items:
        raise InvalidQueryError(f"relation {name!r}: {argument}= names no column")
    columns: list[Column[Any]] = []
    for item in items:
        if isinstance(item, str):
            column = table.c.get(item)
        elif isinstance(item, Column) and item.table is table:
            column = item
        else:
            column = None
        if column is None:
            described = item.key if isinstance(item, Column) else item
            raise InvalidQueryError(
                f"relation {name!r}: {argument}={described!r} is not a column of "
                f"{table.name!r}; its columns are {sorted(table.c.keys())}"
            )
        columns.append(column)
    return tuple(columns)


def _check_lengths(
    child: tuple[Column[Any], ...], parent: tuple[Column[Any], ...], name: str
) -> None:
    if len(child) != len(parent):
        raise InvalidQueryError(
            f"relation {name!r}: {len(child)} key column(s) {[c.key for c in child]} against "
            f"{len(parent)} referenced column(s) {[c.key for c in parent]}"
        )


def _derived_belongs_to_name(constraint: ForeignKeyConstraint) -> str:
    columns = list(constraint.columns)
    if len(columns) == 1 and columns[0].key.endswith("_id") and len(columns[0].key) > 3:
        return columns[0].key[: -len("_id")]
    return str(constraint.referred_table.name)


class RelationMap:
    """The relations of one ORM, by source table and name."""

    def __init__(self) -> None:
        self._by_table: dict[Table, dict[str, Relation]] = {}
        self._derived_metadata: set[int] = set()
        self.from_foreign_keys = False

    def add(self, relations: Iterable[Relation], *, replace: bool = True) -> None:
        """Register relations; a later declaration of the same name replaces the earlier."""
        for relation in relations:
            if not isinstance(relation, Relation):
                raise TypeError(
                    "orm.relate() takes relations made by belongs_to, has_many, has_one or "
                    f"many_to_many, not {type(relation).__name__}"
                )
            named = self._by_table.setdefault(relation.source, {})
            if replace or relation.name not in named:
                named[relation.name] = relation

    def of(self, table: Table) -> Mapping[str, Relation]:
        """The relations whose parent is ``table``."""
        if self.from_foreign_keys and id(table.metadata) not in self._derived_metadata:
            self._derived_metadata.add(id(table.metadata))
            # Declared relations win over derived ones of the same name.
            self.add(foreign_key_relations(table.metadata.tables.values()), replace=False)
        return self._by_table.get(table, {})
