"""Case-sensitive LIKE on every dialect.

SQLite's ``LIKE`` ignores ASCII case whatever the column's collation, while PostgreSQL's is
case-sensitive and MySQL's follows the column's collation. So that ``$like``, ``$contains``,
``$startswith`` and ``$endswith`` mean the same thing everywhere, the condition is built twice:
as ``LIKE`` for every dialect and as the equivalent ``GLOB`` (always case-sensitive) that is
rendered on SQLite instead. Both carry the pattern as a bound parameter.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

__all__ = ["CaseSensitiveLike", "glob_literal", "like_pattern_to_glob"]

_GLOB_SPECIAL = frozenset("*?[")


class CaseSensitiveLike(sa.ColumnElement[bool]):
    """``like_clause`` on every dialect but SQLite, where ``glob_clause`` is rendered instead."""

    __visit_name__ = "kysera_case_sensitive_like"
    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy's own convention for this attribute)
        ("like_clause", InternalTraversal.dp_clauseelement),
        ("glob_clause", InternalTraversal.dp_clauseelement),
    ]
    type = sa.Boolean()

    def __init__(
        self, like_clause: sa.ColumnElement[bool], glob_clause: sa.ColumnElement[bool]
    ) -> None:
        self.like_clause = like_clause
        self.glob_clause = glob_clause

    def self_group(self, against: Any = None) -> CaseSensitiveLike:
        # Already a comparison: without this, SQLite would render it as ``(...) = 1`` inside
        # AND/OR, as it does for a plain boolean column.
        return self

    def _negate(self) -> CaseSensitiveLike:
        return CaseSensitiveLike(sa.not_(self.like_clause), sa.not_(self.glob_clause))


@compiles(CaseSensitiveLike)
def _compile_like(element: CaseSensitiveLike, compiler: SQLCompiler, **options: Any) -> str:
    return compiler.process(element.like_clause, **options)


@compiles(CaseSensitiveLike, "sqlite")
def _compile_glob(element: CaseSensitiveLike, compiler: SQLCompiler, **options: Any) -> str:
    return compiler.process(element.glob_clause, **options)


def glob_literal(text: str) -> str:
    """Return a GLOB pattern matching exactly ``text``: ``*``, ``?`` and ``[`` in brackets."""
    return "".join(f"[{char}]" if char in _GLOB_SPECIAL else char for char in text)


def like_pattern_to_glob(pattern: str, escape: str) -> str:
    """Translate a LIKE pattern (``%``, ``_``, ``escape``) into the equivalent GLOB pattern.

    Raises:
        ValueError: The pattern ends with an unpaired escape character.
    """
    parts: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == escape:
            escaped = next(chars, None)
            if escaped is None:
                raise ValueError("the pattern ends with the escape character")
            parts.append(glob_literal(escaped))
        elif char == "%":
            parts.append("*")
        elif char == "_":
            parts.append("?")
        else:
            parts.append(glob_literal(char))
    return "".join(parts)
