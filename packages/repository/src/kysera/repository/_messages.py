"""Shared wording for query-argument errors: short value descriptions, "did you mean"."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

__all__ = ["describe", "unknown_name"]


def describe(value: Any) -> str:
    """Return ``"<type> <repr>"`` for an error message, the repr cut to 60 characters."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def unknown_name(kind: str, name: Any, valid: Iterable[str], where: str) -> str:
    """Return ``"unknown column 'agee' for table users; valid columns: age, id, name"``.

    A close match, if any, is suggested at the end: ``(did you mean 'age'?)``.
    """
    choices = sorted(valid)
    message = f"unknown {kind} {name!r} {where}; valid {kind}s: {', '.join(choices)}"
    if isinstance(name, str):
        close = difflib.get_close_matches(name, choices, n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    return message
