"""Binary values sent to MySQL/MariaDB as hexadecimal text, decoded by ``UNHEX()``.

aiomysql 0.3 cannot send a ``bytes`` parameter at all (with PyMySQL 1.1 or later its
escaping calls a helper PyMySQL replaced with a string). Comparisons Kysera builds (where-dict
values, primary keys, keyset cursors) therefore bind binary values on MySQL/MariaDB as
``UNHEX(:hex)``, on every driver, so that the same statement works on asyncmy and aiomysql.
``UNHEX`` of a parameter is a constant, so an index on the column still gives a range.
Writing a ``bytes`` value (an INSERT or UPDATE carrying one) still needs asyncmy.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import LargeBinary, String, func
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine, _Binary

__all__ = ["UnhexedBytes", "is_plain_binary"]


def is_plain_binary(column_type: TypeEngine[Any]) -> bool:
    """Whether values of ``column_type`` are bytes as they are (``LargeBinary``, ``BINARY``,
    ``VARBINARY``, ``BLOB``), not a `TypeDecorator` converting its own values."""
    return isinstance(column_type, _Binary) and not isinstance(column_type, TypeDecorator)


class UnhexedBytes(TypeDecorator[bytes]):
    """Bytes bound as hexadecimal text that the statement decodes with ``UNHEX()``."""

    impl = String
    cache_ok = True

    def bind_expression(self, bindvalue: Any) -> Any:
        return func.unhex(bindvalue, type_=LargeBinary)

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else bytes(value).hex()
