"""Shared wording for query-argument errors: short value descriptions, "did you mean"."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

__all__ = ["describe", "short_repr", "unknown_name"]

_LIMIT = 60


def short_repr(value: Any) -> str:
    """Return ``repr(value)`` cut to 60 characters; never raises (huge ints, odd objects)."""
    try:
        text = repr(value)
    except Exception:  # e.g. an int beyond sys.get_int_max_str_digits(): say what it is instead
        return f"<{type(value).__name__}>"
    return text if len(text) <= _LIMIT else text[: _LIMIT - 3] + "..."


def describe(value: Any) -> str:
    """Return ``"<type> <short repr>"`` for an error message, e.g. ``str 'abc'``."""
    return f"{type(value).__name__} {short_repr(value)}"


def unknown_name(kind: str, name: Any, valid: Iterable[str], where: str) -> str:
    """Return ``"unknown column 'agee' for table users; valid columns: age, id, name"``.

    A close match, if any, is suggested at the end: ``(did you mean 'age'?)``.
    """
    choices = sorted(valid)
    message = f"unknown {kind} {short_repr(name)} {where}; valid {kind}s: {', '.join(choices)}"
    if isinstance(name, str) and len(name) <= _LIMIT:
        close = difflib.get_close_matches(name, choices, n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    return message
