"""Every private SQLAlchemy attribute kysera-repository writes, in one place.

- `replace_froms`: give a copy of a SELECT an explicit FROM list (rebuilt joins), dropping
  the joins ``.join()`` recorded. Core has no public way to change an ON clause of an
  existing statement; ``_generate``, ``_setup_joins`` and ``_from_obj`` are what
  ``Select.join`` and ``Select.select_from`` themselves set.

tests/test_sqlalchemy_internals.py exercises it on SQLAlchemy 2.1 and, in CI's low leg, on
the oldest 2.0 the packages allow: a rename fails it loudly, never silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import FromClause, Select

__all__ = ["replace_froms"]


def replace_froms(statement: Select[Any], sources: Sequence[FromClause]) -> Select[Any]:
    """A copy of ``statement`` reading exactly ``sources`` (its joins rebuilt by the caller)."""
    copied = statement._generate()
    copied._setup_joins = ()
    copied._from_obj = tuple(sources)
    return copied
