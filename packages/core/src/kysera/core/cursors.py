"""Keyset cursors: opaque, URL-safe strings that carry the ordering key of one row.

A cursor is ``base64url(JSON payload)``, optionally followed by ``.`` and a base64url
HMAC-SHA256 tag (truncated to 128 bits) when a secret is given. The payload is
``[version, ordering fingerprint, [value, ...]]``. JSON carries ``None``, ``bool``, ``int``
and ``str`` natively; every other supported type is a two-element ``[tag, text]`` list, so
each value decodes to exactly the type and value it was encoded from.

The ordering fingerprint lets a cursor refuse to be used with any ordering other than the
one that produced it. Without a secret a cursor is *not* tamper-proof: anyone can decode it
and build another. Pass ``secret=`` when the values in it must not be forged.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from typing import Any

from kysera.core.errors import InvalidCursorError, InvalidQueryError

__all__ = ["decode_cursor", "encode_cursor", "ordering_fingerprint"]

CURSOR_VERSION = 1
MAX_CURSOR_LENGTH = 8192
_SIGNATURE_BYTES = 16
_SIGNATURE_SEPARATOR = "."
_FINGERPRINT_BYTES = 9
# One encoder for every cursor: json.dumps() with options builds a new one per call.
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def ordering_fingerprint(keys: Sequence[str]) -> str:
    """Return a short, stable identifier of an ordering.

    Args:
        keys: One description per ordering key, e.g. ``["users.age:desc", "users.id:asc"]``.

    Returns:
        A 12-character URL-safe string; different orderings give different fingerprints.
    """
    digest = hashlib.sha256("\x1f".join(keys).encode("utf-8")).digest()
    return _b64encode(digest[:_FINGERPRINT_BYTES])


def encode_cursor(
    values: Sequence[Any], *, ordering: str, secret: str | bytes | None = None
) -> str:
    """Encode the ordering-key values of one row as a cursor.

    Args:
        values: The row's values for each ordering key, in ordering order. Supported types:
            ``None``, ``bool``, ``int``, ``float``, ``str``, ``Decimal``, ``datetime``
            (naive or aware), ``date``, ``time``, ``timedelta``, ``UUID`` and ``bytes``.
        ordering: The fingerprint of the ordering (`ordering_fingerprint`).
        secret: When given, the cursor is HMAC-signed with it.

    Returns:
        An opaque URL-safe string.

    Raises:
        InvalidQueryError: A value has a type a cursor cannot carry.
    """
    payload = [CURSOR_VERSION, ordering, [_encode_value(value) for value in values]]
    text = _JSON.encode(payload)
    body = _b64encode(text.encode("utf-8"))
    if secret is None:
        return body
    return body + _SIGNATURE_SEPARATOR + _b64encode(_sign(body, secret))


def decode_cursor(
    cursor: str, *, ordering: str, secret: str | bytes | None = None
) -> tuple[Any, ...]:
    """Decode a cursor made by `encode_cursor` back into its values.

    Args:
        cursor: The cursor string.
        ordering: The fingerprint of the ordering the cursor must belong to.
        secret: The secret the cursor was signed with, or ``None`` for unsigned cursors.

    Returns:
        The values, with the types they were encoded from.

    Raises:
        InvalidCursorError: The cursor is not a string this module produced, was made for
            another ordering, is unsigned or badly signed while a secret is expected, or is
            signed while none is.
    """
    if not isinstance(cursor, str):
        raise InvalidCursorError(f"a cursor must be a string, not {type(cursor).__name__}")
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH or not cursor.isascii():
        raise InvalidCursorError("malformed cursor")
    body, separator, signature = cursor.partition(_SIGNATURE_SEPARATOR)
    if secret is not None:
        if not separator:
            raise InvalidCursorError("the cursor is not signed")
        expected = _b64encode(_sign(body, secret))
        if not hmac.compare_digest(expected, signature):
            raise InvalidCursorError("the cursor's signature does not match")
    elif separator:
        raise InvalidCursorError("the cursor is signed but no secret was given to verify it")
    try:
        payload = json.loads(_b64decode(body).decode("utf-8"))
        if not (
            isinstance(payload, list)
            and len(payload) == 3
            and payload[0] == CURSOR_VERSION
            and isinstance(payload[1], str)
            and isinstance(payload[2], list)
        ):
            raise InvalidCursorError("malformed cursor: unexpected payload")
        if payload[1] != ordering:
            raise InvalidCursorError("the cursor belongs to a different ordering")
        return tuple(_decode_value(value) for value in payload[2])
    except InvalidCursorError:
        raise
    except Exception as exc:  # any decoding failure means the input was not our cursor
        raise InvalidCursorError("malformed cursor") from exc


def _encode_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return ["f", value.hex()]
    if isinstance(value, decimal.Decimal):
        return ["n", str(value)]
    if isinstance(value, dt.datetime):
        return ["dt", _with_offset(value.replace(tzinfo=None).isoformat(), value.utcoffset())]
    if isinstance(value, dt.date):
        return ["d", value.isoformat()]
    if isinstance(value, dt.time):
        return ["t", _with_offset(value.replace(tzinfo=None).isoformat(), value.utcoffset())]
    if isinstance(value, dt.timedelta):
        return ["td", f"{value.days},{value.seconds},{value.microseconds}"]
    if isinstance(value, uuid.UUID):
        return ["u", value.hex]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ["b", _b64encode(bytes(value))]
    raise InvalidQueryError(
        f"a keyset cursor cannot carry a value of type {type(value).__name__}; "
        "order by columns of a scalar type"
    )


def _decode_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[1], str)):
        raise InvalidCursorError("malformed cursor: unexpected value")
    tag, text = value
    if tag == "f":
        return float.fromhex(text)
    if tag == "n":
        return decimal.Decimal(text)
    if tag == "dt":
        text, timezone = _split_offset(text)
        return dt.datetime.fromisoformat(text).replace(tzinfo=timezone)
    if tag == "d":
        return dt.date.fromisoformat(text)
    if tag == "t":
        text, timezone = _split_offset(text)
        return dt.time.fromisoformat(text).replace(tzinfo=timezone)
    if tag == "td":
        days, seconds, microseconds = (int(part) for part in text.split(","))
        return dt.timedelta(days=days, seconds=seconds, microseconds=microseconds)
    if tag == "u":
        return uuid.UUID(hex=text)
    if tag == "b":
        return _b64decode(text)
    raise InvalidCursorError("malformed cursor: unknown value type")


def _with_offset(text: str, offset: dt.timedelta | None) -> str:
    # The offset travels as whole microseconds: isoformat()/fromisoformat() lose sub-second
    # offsets on some Python versions.
    return text if offset is None else f"{text}@{offset // dt.timedelta(microseconds=1)}"


def _split_offset(text: str) -> tuple[str, dt.timezone | None]:
    text, separator, offset = text.partition("@")
    if not separator:
        return text, None
    return text, dt.timezone(dt.timedelta(microseconds=int(offset)))


def _sign(body: str, secret: str | bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(key, body.encode("ascii"), hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    return base64.b64decode(padded, altchars=b"-_", validate=True)
