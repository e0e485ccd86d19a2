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

import binascii
import datetime as dt
import decimal
import enum
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Sequence
from json.encoder import encode_basestring
from typing import Any

from kysera.core.errors import InvalidCursorError, InvalidQueryError

__all__ = ["decode_cursor", "encode_cursor", "ordering_fingerprint"]

CURSOR_VERSION = 1
MAX_CURSOR_LENGTH = 8192
_SIGNATURE_BYTES = 16
_SIGNATURE_SEPARATOR = "."
_FINGERPRINT_BYTES = 9
_JSON_DECODER = json.JSONDecoder()
# A cursor's body: base64url, also accepting the standard alphabet and its padding, as
# base64.b64decode(altchars=b"-_", validate=True) did.
_BASE64_BODY = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
# JSON values that decode to themselves (bool is a subclass of int, but type() is exact).
_NATIVE_TYPES = frozenset({type(None), bool, int, str})


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
        InvalidQueryError: A value has a type a cursor cannot carry, or the values make a
            cursor longer than `MAX_CURSOR_LENGTH` (which `decode_cursor` would refuse).
    """
    # The JSON text is assembled here rather than by json.dumps(), which costs more than
    # the rest of the cursor together; the text is the same, byte for byte.
    items = ",".join([_encode_value(value) for value in values])
    text = f"[{CURSOR_VERSION},{encode_basestring(ordering)},[{items}]]"
    body = _b64encode(text.encode("utf-8"))
    if secret is not None:
        body = body + _SIGNATURE_SEPARATOR + _b64encode(_sign(body, secret))
    if len(body) > MAX_CURSOR_LENGTH:
        # decode_cursor refuses what is longer: never hand such a cursor out.
        raise InvalidQueryError(
            f"the ordering values of this row make a cursor of {len(body)} characters, over "
            f"the {MAX_CURSOR_LENGTH} a cursor may have; order by shorter columns (long text "
            "and binary values cannot make a cursor)"
        )
    return body


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
        payload = _parse_json(_b64decode(body).decode("utf-8"))
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
        values = payload[2]
        return tuple([v if type(v) in _NATIVE_TYPES else _decode_value(v) for v in values])
    except InvalidCursorError:
        raise
    except Exception as exc:  # any decoding failure means the input was not our cursor
        raise InvalidCursorError("malformed cursor") from exc


def _encode_value(value: Any) -> str:
    """The JSON text of one value: a JSON scalar, or a ``["tag","text"]`` pair.

    The texts of tagged values are made of letters, digits and ``+-.:,@_`` only, so they
    need no JSON escaping.
    """
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, enum.Enum):
        # By name: what SQLAlchemy's Enum type stores and accepts back for a member.
        return encode_basestring(value.name)
    if isinstance(value, str):
        return encode_basestring(value)
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return f'["f","{value.hex()}"]'
    if isinstance(value, decimal.Decimal):
        return f'["n","{value!s}"]'
    if isinstance(value, dt.datetime):
        text = _with_offset(value.replace(tzinfo=None).isoformat(), value.utcoffset())
        return f'["dt","{text}"]'
    if isinstance(value, dt.date):
        return f'["d","{value.isoformat()}"]'
    if isinstance(value, dt.time):
        text = _with_offset(value.replace(tzinfo=None).isoformat(), value.utcoffset())
        return f'["t","{text}"]'
    if isinstance(value, dt.timedelta):
        return f'["td","{value.days},{value.seconds},{value.microseconds}"]'
    if isinstance(value, uuid.UUID):
        return f'["u","{value.hex}"]'
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f'["b","{_b64encode(bytes(value))}"]'
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
    keyed = _KEYED_HMACS.get(secret)
    if keyed is None:
        key = secret.encode("utf-8") if isinstance(secret, str) else secret
        keyed = hmac.new(key, digestmod=hashlib.sha256)
        if len(_KEYED_HMACS) < _KEYED_HMACS_SIZE:
            _KEYED_HMACS[secret] = keyed
    # A copy of an HMAC that has taken in its key costs half of a new one.
    signer = keyed.copy()
    signer.update(body.encode("ascii"))
    return signer.digest()[:_SIGNATURE_BYTES]


_KEYED_HMACS_SIZE = 16
_KEYED_HMACS: dict[str | bytes, hmac.HMAC] = {}


def _parse_json(text: str) -> Any:
    """``json.loads(text)``, minus its wrapping for the whitespace-free text of a cursor."""
    try:
        payload, end = _JSON_DECODER.raw_decode(text)
    except ValueError:
        end = -1
    if end != len(text):
        # Leading or trailing whitespace, or not JSON: json.loads() accepts or refuses it.
        return json.loads(text)
    return payload


def _b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    if _BASE64_BODY.fullmatch(padded) is None:
        raise binascii.Error("not base64")
    return binascii.a2b_base64(padded.encode("ascii").translate(_FROM_URLSAFE))
