"""The per-call options as the preparation hooks see them.

``prepare_insert(rows)``, ``prepare_update(values)`` and ``upsert_update_columns(columns)``
keep their one-argument signatures: plugin mixins chain them through ``super()``, so a new
parameter would break every chain that holds one override written before it (the old
override would drop the argument, or refuse it). The options travel beside the chain
instead, in a context variable that is set only while the hook chain runs. The chain is
synchronous, so nothing else (no other task, no later statement of the same call) can see
the value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, TypeVar

__all__ = ["NO_OPTIONS", "call_with_options", "current_options"]

_T = TypeVar("_T")
_R = TypeVar("_R")

NO_OPTIONS: Mapping[str, Any] = MappingProxyType({})
"""The options outside a hook chain, and of a call made without options."""

_OPTIONS: ContextVar[Mapping[str, Any]] = ContextVar("kysera_call_options", default=NO_OPTIONS)


def current_options() -> Mapping[str, Any]:
    """The options of the hook chain running now (`NO_OPTIONS` outside one)."""
    return _OPTIONS.get()


def call_with_options(hook: Callable[[_T], _R], argument: _T, options: Mapping[str, Any]) -> _R:
    """Run ``hook(argument)`` with ``options`` visible to `current_options`."""
    if not options and _OPTIONS.get() is NO_OPTIONS:
        return hook(argument)  # the common case: nothing to set, nothing to reset
    token = _OPTIONS.set(MappingProxyType(options) if options else NO_OPTIONS)
    try:
        return hook(argument)
    finally:
        _OPTIONS.reset(token)
