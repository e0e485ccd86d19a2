"""PostgreSQL statements that log in the same statement (or in one statement for many rows).

- An audited ``create`` becomes one statement: ``WITH new_row AS (INSERT ... RETURNING *),
  logged AS (INSERT INTO audit_logs SELECT ... FROM new_row) SELECT * FROM new_row``. It is
  atomic on its own, so it needs no transaction and no second round trip. The row is turned
  into JSON by the database, column by column, in the encoding of `kysera.audit._encoding`.
- Many log rows go in as one JSON parameter unpacked by ``json_to_recordset``: one
  statement and one serialisation instead of an executemany with three JSON parameters per
  row.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Insert,
    Select,
    String,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    column,
    func,
    insert,
    literal,
    literal_column,
    null,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

__all__ = [
    "CHANGED_AT",
    "CHANGED_BY",
    "KEYS_PARAMETER",
    "METADATA",
    "RECORDSET_PARAMETER",
    "SingleStatementCreate",
    "recordset_insert",
    "rows_by_keys",
]

RECORDSET_PARAMETER = "kysera_audit_rows"
KEYS_PARAMETER = "kysera_audit_keys"
CHANGED_BY = "kysera_audit_changed_by"
CHANGED_AT = "kysera_audit_changed_at"
METADATA = "kysera_audit_metadata"
_MAX_CACHED = 64

_JSONB = JSONB(none_as_null=True)
# The rows' envelope is parsed as plain json (cheaper than building a jsonb document that is
# taken apart at once); each value column is still stored as jsonb.
_JSON_TEXT = JSON(none_as_null=True)
_AS_IS = (str, int, float, bool, dict, list, dt.datetime, dt.date, dt.time, uuid.UUID)
_KEY_TYPES = (str, int, uuid.UUID)
_MAX_COLUMNS = 50  # jsonb_build_object takes at most 100 arguments
_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


def _python_type(col: Column[Any]) -> type | None:
    try:
        found: type = col.type.python_type
    except NotImplementedError:
        return None
    return found


def _json_value(col: Any, kind: type | None) -> Any:
    """The column as the JSON value `_encoding.encode_value` would write, or ``None``."""
    if kind is decimal.Decimal:
        return cast(col, Text)  # as text: a JSON number would be read back as a float
    if kind is bytes:
        return func.translate(func.encode(col, "base64"), "\n", "")
    if kind is dt.timedelta:
        return func.extract("epoch", col)
    if kind is not None and issubclass(kind, _AS_IS):
        return col
    return None


class SingleStatementCreate:
    """Builds the logging ``INSERT ... RETURNING`` of one table, if its columns allow it.

    Attributes:
        possible: Whether every column can be turned into JSON by the database in the
            audit encoding and the primary key is one text, integer or UUID column.
    """

    __slots__ = ("_audit", "_columns", "_kinds", "_statements", "_table", "possible")

    def __init__(self, table: Table, audit_table: Table) -> None:
        self._table = table
        self._audit = audit_table
        self._kinds = {col.key: _python_type(col) for col in table.columns}
        self._columns = [col.key for col in table.columns]
        self._statements: dict[tuple[Insert, tuple[str, ...], bool], Select[Any] | None] = {}
        key = list(table.primary_key.columns)
        self.possible = (
            len(key) == 1
            and len(self._columns) <= _MAX_COLUMNS
            and (_python_type(key[0]) or object) in _KEY_TYPES
            and all(_json_value(col, self._kinds[col.key]) is not None for col in table.columns)
        )

    def wrap(
        self, statement: Insert, columns: tuple[str, ...], capture_new_values: bool
    ) -> Select[Any] | None:
        """``statement`` (an ``INSERT ... RETURNING`` of every column) logging its row.

        The statement is built once per insert statement and set of columns; the log row's
        actor, time and metadata are bind parameters (`CHANGED_BY`, `CHANGED_AT`,
        `METADATA`) that the caller adds to the row's parameters.

        Args:
            statement: The insert, without values (they come with the execution).
            columns: The keys of the row's values: inside a CTE, SQLAlchemy does not name
                an insert's bind parameters after the execution's keys, so they are named
                here.
            capture_new_values: Whether to store the new row.

        Returns:
            The statement, or ``None`` where it would lose a Python-side default of the row
            (SQLAlchemy computes those only for the insert it compiles last among a
            statement's inserts with values; a release compiling in another order would
            send NULL): the caller then logs the row the general way.
        """
        cache_key = (statement, columns, capture_new_values)
        try:
            return self._statements[cache_key]
        except KeyError:
            pass
        if len(self._statements) >= _MAX_CACHED:  # plugins building new statements
            self._statements.clear()
        found = self._statements[cache_key] = self._build(statement, columns, capture_new_values)
        return found

    def _build(
        self, statement: Insert, columns: tuple[str, ...], capture_new_values: bool
    ) -> Select[Any] | None:
        table = self._table
        statement = statement.values(
            {name: bindparam(name, type_=table.c[name].type) for name in columns}
        )
        new_row = statement.cte("kysera_new_row")
        key = next(iter(table.primary_key.columns)).key
        new_values: Any = null()
        if capture_new_values:
            arguments: list[Any] = []
            for name in self._columns:
                arguments += [
                    literal_column("'" + name.replace("'", "''") + "'"),
                    _json_value(new_row.c[name], self._kinds[name]),
                ]
            new_values = func.jsonb_build_object(*arguments)
        audit = self._audit
        logged = insert(audit).from_select(
            [
                "table_name",
                "entity_id",
                "operation",
                "new_values",
                "changed_fields",
                "changed_by",
                "changed_at",
                "metadata",
            ],
            select(
                literal(table.name, String),
                cast(new_row.c[key], Text),
                literal("INSERT", String),
                new_values,
                literal(self._columns, _JSONB),
                bindparam(CHANGED_BY, type_=String()),
                bindparam(CHANGED_AT, type_=audit.c.changed_at.type),
                bindparam(METADATA, type_=_JSONB),
            ).select_from(new_row),
        )
        wrapped = select(*new_row.c).add_cte(logged.cte("kysera_logged"))
        if _prefetched(wrapped) != _prefetched(statement):
            return None
        return wrapped


def _prefetched(statement: Any) -> set[str]:
    """The columns whose Python-side defaults SQLAlchemy computes for ``statement``."""
    return {col.key for col in statement.compile(dialect=_DIALECT).insert_prefetch}


def recordset_insert(audit_table: Table) -> Insert:
    """``INSERT INTO audit_logs SELECT ... FROM json_to_recordset(:kysera_audit_rows)``.

    The rows carry what differs between them; the table name, actor, time and metadata
    are parameters of their own (``kysera_audit_<column>``).
    """
    rows = (
        func.json_to_recordset(bindparam(RECORDSET_PARAMETER, type_=_JSON_TEXT))
        .table_valued(
            column("entity_id", Text),
            column("operation", Text),
            column("old_values", _JSONB),
            column("new_values", _JSONB),
            column("changed_fields", _JSONB),
        )
        .render_derived(name="kysera_log_rows", with_types=True)
    )
    columns: dict[str, Any] = dict(rows.c.items())
    for name in ("table_name", "changed_by", "changed_at", "metadata"):
        columns[name] = bindparam(f"kysera_audit_{name}", type_=audit_table.c[name].type)
    names = [
        "table_name",
        "entity_id",
        "operation",
        "old_values",
        "new_values",
        "changed_fields",
        "changed_by",
        "changed_at",
        "metadata",
    ]
    return insert(audit_table).from_select(names, select(*(columns[name] for name in names)))


def rows_by_keys(table: Table) -> Select[Any]:
    """``SELECT * FROM table WHERE key = ANY(:kysera_audit_keys) FOR UPDATE`` (one-column
    primary keys)."""
    key = next(iter(table.primary_key.columns))
    keys = bindparam(KEYS_PARAMETER, type_=ARRAY(key.type))
    return select(table).where(key == any_(keys)).with_for_update()
