"""Errors of kysera.kv; each subclasses a kysera.core error and carries a stable code.

::

    KyseraError
    └── BadRequestError
        ├── InvalidKeyError        KV_INVALID_KEY      a key is not a valid key tuple
        ├── InvalidValueError      KV_INVALID_VALUE    a value is not JSON-serializable
        ├── SumTypeError           KV_SUM_NOT_INTEGER  ``sum`` met a stored non-integer
        └── UnsupportedDriverError KV_UNSUPPORTED_DRIVER  the engine's driver cannot serve a store
"""

from __future__ import annotations

from typing import ClassVar

from kysera.core.errors import BadRequestError

__all__ = ["InvalidKeyError", "InvalidValueError", "SumTypeError", "UnsupportedDriverError"]


class InvalidKeyError(BadRequestError):
    """A key is not a non-empty tuple of str, int (64-bit), bytes or bool; nothing was written."""

    code: ClassVar[str] = "KV_INVALID_KEY"


class InvalidValueError(BadRequestError):
    """A value cannot be stored as JSON; nothing was written."""

    code: ClassVar[str] = "KV_INVALID_VALUE"


class SumTypeError(BadRequestError):
    """``sum`` was asked to add to a stored value that is not an integer; nothing was written."""

    code: ClassVar[str] = "KV_SUM_NOT_INTEGER"


class UnsupportedDriverError(BadRequestError):
    """The engine's driver cannot serve a store (aiomysql cannot send the binary keys);
    nothing was created or written."""

    code: ClassVar[str] = "KV_UNSUPPORTED_DRIVER"
