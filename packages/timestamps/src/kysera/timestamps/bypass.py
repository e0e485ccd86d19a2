"""`without_timestamps()`: turn the plugin off for a block of code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from kysera.timestamps._settings import SUSPENDED

__all__ = ["without_timestamps"]


@contextmanager
def without_timestamps() -> Iterator[None]:
    """Write exactly what is given inside the block: no timestamp is filled in.

    ```python
    with without_timestamps():
        await posts.soft_delete(post_id)  # another plugin's write: updated_at stays
    ```

    The per-call option ``timestamps=False`` does the same for one repository call; this
    also covers writes that do not take it (another plugin's methods, several calls at
    once). A context variable carries it, so it applies to this task (and tasks started
    inside the block) only.
    """
    token = SUSPENDED.set(True)
    try:
        yield
    finally:
        SUSPENDED.reset(token)
