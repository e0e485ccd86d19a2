"""`parse_duration`: the strict TTL syntax ("5m", "1h30m", "30d")."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from kysera.core import ValidationError

__all__ = ["parse_duration"]

# Units from largest to smallest, each at most once; digits only (no signs, spaces, decimals).
_DURATION = re.compile(r"(?:([0-9]{1,9})d)?(?:([0-9]{1,9})h)?(?:([0-9]{1,9})m)?(?:([0-9]{1,9})s)?")


def parse_duration(value: Any) -> timedelta:
    """Return ``value`` as a positive `timedelta`.

    Accepts a `timedelta` (> 0) or a string of ``<int><unit>`` parts, units ``d``, ``h``,
    ``m``, ``s``, largest first, each at most once: ``"30s"``, ``"5m"``, ``"1h30m"``,
    ``"30d"``. Anything else (``""``, ``"5"``, ``"5 m"``, ``"1.5h"``, ``"-5m"``, ``"0s"``,
    ``"5m1h"``, an int) is refused.

    Raises:
        ValidationError: ``value`` is not a positive duration.
    """
    if isinstance(value, timedelta):
        if value <= timedelta(0):
            raise ValidationError(f"ttl must be positive, got {value!r}")
        return value
    if not isinstance(value, str):
        raise ValidationError(
            f"ttl must be a timedelta or a string like '5m', '1h30m', '30d', got {value!r}"
        )
    match = _DURATION.fullmatch(value)
    if not value or match is None:
        raise ValidationError(
            f"invalid ttl {value!r}: expected <int><unit> parts with units d, h, m, s, "
            "largest first (e.g. '5m', '1h30m', '30d')"
        )
    days, hours, minutes, seconds = (int(part) if part else 0 for part in match.groups())
    try:
        duration = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        raise ValidationError(f"ttl {value!r} is too long") from None
    if duration <= timedelta(0):
        raise ValidationError(f"ttl must be positive, got {value!r}")
    return duration
