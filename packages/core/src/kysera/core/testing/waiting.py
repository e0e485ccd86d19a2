"""Waiting for a condition that becomes true in the background."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from kysera.core.errors import BadRequestError

__all__ = ["wait_for"]

T = TypeVar("T")


async def wait_for(
    predicate: Callable[[], T | Awaitable[T]], timeout: float = 5.0, interval: float = 0.05
) -> T:
    """Call ``predicate`` (sync or async) every ``interval`` seconds until it returns a truthy
    value, and return that value.

    Example::

        row = await wait_for(lambda: find_job(engine, job_id), timeout=2)

    Raises:
        TimeoutError: The predicate stayed falsy for ``timeout`` seconds; the message shows its
            last value. An exception from the predicate propagates at once.
        BadRequestError: ``timeout`` or ``interval`` is not positive.
    """
    if not timeout > 0 or not interval > 0:
        raise BadRequestError(
            f"wait_for needs a positive timeout and interval, got {timeout=} {interval=}"
        )
    deadline = time.monotonic() + timeout
    attempts = 0
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        attempts += 1
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(
                f"condition still false after {timeout}s ({attempts} checks); last value: {value!r}"
            )
        await asyncio.sleep(min(interval, remaining))
