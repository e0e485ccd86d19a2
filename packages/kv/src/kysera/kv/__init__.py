"""kysera.kv: a Deno-KV-style key-value store on one SQL table."""

from kysera.kv.errors import (
    InvalidKeyError,
    InvalidValueError,
    SumTypeError,
    UnsupportedDriverError,
)
from kysera.kv.keys import MAX_KEY_BYTES, KeyPart, KvKey, decode_key, encode_key
from kysera.kv.store import KV, AtomicOperation, CommitResult, Entry, ListPage

# Plain sorted() order, which test_exports checks (not ruff's isort-style order).
__all__ = [  # noqa: RUF022
    "AtomicOperation",
    "CommitResult",
    "Entry",
    "InvalidKeyError",
    "InvalidValueError",
    "KV",
    "KeyPart",
    "KvKey",
    "ListPage",
    "MAX_KEY_BYTES",
    "SumTypeError",
    "UnsupportedDriverError",
    "decode_key",
    "encode_key",
]
