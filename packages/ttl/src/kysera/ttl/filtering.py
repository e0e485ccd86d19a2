"""Add "not expired" conditions to hand-written SELECTs passed to `orm.execute`.

(The same placement rules as kysera.soft_delete's filtering; the condition differs.)

A repository's statement reads one table, so the condition goes into its WHERE clause. A
hand-written SELECT passed to `orm.execute` may read several tables and join them; each
expiring table (or alias of one) in its FROM clause is filtered where the condition
keeps the meaning of the join:

- a plain FROM table, and both sides of an inner join: in ``WHERE``;
- the optional side of an outer join: in the join's ``ON`` clause, so a LEFT JOIN still
  returns the left row (with NULLs) when its only right-hand match is expired;
- both sides of a FULL join: in ``ON`` and in ``WHERE`` (a NULL-padded side passes
  the condition, an expired row that found no partner does not).

Nested SELECTs (subqueries, ``EXISTS``, CTEs) are filtered the same way. A set operation
(``UNION``) passed to `orm.execute` is not a SELECT to the plugin pipeline and runs as written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import Alias, ColumnElement, FromClause, Join, Select, Table, and_, join
from sqlalchemy.sql import visitors

__all__ = ["filter_select"]

# Returns the "not expired" condition for a table (or alias of one), or None.
ConditionOf = Callable[[FromClause], "ColumnElement[bool] | None"]


def _condition(source: FromClause, condition_of: ConditionOf) -> ColumnElement[bool] | None:
    if isinstance(source, Alias) and isinstance(source.element, Table):
        return condition_of(source)
    if not isinstance(source, Table):
        return None
    return condition_of(source)


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


def filter_select(statement: Select[Any], condition_of: ConditionOf) -> Select[Any] | None:
    """Return ``statement`` hiding the expired rows of its expiring tables, or ``None``
    when it reads none.

    Nested SELECTs (subqueries in FROM, ``IN (SELECT ...)``, ``EXISTS``, scalar subqueries,
    CTEs) are filtered the same way, each in its own WHERE/ON clauses.

    Args:
        statement: A Core SELECT.
        condition_of: Returns the "not expired" condition of a table or alias, or ``None``.
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
            filtered = filter_select(element, condition_of)
            changed = changed or filtered is not None
            return element if filtered is None else filtered

        statement = cast("Select[Any]", visitors.replacement_traverse(statement, {}, replace))
    outer = _filter_froms(statement, condition_of)
    if outer is not None:
        return outer
    return statement if changed else None


def _filter_froms(statement: Select[Any], condition_of: ConditionOf) -> Select[Any] | None:
    """Filter the FROM clause of one SELECT (not its nested SELECTs)."""
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
        # SQLAlchemy keeps `.join()` calls as "setup joins" and builds the Join objects only
        # when asked (get_final_froms); Core has no public way to change an ON clause of an
        # existing statement, so the copy gets the rebuilt joins as its explicit FROM list.
        statement = statement._generate()
        statement._setup_joins = ()
        statement._from_obj = tuple(sources)
    return statement.where(*conditions) if conditions else statement
