"""Who makes a change, and why: the actor and metadata written into audit log rows."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["AuditActor", "audit_context", "current_audit_actor"]


@dataclass(frozen=True)
class AuditActor:
    """The actor and metadata of the enclosing `audit_context`.

    Attributes:
        user_id: Who makes the changes (written as text into ``changed_by``).
        metadata: Extra facts written into the ``metadata`` column (request id, IP, ...).
    """

    user_id: Any = None
    metadata: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


_NO_ACTOR = AuditActor()
_actor: ContextVar[AuditActor] = ContextVar("kysera_audit_actor", default=_NO_ACTOR)


@contextmanager
def audit_context(user_id: Any = None, **metadata: Any) -> Iterator[AuditActor]:
    """Attribute the changes made inside the block to ``user_id``, with ``metadata``.

    ```python
    with audit_context(user_id=current_user.id, request_id=request_id):
        await users.update(7, {"email": "new@example.com"})
    ```

    A context variable carries it: it follows the task that entered the block (and tasks
    started inside it), never concurrent tasks. Nested blocks replace the actor and add to
    the metadata of the outer block.

    Args:
        user_id: The actor; ``None`` keeps the outer block's actor.
        **metadata: JSON-serialisable facts stored with every log row.
    """
    outer = _actor.get()
    actor = AuditActor(
        user_id=outer.user_id if user_id is None else user_id,
        metadata=MappingProxyType({**outer.metadata, **metadata}),
    )
    token = _actor.set(actor)
    try:
        yield actor
    finally:
        _actor.reset(token)


def current_audit_actor() -> AuditActor:
    """The actor of the enclosing `audit_context` (an empty actor outside one)."""
    return _actor.get()
