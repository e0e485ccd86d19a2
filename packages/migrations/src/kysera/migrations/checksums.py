"""Checksums that tell whether an applied migration's code was changed afterwards.

A migration loaded from a file is checksummed over the whole file, so a change to a helper or
a constant the migration uses counts too. A migration built with `migration()` in code is
checksummed over the source of its ``up`` and ``down`` functions. Line endings and trailing
whitespace are normalised first, so a checkout with CRLF line endings does not count as a change.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["file_checksum", "functions_checksum"]


def file_checksum(path: str | Path) -> str:
    """Return the SHA-256 hex digest of a migration file's normalised text."""
    return _digest(Path(path).read_text(encoding="utf-8"))


def functions_checksum(*functions: Callable[..., Any] | None) -> str:
    """Return the SHA-256 hex digest of the functions' normalised source code.

    A function whose source is unavailable (defined in an interactive session, say) is
    represented by its qualified name, so its checksum never changes.
    """
    parts = [_source_of(function) if function is not None else "<none>" for function in functions]
    return _digest("\n\0\n".join(parts))


def _source_of(function: Callable[..., Any]) -> str:
    target: Any = function
    bound = ""
    while isinstance(target, functools.partial):
        bound += f"partial{target.args!r}{sorted(target.keywords.items())!r}"
        target = target.func
    target = inspect.unwrap(target)
    try:
        return bound + textwrap.dedent(inspect.getsource(target))
    except (OSError, TypeError):
        # Never an address-bearing repr: the checksum must be the same in every process.
        owner = target if hasattr(target, "__qualname__") else type(target)
        return f"{bound}{owner.__module__}.{owner.__qualname__}"


def _digest(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    normalised = "\n".join(line.rstrip() for line in lines).strip("\n")
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()
