"""LIKE patterns translated to SQLite's GLOB, which is case-sensitive (SQLite's LIKE is not)."""

from __future__ import annotations

__all__ = ["glob_literal", "like_pattern_to_glob"]

_GLOB_SPECIAL = frozenset("*?[")


def glob_literal(text: str) -> str:
    """Return a GLOB pattern matching exactly ``text``: ``*``, ``?`` and ``[`` in brackets."""
    return "".join(f"[{char}]" if char in _GLOB_SPECIAL else char for char in text)


def like_pattern_to_glob(pattern: str, escape: str) -> str:
    """Translate a LIKE pattern (``%``, ``_``, ``escape``) into the equivalent GLOB pattern.

    Raises:
        ValueError: The pattern ends with an unpaired escape character.
    """
    parts: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == escape:
            escaped = next(chars, None)
            if escaped is None:
                raise ValueError("the pattern ends with the escape character")
            parts.append(glob_literal(escaped))
        elif char == "%":
            parts.append("*")
        elif char == "_":
            parts.append("?")
        else:
            parts.append(glob_literal(char))
    return "".join(parts)
