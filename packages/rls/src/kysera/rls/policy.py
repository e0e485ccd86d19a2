"""The policy vocabulary: what a table's rows require of the caller.

A protected table has a list of policies; every one applies:

- `policy.tenant(column)`: rows belong to the tenant in ``column``. Reads, updates and
  deletes see only the context's tenant; inserts get it filled in (another tenant in the data
  is refused); an update cannot move a row to another tenant.
- `policy.filter(predicate)`: reads, updates and deletes see only rows where
  ``predicate(ctx, row)`` holds, a SQL condition over the row's columns
  (``lambda ctx, row: row["owner_id"] == ctx.user_id``).
- `policy.allow(operation, predicate)`: ``operation`` (``"select"``, ``"update"`` or
  ``"delete"``) may touch only rows where one of its ``allow`` predicates holds; other
  operations are not restricted by it.
- `policy.check(predicate, operations=("insert", "update"))`: written values must satisfy
  ``predicate(ctx, values)`` (Python, on the values being written), else `RLSPolicyError`.
- `policy.public()`: no restriction, for shared tables while the plugin's default denies.

Predicates receive the `RLSContext` and the table's columns (``row["owner_id"]`` is the
column, so ``row["owner_id"] == ctx.user_id`` builds SQL). A predicate may return a Python
``bool`` (``"admin" in ctx.roles``) to allow or deny every row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from sqlalchemy import ColumnElement, false, true
from sqlalchemy.sql.expression import ColumnClause

from kysera.rls.context import RLSContext

__all__ = [
    "AllowPolicy",
    "CheckPolicy",
    "FilterPolicy",
    "Policy",
    "PublicPolicy",
    "RowPredicate",
    "TenantPolicy",
    "ValuesPredicate",
    "policy",
]

RowPredicate: TypeAlias = Callable[[RLSContext, Any], "ColumnElement[bool] | bool"]
"""``(ctx, row) -> condition``: ``row["column"]`` is the table's column."""
ValuesPredicate: TypeAlias = Callable[[RLSContext, Mapping[str, Any]], bool]
"""``(ctx, values) -> bool`` on the values an insert or update writes."""
RestrictedOperation = Literal["select", "update", "delete"]
WriteOperation = Literal["insert", "update"]


@dataclass(frozen=True)
class TenantPolicy:
    """Rows belong to the tenant in ``column``."""

    column: str


@dataclass(frozen=True)
class FilterPolicy:
    """Reads, updates and deletes see only rows where ``predicate`` holds."""

    predicate: RowPredicate


@dataclass(frozen=True)
class AllowPolicy:
    """``operation`` touches only rows where ``predicate`` (or another allow) holds."""

    operation: RestrictedOperation
    predicate: RowPredicate


@dataclass(frozen=True)
class CheckPolicy:
    """Values written by ``operations`` must satisfy ``predicate``."""

    predicate: ValuesPredicate
    operations: frozenset[WriteOperation]


@dataclass(frozen=True)
class PublicPolicy:
    """No restriction."""


Policy: TypeAlias = TenantPolicy | FilterPolicy | AllowPolicy | CheckPolicy | PublicPolicy


def condition(predicate: RowPredicate, context: RLSContext, columns: Any) -> ColumnElement[bool]:
    """``predicate`` evaluated for ``context`` as a SQL condition (a bool becomes TRUE/FALSE).

    Raises:
        TypeError: The predicate returned something else than a SQL condition or a bool.
    """
    result = predicate(context, columns)
    if isinstance(result, bool):
        return true() if result else false()
    if not isinstance(result, ColumnElement) or isinstance(result, ColumnClause):
        raise TypeError(
            f"a row predicate must return a SQL condition or a bool, not {type(result).__name__}"
        )
    return result


class _PolicyFactory:
    """``policy.tenant(...)``, ``policy.filter(...)``, ...: see the module documentation."""

    @staticmethod
    def tenant(column: str = "tenant_id") -> TenantPolicy:
        """Rows belong to the tenant in ``column``."""
        return TenantPolicy(column)

    @staticmethod
    def filter(predicate: RowPredicate) -> FilterPolicy:
        """Reads, updates and deletes see only rows where ``predicate(ctx, row)`` holds."""
        return FilterPolicy(predicate)

    @staticmethod
    def allow(operation: RestrictedOperation, predicate: RowPredicate) -> AllowPolicy:
        """``operation`` may touch only rows where this (or another allow) predicate holds.

        Raises:
            ValueError: ``operation`` is not ``"select"``, ``"update"`` or ``"delete"``
                (restrict inserts with `check`).
        """
        if operation not in ("select", "update", "delete"):
            raise ValueError(
                f"allow() takes 'select', 'update' or 'delete', not {operation!r}; "
                "use check() for the values an insert writes"
            )
        return AllowPolicy(operation, predicate)

    @staticmethod
    def check(
        predicate: ValuesPredicate, operations: Iterable[WriteOperation] = ("insert", "update")
    ) -> CheckPolicy:
        """Values written by ``operations`` must satisfy ``predicate(ctx, values)``.

        Raises:
            ValueError: An operation is not ``"insert"`` or ``"update"``.
        """
        chosen = frozenset(operations)
        if not chosen or not chosen <= {"insert", "update"}:
            raise ValueError(f"check() takes 'insert' and/or 'update', not {sorted(chosen)}")
        return CheckPolicy(predicate, chosen)

    @staticmethod
    def public() -> PublicPolicy:
        """No restriction: a shared table, readable and writable in any context."""
        return PublicPolicy()


policy = _PolicyFactory()
"""Builds policies: ``policy.tenant("tenant_id")``, ``policy.allow("update", ...)``."""
