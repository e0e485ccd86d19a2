"""Row values to JSON and back: reversible given the table's column types.

JSON has no datetimes, decimals, UUIDs, bytes or sets, so those are written as strings (ISO
8601, the decimal's digits, the UUID's canonical form, base64) or lists (a MySQL ``SET``'s
members, sorted), PostgreSQL ranges as ``{"lower", "upper", "bounds", "empty"}`` and network
addresses as their text, and read back through the type of the column they belong to; a
PostgreSQL array's items through its item type. Every other JSON-native value is written as is.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import ipaddress
import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import ARRAY, Column, Table
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.dialects.postgresql.ranges import AbstractSingleRange
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["RowCodec", "entity_id_of"]

_Decoder = Callable[[Any], Any]


def encode_value(value: Any) -> Any:
    """One value as JSON-safe data (see the module docstring for the encoding)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, Mapping):
        return {str(key): encode_value(item) for key, item in value.items()}
    if isinstance(value, postgresql.Range):
        return {
            "lower": encode_value(value.lower),
            "upper": encode_value(value.upper),
            "bounds": value.bounds,
            "empty": value.empty,
        }
    if isinstance(value, (set, frozenset)):
        # A MySQL SET's members: sorted, so that equal sets encode alike.
        return sorted(encode_value(item) for item in value)
    if isinstance(value, (list, tuple)):
        return [encode_value(item) for item in value]
    return str(value)


def _python_type(column: Column[Any]) -> type | None:
    return _python_type_of(column.type)


def _python_type_of(column_type: TypeEngine[Any]) -> type | None:
    try:
        found: type = column_type.python_type
    except NotImplementedError:
        return None
    return found


def _is_set(column_type: TypeEngine[Any]) -> bool:
    while isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    return isinstance(column_type, mysql.SET)


def _decoder(column: Column[Any]) -> _Decoder | None:
    return _decoder_of(column.type)


def _decoder_of(column_type: TypeEngine[Any]) -> _Decoder | None:
    if _is_set(column_type):
        return lambda value: set(value) if isinstance(value, list) else value
    if isinstance(column_type, ARRAY):
        item = _decoder_of(column_type.item_type)
        if item is None:
            return None
        return lambda value: _decode_items(value, item)
    if isinstance(column_type, AbstractSingleRange):
        bound = _RANGE_ITEMS.get(type(column_type))
        return lambda value: _decode_range(value, bound)
    if isinstance(column_type, (postgresql.INET, postgresql.CIDR)):
        # The driver's ipaddress objects, written as their text.
        network = isinstance(column_type, postgresql.CIDR)
        return lambda value: _decode_address(value, network=network)
    kind = _python_type_of(column_type)
    if kind is None or kind in (str, int, float, bool, dict, list):
        return None
    if kind is dt.datetime:
        return lambda value: dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if kind is dt.date:
        return lambda value: dt.date.fromisoformat(value) if isinstance(value, str) else value
    if kind is dt.time:
        return lambda value: dt.time.fromisoformat(value) if isinstance(value, str) else value
    if kind is decimal.Decimal:
        return lambda value: decimal.Decimal(str(value))
    if kind is uuid.UUID:
        return lambda value: uuid.UUID(str(value))
    if kind is bytes:
        return lambda value: base64.b64decode(value) if isinstance(value, str) else value
    if kind is dt.timedelta:
        return lambda value: (
            dt.timedelta(seconds=value) if isinstance(value, (int, float)) else value
        )
    if issubclass(kind, enum.Enum):
        enum_class: Any = kind
        return lambda value: enum_class[value] if isinstance(value, str) else value
    return None


_RANGE_ITEMS: dict[type[Any], _Decoder] = {
    postgresql.NUMRANGE: lambda value: decimal.Decimal(str(value)),
    postgresql.DATERANGE: dt.date.fromisoformat,
    postgresql.TSRANGE: dt.datetime.fromisoformat,
    postgresql.TSTZRANGE: dt.datetime.fromisoformat,
}


def _decode_range(value: Any, bound: _Decoder | None) -> Any:
    if not isinstance(value, Mapping):
        return value
    lower, upper = value.get("lower"), value.get("upper")
    if bound is not None:
        lower = None if lower is None else bound(lower)
        upper = None if upper is None else bound(upper)
    return postgresql.Range(
        lower, upper, bounds=value.get("bounds", "[)"), empty=bool(value.get("empty"))
    )


def _decode_address(value: Any, *, network: bool) -> Any:
    if not isinstance(value, str):
        return value
    if network:
        return ipaddress.ip_network(value)
    return ipaddress.ip_interface(value) if "/" in value else ipaddress.ip_address(value)


def _decode_items(value: Any, item: _Decoder) -> Any:
    """An array's items decoded, in however many dimensions it has."""
    if isinstance(value, list):
        return [_decode_items(element, item) for element in value]
    return None if value is None else item(value)


class RowCodec:
    """Encodes rows of one table to JSON-safe dicts and decodes them back.

    Args:
        table: The table whose column types drive decoding.
    """

    __slots__ = ("_columns", "_decoders", "_encoded")

    def __init__(self, table: Table) -> None:
        self._columns = frozenset(column.key for column in table.columns)
        # Columns whose values may need encoding (all but plain text, numbers, booleans).
        self._encoded = tuple(
            column.key
            for column in table.columns
            if _python_type(column) not in (str, int, float, bool) or _is_set(column.type)
        )
        self._decoders: dict[str, _Decoder] = {}
        for column in table.columns:
            decoder = _decoder(column)
            if decoder is not None:
                self._decoders[column.key] = decoder

    def columns_of(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The items of ``row`` that are columns of the table."""
        columns = self._columns
        if row.keys() <= columns:  # the usual case: a row of the table, as returned
            return dict(row)
        return {key: value for key, value in row.items() if key in columns}

    @staticmethod
    def encode(row: Mapping[str, Any]) -> dict[str, Any]:
        """Any mapping as a JSON-safe dict."""
        return {key: encode_value(value) for key, value in row.items()}

    def encode_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A row of the table (column keys only) as a JSON-safe dict; faster than `encode`,
        as only the values of columns that may need it are encoded."""
        encoded = dict(row)
        for key in self._encoded:
            value = encoded.get(key)
            if value is not None:
                encoded[key] = encode_value(value)
        return encoded

    def decode(self, data: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """A dict written by `encode`, with every value back in its column's Python type."""
        if data is None:
            return None
        decoders = self._decoders
        decoded: dict[str, Any] = {}
        for key, value in data.items():
            decoder = decoders.get(key)
            decoded[key] = value if decoder is None or value is None else decoder(value)
        return decoded


def entity_id_of(values: tuple[Any, ...]) -> str:
    """The ``entity_id`` text of a primary key: the value itself for a one-column key, a
    JSON-style list for a composite one."""
    if len(values) == 1:
        return _key_text(values[0])
    return json.dumps([encode_value(value) for value in values], separators=(",", ":"))


def _key_text(value: Any) -> str:
    encoded = encode_value(value)
    return encoded if isinstance(encoded, str) else str(encoded)
