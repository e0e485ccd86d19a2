"""Errors raised by kysera.timestamps.

```
KyseraError (kysera.core)
└── BadRequestError
    └── InvalidTimestampError     INVALID_TIMESTAMP    .value
```

A misconfigured plugin (a timestamp column that is not a datetime, a table named in
``tables=`` without timestamp columns, a clock returning a naive datetime) raises
kysera.repository's `PluginError`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy.exc import DontWrapMixin

from kysera.core import BadRequestError

__all__ = ["InvalidTimestampError"]


class InvalidTimestampError(BadRequestError, DontWrapMixin):
    """A value that is not a time-zone-aware datetime, where a UTC instant is needed.

    A naive datetime does not say which instant it means (local time? UTC?), so a
    `UTCDateTime` column and the plugin's range queries refuse it rather than guess.
    Raised as is, even from inside statement execution (SQLAlchemy does not wrap it).

    Attributes:
        value: The rejected value.
    """

    code: ClassVar[str] = "INVALID_TIMESTAMP"

    def __init__(self, message: str = "", *, value: Any = None) -> None:
        super().__init__(message or describe_invalid_timestamp(value))
        self.value = value

    def _details(self) -> dict[str, Any]:
        return {"value": repr(self.value)}


def describe_invalid_timestamp(value: Any) -> str:
    """The message for a value that is not an aware datetime."""
    if isinstance(value, datetime):
        return (
            f"{value!r} has no time zone; pass an aware datetime, for example "
            "datetime.now(timezone.utc) or value.replace(tzinfo=timezone.utc)"
        )
    return f"expected a time-zone-aware datetime, got {type(value).__name__} {value!r}"
