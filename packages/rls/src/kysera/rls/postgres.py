"""`postgres_policies`: the DDL that lets PostgreSQL enforce the tenant policies itself."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import MetaData
from sqlalchemy.dialects import postgresql

from kysera.core import BadRequestError
from kysera.rls._rules import TableRules
from kysera.rls.plugin import RLSPlugin
from kysera.rls.policy import Policy

__all__ = ["POLICY_NAME", "postgres_policies"]

POLICY_NAME = "kysera_tenant"


def postgres_policies(
    metadata: MetaData, policies: RLSPlugin | Mapping[str, Sequence[Policy]]
) -> list[str]:
    """The statements that make PostgreSQL enforce every ``policy.tenant`` of ``policies``.

    Per table: ``ENABLE`` and ``FORCE ROW LEVEL SECURITY`` (the owner is bound too), and a
    policy ``kysera_tenant`` (dropped first, so running them again updates it) whose
    ``USING`` and ``WITH CHECK`` compare the tenant column with the transaction's
    ``kysera.tenant_id`` setting, read once per statement (a scalar subquery the planner
    evaluates once), or let everything through in `system_context`. Outside a context the
    setting is empty: the comparison is NULL and no row is visible or writable.

    ``policy.filter``/``allow``/``check`` are Python predicates and stay application-level.
    Run the statements in a migration, as the tables' owner.

    Raises:
        BadRequestError: A table with a tenant policy is not in ``metadata``.
    """
    rules = (
        policies.rules
        if isinstance(policies, RLSPlugin)
        else {name: TableRules.of(name, list(items)) for name, items in policies.items()}
    )
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    quote = dialect.identifier_preparer
    statements: list[str] = []
    for name in sorted(rules):
        column_name = rules[name].tenant_column
        if column_name is None:
            continue
        table = metadata.tables.get(name)
        if table is None or column_name not in table.c:
            raise BadRequestError(f"no table {name!r} with a column {column_name!r} in metadata")
        column = table.c[column_name]
        cast = column.type.compile(dialect=dialect)
        tenant = f"(SELECT NULLIF(current_setting('kysera.tenant_id', true), '')::{cast})"
        system = "(SELECT current_setting('kysera.system', true)) = 'on'"
        allowed = f"{quote.quote(column.name)} = {tenant} OR {system}"
        target = quote.format_table(table)
        statements += [
            f"ALTER TABLE {target} ENABLE ROW LEVEL SECURITY",
            f"ALTER TABLE {target} FORCE ROW LEVEL SECURITY",
            f"DROP POLICY IF EXISTS {POLICY_NAME} ON {target}",
            f"CREATE POLICY {POLICY_NAME} ON {target} USING ({allowed}) WITH CHECK ({allowed})",
        ]
    return statements
