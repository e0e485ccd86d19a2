"""`restrict_select`: add a condition per table to a hand-written SELECT, wherever the table
is read, keeping the meaning of the joins.

A scoping plugin (soft delete's "not deleted", row-level security's "this tenant's rows")
must restrict every place a SELECT reads a table, not only its WHERE clause. Each table (or
alias of one) the statement reads gets the condition the caller gives for it:

- a plain FROM table, and both sides of an inner join: in the ``WHERE`` clause;
- the optional side of an outer join: in the join's ``ON`` clause, so a LEFT JOIN still
  returns the left row (with NULLs) when its only right-hand match is excluded;
- both sides of a FULL join: in ``ON`` and in ``WHERE`` (a NULL-padded side passes a
  condition that is true for NULLs, such as ``IS NULL``; otherwise it is excluded);
- nested SELECTs (subqueries in FROM, ``IN (SELECT ...)``, ``EXISTS``, scalar subqueries,
  CTEs): the same, each in its own clauses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import Alias, ColumnElement, FromClause, Join, Select, Table, and_, join
from sqlalchemy.sql import visitors

from kysera.repository._sqlalchemy_internals import replace_froms

__all__ = ["ConditionOf", "restrict_select"]

ConditionOf = Callable[[Table, FromClause], "ColumnElement[bool] | None"]
"""``(table, source) -> condition``: the condition rows of ``table`` must meet, written over
``source`` (the table itself, or an alias of it: use ``source.c``), or ``None``."""


def restrict_select(statement: Select[Any], condition_of: ConditionOf) -> Select[Any] | None:
    """Return ``statement`` with ``condition_of``'s condition on every table it reads, or
    ``None`` when no table needed one.

    Args:
        statement: A Core SELECT.
        condition_of: Gives each table's condition over the source reading it.
    """
    changed = False
    if any(
        isinstance(element, Select) and element is not statement
        for element in visitors.iterate(statement)
    ):

        def replace(element: Any, **kw: Any) -> Any:
            nonlocal changed
            if element is statement or not isinstance(element, Select):
                return None  # keep walking
            restricted = restrict_select(element, condition_of)
            changed = changed or restricted is not None
            return element if restricted is None else restricted

        statement = cast("Select[Any]", visitors.replacement_traverse(statement, {}, replace))
    outer = _restrict_froms(statement, condition_of)
    if outer is not None:
        return outer
    return statement if changed else None


def _condition(source: FromClause, condition_of: ConditionOf) -> ColumnElement[bool] | None:
    table: Any = source
    if isinstance(source, Alias) and isinstance(source.element, Table):
        table = source.element
    if not isinstance(table, Table):
        return None
    return condition_of(table, source)


def _rewrite(
    source: FromClause, condition_of: ConditionOf
) -> tuple[FromClause, list[ColumnElement[bool]]]:
    """Return the source with conditions placed in outer joins' ON clauses, and the
    conditions that belong in the enclosing WHERE (or ON) clause."""
    if not isinstance(source, Join):
        condition = _condition(source, condition_of)
        return source, [] if condition is None else [condition]
    left, left_conditions = _rewrite(source.left, condition_of)
    right, right_conditions = _rewrite(source.right, condition_of)
    if source.full:
        in_on, upward = left_conditions + right_conditions, left_conditions + right_conditions
    elif source.isouter:
        in_on, upward = right_conditions, left_conditions
    else:
        in_on, upward = [], left_conditions + right_conditions
    if not in_on and left is source.left and right is source.right:
        return source, upward
    onclause = source.onclause
    rebuilt = join(
        left,
        right,
        and_(*in_on) if onclause is None else and_(onclause, *in_on),
        isouter=source.isouter,
        full=source.full,
    )
    return rebuilt, upward


def _restrict_froms(statement: Select[Any], condition_of: ConditionOf) -> Select[Any] | None:
    """Restrict the FROM clause of one SELECT (not its nested SELECTs)."""
    sources: list[FromClause] = []
    conditions: list[ColumnElement[bool]] = []
    rebuilt_any = False
    for source in statement.get_final_froms():
        rebuilt, upward = _rewrite(source, condition_of)
        rebuilt_any = rebuilt_any or rebuilt is not source
        sources.append(rebuilt)
        conditions += upward
    if not rebuilt_any and not conditions:
        return None
    if rebuilt_any:
        statement = replace_froms(statement, sources)
    return statement.where(*conditions) if conditions else statement
