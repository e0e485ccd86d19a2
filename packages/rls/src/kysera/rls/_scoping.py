"""The tables a statement reads, anywhere in it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import visitors

__all__ = ["tables_in"]


def tables_in(statement: Any) -> set[sa.Table]:
    """Every table ``statement`` mentions: FROM lists, joins, subqueries, CTEs, aliases."""
    return {found for found in visitors.iterate(statement) if isinstance(found, sa.Table)}
