"""A condition written one way for most databases and another way for one of them.

SQLite's ``LIKE`` ignores ASCII case whatever the column's collation, so the case-sensitive
pattern operators are sent to SQLite as the equivalent ``GLOB``. PostgreSQL takes an ``IN``
list as one parameter per value (at most 32,767, and a new statement text for every list
length, which defeats asyncpg's prepared-statement cache), so ``$in`` is sent to PostgreSQL as
``column = ANY(:array)``: one parameter, one statement. Both forms are built up front, with
their values as bound parameters; the SQL compiler picks one.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

__all__ = ["OnDialect"]


class OnDialect(sa.ColumnElement[bool]):
    """``portable`` on every database, except ``special`` on the one named ``dialect``."""

    __visit_name__ = "kysera_on_dialect"
    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy's own convention for this attribute)
        ("portable", InternalTraversal.dp_clauseelement),
        ("dialect", InternalTraversal.dp_string),
        ("special", InternalTraversal.dp_clauseelement),
    ]
    type = sa.Boolean()

    def __init__(
        self, portable: sa.ColumnElement[bool], dialect: str, special: sa.ColumnElement[bool]
    ) -> None:
        self.portable = portable
        self.dialect = dialect
        self.special = special

    def self_group(self, against: Any = None) -> OnDialect:
        # Already a comparison: without this, SQLite would render it as ``(...) = 1`` inside
        # AND/OR, as it does for a plain boolean column.
        return self

    def _negate(self) -> OnDialect:
        return OnDialect(sa.not_(self.portable), self.dialect, sa.not_(self.special))


@compiles(OnDialect)
def _compile_on_dialect(element: OnDialect, compiler: SQLCompiler, **options: Any) -> str:
    chosen = element.special if compiler.dialect.name == element.dialect else element.portable
    return compiler.process(chosen, **options)
