"""PostgreSQL statements that record changes in as few round trips as possible.

- `record_statement`: the counter bump (which takes the commit-order lock, see
  `kysera.changes._ids`), every change row and the ``pg_notify`` wake-up as one statement.
  The rows' keys and operations go in as two array parameters unpacked by ``unnest ... WITH
  ORDINALITY`` (the ordinality numbers the ids), so a bulk write's change rows cost one
  statement and two parameters whatever their number::

      WITH kysera_change_ids AS (INSERT INTO counter ... ON CONFLICT DO UPDATE ... RETURNING
      last_id), kysera_recorded AS (INSERT INTO changes SELECT ... FROM kysera_change_ids,
      unnest(:keys, :operations) WITH ORDINALITY ... RETURNING id)
      SELECT pg_notify(:channel, max(id)) FROM kysera_recorded

- `SingleStatementCreate`: a recorded ``create`` as one statement, atomic on its own (no
  transaction, one round trip): the ``INSERT ... RETURNING`` becomes a CTE, the change row
  is inserted from it, and the notification is a CTE joined to the result so that it runs.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Insert,
    Integer,
    Select,
    String,
    Table,
    Text,
    bindparam,
    case,
    cast,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY

__all__ = [
    "CHANGED_AT",
    "CHANGE_COLUMNS",
    "CHANGE_COUNT",
    "CHANGE_KEYS",
    "CHANGE_OPERATIONS",
    "CHANNEL",
    "TABLE_NAME",
    "SingleStatementCreate",
    "record_statement",
]

CHANGE_COUNT = "kysera_change_count"
CHANGE_KEYS = "kysera_change_keys"
CHANGE_OPERATIONS = "kysera_change_operations"
CHANGE_COLUMNS = "kysera_change_columns"
CHANGED_AT = "kysera_change_changed_at"
TABLE_NAME = "kysera_change_table"
CHANNEL = "kysera_change_channel"

_COUNTER_ROW = 1
_MAX_CACHED = 64
_JSON = JSON(none_as_null=True)
_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


def _bump(counter: Table, count: Any) -> Any:
    """The counter bump as a CTE returning the last id it gave out.

    Its values are anonymous parameters: an insert's own values are named after its columns,
    and the counter's ``id`` would take the place of the recorded row's ``id`` (SQLAlchemy
    fills a Python-side default of that row into the parameter named ``id``).
    """
    return (
        postgresql.insert(counter)
        .values(id=literal(_COUNTER_ROW, Integer()), last_id=count)
        .on_conflict_do_update(
            index_elements=[counter.c.id], set_={"last_id": counter.c.last_id + count}
        )
        .returning(counter.c.last_id)
        .cte("kysera_change_ids")
    )


def _changed_at(changes: Table) -> Any:
    return bindparam(CHANGED_AT, type_=changes.c.changed_at.type)


def record_statement(changes: Table, counter: Table) -> Select[Any]:
    """Take ids and insert change rows and notify listeners, as one statement.

    Parameters: `CHANGE_COUNT` (the number of rows), `CHANGE_KEYS` and `CHANGE_OPERATIONS`
    (text arrays, one item per change, in id order), `CHANGE_COLUMNS` (the JSON list stored
    for every change but a ``DELETE``), `CHANGED_AT`, `TABLE_NAME` and `CHANNEL`.
    """
    count = bindparam(CHANGE_COUNT, type_=BigInteger())
    ids = _bump(counter, count)
    rows = (
        func.unnest(
            bindparam(CHANGE_KEYS, type_=ARRAY(Text)),
            bindparam(CHANGE_OPERATIONS, type_=ARRAY(Text)),
        )
        .table_valued("entity_key", "operation", with_ordinality="ordinality")
        .render_derived(name="kysera_change_rows")
    )
    operation = rows.c.operation
    recorded = (
        changes.insert()
        .from_select(
            ["id", "table_name", "entity_key", "operation", "changed_columns", "changed_at"],
            select(
                ids.c.last_id - count + rows.c.ordinality,
                bindparam(TABLE_NAME, type_=String()),
                rows.c.entity_key,
                operation,
                case(
                    (operation == "DELETE", cast(literal("[]"), _JSON)),
                    else_=bindparam(CHANGE_COLUMNS, type_=_JSON),
                ),
                _changed_at(changes),
            ).select_from(ids.join(rows, true())),
        )
        .returning(changes.c.id)
        .cte("kysera_recorded")
    )
    return select(
        func.pg_notify(bindparam(CHANNEL, type_=String()), cast(func.max(recorded.c.id), Text))
    )


def _key_as_json(col: ColumnElement[Any]) -> Any:
    """SQL writing the one-column key ``col`` as `kysera.changes.mixin.encode_key` does
    (``[42]``, ``["<uuid>"]``), or ``None`` for other key types."""
    try:
        kind = col.type.python_type
    except NotImplementedError:
        return None
    text = cast(col, Text)
    if issubclass(kind, int) and not issubclass(kind, bool):
        return "[" + text + "]"
    if issubclass(kind, uuid.UUID):
        return '["' + text + '"]'
    return None


class SingleStatementCreate:
    """Builds the recording ``INSERT ... RETURNING`` of one table, where its key allows.

    Attributes:
        possible: Whether the key is one integer or UUID column, whose JSON form the
            database writes exactly as `encode_key` does.
    """

    __slots__ = ("_changes", "_channel", "_counter", "_statements", "_table", "possible")

    def __init__(self, table: Table, changes: Table, counter: Table, channel: str) -> None:
        self._table = table
        self._changes = changes
        self._counter = counter
        self._channel = channel
        self._statements: dict[tuple[Insert, tuple[str, ...]], Select[Any] | None] = {}
        key = list(table.primary_key.columns)
        self.possible = len(key) == 1 and _key_as_json(key[0]) is not None

    def wrap(self, statement: Insert, columns: tuple[str, ...]) -> Select[Any] | None:
        """``statement`` (an ``INSERT ... RETURNING`` without values) recording its row.

        Built once per insert statement and set of columns. The execution adds
        `CHANGED_AT` to the row's parameters. ``None`` where the one statement would lose a
        Python-side default (see `_prefetched`).

        Args:
            statement: The insert.
            columns: The keys of the row's values, which are also the changed columns
                recorded (inside a CTE, SQLAlchemy does not name an insert's bind
                parameters after the execution's keys, so they are named here).
        """
        cache_key = (statement, columns)
        try:
            return self._statements[cache_key]
        except KeyError:
            pass
        if len(self._statements) >= _MAX_CACHED:  # plugins building new statements
            self._statements.clear()
        found = self._statements[cache_key] = self._build(statement, columns)
        return found

    def _build(self, statement: Insert, columns: tuple[str, ...]) -> Select[Any] | None:
        table = self._table
        statement = statement.values(
            {name: bindparam(name, type_=table.c[name].type) for name in columns}
        )
        new_row = statement.cte("kysera_new_row")
        key = next(iter(table.primary_key.columns)).key
        ids = _bump(self._counter, literal(1, BigInteger()))
        recorded = (
            self._changes.insert()
            .from_select(
                ["id", "table_name", "entity_key", "operation", "changed_columns", "changed_at"],
                select(
                    ids.c.last_id,
                    literal(table.name, String()),
                    _key_as_json(new_row.c[key]),
                    literal("INSERT", String()),
                    literal(sorted(columns), _JSON),
                    _changed_at(self._changes),
                ).select_from(ids.join(new_row, true())),
            )
            .returning(self._changes.c.id)
            .cte("kysera_recorded")
        )
        notified = select(
            func.pg_notify(literal(self._channel, String()), cast(recorded.c.id, Text))
        ).cte("kysera_notified")
        # Joined so that it runs (a SELECT in a WITH runs only as far as it is read).
        wrapped = select(*new_row.c).select_from(notified.join(new_row, true()))
        if _prefetched(wrapped) != _prefetched(statement):
            return None
        return wrapped


def _prefetched(statement: Any) -> set[str]:
    """The columns whose Python-side defaults SQLAlchemy computes for ``statement``.

    SQLAlchemy fills the Python-side defaults (``default=uuid.uuid4``) of the insert that
    it compiles last among a statement's inserts with values; the recorded row's insert is
    placed last (the counter's ``bump`` first), and this check refuses any form in which a
    default would be lost (a SQLAlchemy release compiling in another order), rather than
    insert NULL.
    """
    compiled = statement.compile(dialect=_DIALECT)
    return {col.key for col in compiled.insert_prefetch}
