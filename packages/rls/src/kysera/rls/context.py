"""Who is asking: `rls_context` and `system_context`, carried by a context variable.

A context variable follows the task that set it (and tasks started from there), so
concurrent requests on one event loop never see each other's context, and nothing is left
on a pooled connection.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

__all__ = ["RLSContext", "current_context", "current_user_id", "rls_context", "system_context"]

logger = logging.getLogger("kysera.rls")

_current: ContextVar[RLSContext | None] = ContextVar("kysera_rls_context", default=None)


@dataclass(frozen=True)
class RLSContext:
    """The caller the policies are evaluated for.

    Attributes:
        tenant_id: The tenant whose rows may be seen and written.
        user_id: The user, for policies on ownership (and audit's actor).
        roles: The user's roles.
        system: Set by `system_context`: policies do not apply.
    """

    tenant_id: Any = None
    user_id: Any = None
    roles: frozenset[str] = field(default_factory=frozenset)
    system: bool = False


class _Scope:
    """Sets a context for a ``with`` or ``async with`` block and restores the one before."""

    def __init__(self, context: RLSContext) -> None:
        self.context = context
        self._tokens: list[Token[RLSContext | None]] = []

    def __enter__(self) -> RLSContext:
        self._tokens.append(_current.set(self.context))
        return self.context

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _current.reset(self._tokens.pop())

    async def __aenter__(self) -> RLSContext:
        return self.__enter__()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.__exit__(kind, error, traceback)


def rls_context(*, tenant_id: Any = None, user_id: Any = None, roles: Iterable[str] = ()) -> _Scope:
    """Run a block as a tenant and user: ``async with rls_context(tenant_id=7, user_id=42):``.

    Args:
        tenant_id: The tenant (``policy.tenant`` tables show and take only its rows).
        user_id: The user, for ``policy.filter``/``allow``/``check`` predicates.
        roles: The user's roles, for predicates.

    Raises:
        TypeError: ``roles`` is a single string (a set of names is expected).
    """
    if isinstance(roles, str):
        raise TypeError("roles must be a collection of role names, not one string")
    return _Scope(RLSContext(tenant_id=tenant_id, user_id=user_id, roles=frozenset(roles)))


def system_context(reason: str = "") -> _Scope:
    """Run a block without policies (migrations, maintenance, cross-tenant reports).

    Every entry is logged at WARNING on the ``kysera.rls`` logger, with ``reason``.
    """
    logger.warning("system context entered: policies do not apply (%s)", reason or "no reason")
    return _Scope(RLSContext(system=True))


def current_context() -> RLSContext | None:
    """The context of the enclosing `rls_context`/`system_context`, or ``None``."""
    return _current.get()


def current_user_id() -> Any:
    """The user id of the enclosing `rls_context`, or ``None``: pass it as the audit plugin's
    ``get_user_id`` so that audit logs name the user the policies were checked for."""
    context = _current.get()
    return None if context is None else context.user_id
