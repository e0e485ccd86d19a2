"""Order-preserving binary encoding of key tuples.

Each part is a type tag followed by a self-delimiting body, so comparing two encodings byte by
byte (``memcmp``: PostgreSQL ``bytea``, MariaDB ``VARBINARY``, SQLite ``BLOB``) orders keys like
Deno KV: part by part, and within a part ``bytes < str < int < bool``; a key sorts before every
longer key it prefixes.

- bytes: ``0x01``, the bytes with ``0x00`` written as ``0x00 0xFF``, then ``0x00``
- str: ``0x02``, the UTF-8 bytes escaped the same way, then ``0x00``
- int: ``0x03``, eight big-endian bytes of ``n + 2**63`` (signed 64-bit range)
- bool: ``0x04``, then ``0x00`` (False) or ``0x01`` (True)
"""

from __future__ import annotations

from typing import TypeAlias

from kysera.kv.errors import InvalidKeyError

__all__ = ["MAX_KEY_BYTES", "KeyPart", "KvKey", "decode_key", "encode_key"]

KeyPart: TypeAlias = bytes | str | int | bool
KvKey: TypeAlias = tuple[KeyPart, ...]

#: The longest encoded key (fits MariaDB's index limit).
MAX_KEY_BYTES = 2048

_BYTES, _STR, _INT, _BOOL = 0x01, 0x02, 0x03, 0x04
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


def _escape(data: bytes) -> bytes:
    return data.replace(b"\x00", b"\x00\xff") + b"\x00"


def encode_parts(key: object, *, allow_empty: bool = False) -> bytes:
    """Encode ``key`` (a tuple); raise `InvalidKeyError` naming the bad part."""
    if not isinstance(key, tuple):
        raise InvalidKeyError(f"a key must be a tuple, got {type(key).__name__}: {key!r}")
    if not key and not allow_empty:
        raise InvalidKeyError("a key must have at least one part")
    out = bytearray()
    for index, part in enumerate(key):
        if isinstance(part, bool):  # before int: bool is an int subclass
            out += bytes((_BOOL, 1 if part else 0))
        elif isinstance(part, int):
            if not _INT_MIN <= part <= _INT_MAX:
                raise InvalidKeyError(
                    f"key part {index} ({part}) is outside the signed 64-bit range"
                )
            out.append(_INT)
            out += (part - _INT_MIN).to_bytes(8, "big")
        elif isinstance(part, str):
            try:
                encoded = part.encode("utf-8", "strict")
            except UnicodeEncodeError:  # a lone surrogate: no UTF-8 form, so no stored form
                raise InvalidKeyError(
                    f"key part {index} is not valid Unicode text (it holds a lone surrogate)"
                ) from None
            out.append(_STR)
            out += _escape(encoded)
        elif isinstance(part, bytes | bytearray | memoryview):
            out.append(_BYTES)
            out += _escape(bytes(part))
        else:
            raise InvalidKeyError(
                f"key part {index} must be str, int, bytes or bool, got {type(part).__name__}: "
                f"{part!r}"
            )
    if len(out) > MAX_KEY_BYTES:
        raise InvalidKeyError(f"the key encodes to {len(out)} bytes; the limit is {MAX_KEY_BYTES}")
    return bytes(out)


def encode_key(key: object) -> bytes:
    """Return the order-preserving encoding of a non-empty key tuple."""
    return encode_parts(key)


def decode_key(data: bytes) -> KvKey:
    """Return the key tuple ``data`` encodes (the inverse of `encode_key`)."""
    parts: list[KeyPart] = []
    i = 0
    while i < len(data):
        tag = data[i]
        i += 1
        if tag == _BOOL:
            parts.append(data[i] == 1)
            i += 1
        elif tag == _INT:
            parts.append(int.from_bytes(data[i : i + 8], "big") + _INT_MIN)
            i += 8
        elif tag in (_BYTES, _STR):
            body = bytearray()
            while True:
                byte = data[i]
                if byte == 0:
                    if i + 1 < len(data) and data[i + 1] == 0xFF:
                        body.append(0)
                        i += 2
                        continue
                    i += 1
                    break
                body.append(byte)
                i += 1
            parts.append(bytes(body) if tag == _BYTES else body.decode("utf-8"))
        else:
            raise InvalidKeyError(f"not an encoded key: unknown tag {tag} at byte {i - 1}")
    return tuple(parts)
