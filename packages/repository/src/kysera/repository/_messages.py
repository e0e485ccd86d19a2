"""Shared wording for query-argument errors: short value descriptions, "did you mean"."""

from __future__ import annotations

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
        close = closest_name(name, choices)
        if close is not None:
            message += f" (did you mean {close!r}?)"
    return message


def closest_name(name: str, choices: Iterable[str]) -> str | None:
    """The choice ``name`` is a typo of, if any: few edits away, counted without the ``$``.

    A typo is up to one edit (insertion, deletion, substitution, or two letters swapped) in a
    name of up to four characters, two in a longer one. ``difflib``'s similarity alone let
    the shared ``$`` of operators make ``'$regex'`` look like ``'$gte'``.
    """
    bare = name.lstrip("$")
    best: tuple[int, str] | None = None
    for choice in choices:
        distance = edit_distance(bare.lower(), choice.lstrip("$").lower())
        allowed = 1 if min(len(bare), len(choice.lstrip("$"))) <= 4 else 2
        if distance <= allowed and (best is None or distance < best[0]):
            best = (distance, choice)
    return None if best is None else best[1]


def edit_distance(a: str, b: str) -> int:
    """Edits from ``a`` to ``b``: insertions, deletions, substitutions, adjacent swaps."""
    previous_row: list[int] = []
    row = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        before, previous_row, row = previous_row, row, [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            row[j] = min(previous_row[j] + 1, row[j - 1] + 1, previous_row[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], before[j - 2] + 1)
    return row[len(b)]
