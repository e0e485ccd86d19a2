"""`RLSPlugin`: row-level security for every statement the ORM runs, failing closed."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import FromClause
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import visitors

from kysera.core import BadRequestError
from kysera.repository import QueryContext, hookimpl, restrict_select
from kysera.rls._native import install_transaction_settings
from kysera.rls._rules import TableRules
from kysera.rls._scoping import tables_in
from kysera.rls.context import RLSContext, current_context
from kysera.rls.errors import RLSContextError, RLSPolicyError, RLSScopeError
from kysera.rls.mixin import RLSMixin
from kysera.rls.policy import Policy

__all__ = ["RLSPlugin"]

# Scoped forms kept per repository statement (one per operation and context).
_CONTEXTS_PER_STATEMENT = 1024
# Conditions kept (per table, operation and context) before starting over.
_CONDITIONS = 4096


class RLSPlugin:
    """Row-level security: each caller reads and writes only the rows its policies allow.

    Every statement on a protected table, built by a repository (every read and write path,
    relation includes, pagination, counts, bulk writes, counters, soft delete) or passed to
    ``orm.execute`` (wherever a SELECT reads the table: joins, outer joins' ON clauses,
    subqueries, CTEs, aliases, each part of a UNION), or reading it in a subquery (of a
    repository's `where` expression, anywhere in a hand-written UPDATE or DELETE), needs an
    `rls_context` (else `RLSContextError`) and is confined to the rows the table's policies
    allow; `system_context` lifts the policies.

    Args:
        policies: Table name to its policies (``policy.tenant(...)``, ...).
        default: ``"deny"``: a statement on a table without policies is refused
            (`RLSPolicyError`) unless in `system_context`; list shared tables with
            ``policy.public()``. ``"allow"``: such tables are not restricted.
        native_postgres: Also let PostgreSQL enforce it: every transaction on the ORM's engine
            starts with ``set_config('kysera.tenant_id', ..., true)`` (and user id, roles,
            system flag), for the policies `postgres_policies` writes.

    Raises:
        TypeError, ValueError: Malformed policies or options.
    """

    name = "rls"
    # Outermost: every other plugin sees (and can only narrow) the scoped statement.
    priority = 1000

    def __init__(
        self,
        policies: Mapping[str, Sequence[Policy]],
        *,
        default: Literal["deny", "allow"] = "deny",
        native_postgres: bool = False,
    ) -> None:
        if default not in ("deny", "allow"):
            raise ValueError(f"default must be 'deny' or 'allow', not {default!r}")
        if not isinstance(policies, Mapping):
            raise TypeError("policies must map table names to lists of policies")
        self.rules = {name: TableRules.of(name, list(items)) for name, items in policies.items()}
        self.default = default
        self.native_postgres = native_postgres
        self._mixins: dict[str, type] = {}
        self._conditions: dict[tuple[sa.Table, str, RLSContext], Any] = {}
        self._scoped_statements: weakref.WeakKeyDictionary[Any, dict[Any, Any]] = (
            weakref.WeakKeyDictionary()
        )
        # Statements seen to nest no SELECT where `_scope_nested_reads` looks.
        self._without_nested_reads: weakref.WeakSet[Any] = weakref.WeakSet()

    # --- hooks ------------------------------------------------------------------------------

    @hookimpl
    def kysera_configure(self, orm: Any) -> None:
        if not self.native_postgres:
            return
        executor = orm.executor
        engine = executor if isinstance(executor, AsyncEngine) else executor.engine
        if engine.dialect.name != "postgresql":
            raise BadRequestError(
                f"native_postgres=True needs PostgreSQL, not {engine.dialect.name}"
            )
        install_transaction_settings(engine)
        if isinstance(executor, AsyncConnection) and executor.in_transaction():
            raise BadRequestError(
                "native_postgres=True: create the ORM before its connection begins a "
                "transaction (the settings are sent as each transaction's first statement)"
            )

    @hookimpl
    def kysera_repository_mixin(self, table: sa.Table, orm: Any) -> type | None:
        rules = self.rules.get(table.name)
        if rules is None:
            return None  # under "deny", refused per statement (system_context may use it)
        rules.check_table(table)
        if not rules.restricts:
            return None
        mixin = self._mixins.get(table.name)
        if mixin is None:
            mixin = type("RLSMixin", (RLSMixin,), {"rls_rules": rules})
            self._mixins[table.name] = mixin
        return mixin

    @hookimpl
    def kysera_intercept_query(self, context: QueryContext) -> Any:
        rls = current_context()
        if rls is not None and rls.system:
            return None
        statement: Any = context.statement
        operation = context.operation
        if context.table is not None:
            # A repository's statement on its table, or an UPDATE/DELETE/INSERT passed to
            # orm.execute: one table, restricted by a WHERE; the SELECTs nested in it (a
            # `where` expression's subqueries, a hand-written statement's anywhere) each
            # confined like a hand-written SELECT.
            rules = self._rules_of(context.table, rls)
            if rules is None:
                return self._scope_nested_reads(statement, rls, context.hand_written)
            rls = rules.require(rls)
            if operation == "insert":
                if not context.hand_written:
                    return None  # a repository's: its rows went through RLSMixin.prepare_insert
                raise RLSScopeError(
                    f"an INSERT into {context.table.name!r} passed to orm.execute is not "
                    "checked by row-level security: create the rows through the repository "
                    "(which fills and checks the tenant), or run it in system_context()",
                    tables=[context.table.name],
                )
            return self._scoped(statement, rules, rls, context, operation)
        if isinstance(statement, sa.Select):
            return self._scope_select(statement, operation, rls)
        return None

    # --- helpers ----------------------------------------------------------------------------

    def _condition(
        self, rules: TableRules, rls: RLSContext, table: sa.Table, operation: str
    ) -> Any:
        """The rules' condition for ``table``, built once per operation and context (a
        condition is immutable: statements built per call, such as ``find``'s, share it)."""
        key = (table, operation, rls)
        try:
            return self._conditions[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable tenant or user id
            return rules.where(rls, table, operation)
        if len(self._conditions) >= _CONDITIONS:
            self._conditions.clear()
        condition = self._conditions[key] = rules.where(rls, table, operation)
        return condition

    def _scoped(
        self,
        statement: Any,
        rules: TableRules,
        rls: RLSContext,
        context: QueryContext,
        operation: str,
    ) -> Any:
        """``statement`` with the rules' condition (and its nested SELECTs confined), the same
        object for the same statement and context: repositories reuse their statements, and a
        statement seen before runs straight on the driver's prepared statement (asyncpg)
        instead of being built anew."""
        table = context.table
        assert table is not None
        try:
            by_context = self._scoped_statements.get(statement)
        except TypeError:  # not weakly referenceable
            by_context = None
        key = (operation, rls)
        try:
            found = None if by_context is None else by_context.get(key)
        except TypeError:  # an unhashable tenant or user id: build it every time
            by_context, found = None, None
        if found is not None:
            return found
        condition = self._condition(rules, rls, table, operation)
        scoped = statement if condition is None else statement.where(condition)
        scoped = self._scope_nested_reads(scoped, rls, context.hand_written)
        if by_context is None:
            try:
                hash(key)
                by_context = self._scoped_statements.setdefault(statement, {})
            except TypeError:
                return scoped
        if len(by_context) >= _CONTEXTS_PER_STATEMENT:
            by_context.clear()  # many tenants: start over rather than grow without bound
        by_context[key] = scoped
        return scoped

    def _rules_of(self, table: sa.Table, rls: RLSContext | None) -> TableRules | None:
        """The table's rules if it is restricted; refuses an unlisted table under "deny"."""
        rules = self.rules.get(table.name)
        if rules is None:
            if self.default == "deny":
                raise RLSPolicyError(
                    f"table {table.name!r} has no row-level security policies and the "
                    "default denies: list it (policy.public() for a shared table) or use "
                    "system_context()",
                    table=table.name,
                )
            return None
        return rules if rules.restricts else None

    def _scope_nested_reads(
        self, statement: Any, rls: RLSContext | None, hand_written: bool
    ) -> Any:
        """``statement`` with each SELECT nested in it confined as `_scope_select` confines
        a hand-written one: in a repository's statement, those of its ``WHERE`` (a `where`
        expression's ``IN``/``EXISTS``/scalar subqueries; the repository builds the rest);
        in a hand-written UPDATE or DELETE, anywhere (its ``WHERE``, its ``SET`` values).
        Without this, such a subquery reads every tenant's rows: it never returns them, but
        decides which rows match or, in ``SET``, writes what it read."""
        if statement in self._without_nested_reads:
            return statement
        # (A repository's INSERT has no WHERE; a hand-written INSERT ... SELECT is searched.)
        searched = statement if hand_written else getattr(statement, "whereclause", None)
        if searched is None or not any(
            isinstance(element, sa.Select) and element is not statement
            for element in visitors.iterate(searched)
        ):
            with contextlib.suppress(TypeError):  # not weakly referenceable
                self._without_nested_reads.add(statement)
            return statement

        def confined(element: Any, **_: Any) -> Any:
            if element is statement or not isinstance(element, sa.Select):
                return None  # keep walking
            scoped = self._scope_select(element, "select", rls)
            return element if scoped is None else scoped

        return visitors.replacement_traverse(statement, {}, confined)

    def _scope_select(
        self, statement: sa.Select[Any], operation: str, rls: RLSContext | None
    ) -> sa.Select[Any] | None:
        """A hand-written SELECT with each protected table's condition wherever it is read
        (FROM, joins, outer joins' ON clauses, subqueries, CTEs, aliases)."""
        restricted: dict[sa.Table, TableRules] = {}
        for table in tables_in(statement):
            rules = self._rules_of(table, rls)
            if rules is not None:
                restricted[table] = rules
        if not restricted:
            return None
        if rls is None:
            raise RLSContextError(tables=sorted(table.name for table in restricted))
        context = rls

        def condition_of(table: sa.Table, source: FromClause) -> Any:
            rules = restricted.get(table)
            if rules is None:
                return None
            if source is table:
                return self._condition(rules, context, table, operation)
            return rules.where(context, source, operation)  # an alias: its own columns

        return restrict_select(statement, condition_of)
