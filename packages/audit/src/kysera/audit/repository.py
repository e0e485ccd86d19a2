"""`AuditRepository[E]`: a repository type that carries the audit methods for mypy.

`AuditPlugin` mixes its methods in at run time, so ``orm.repository(...)`` is typed as a
plain ``Repository[E]`` and ``repo.get_audit_history(...)`` is an error for a type checker.
Passing this class as ``repository_class`` gives the repository a type that has both,
without a cast:

```python
accounts = orm.repository(accounts_table, entity=Account, repository_class=AuditRepository[Account])
await accounts.restore_from_audit(7)  # returns an Account, for mypy too
```
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, TypeVar

from kysera.audit.mixin import AuditMixin
from kysera.core import BadRequestError
from kysera.repository import Repository

if TYPE_CHECKING:
    from kysera.audit.entry import AuditLogEntry, AuditOperation

__all__ = ["AuditRepository"]

EntityT = TypeVar("EntityT")


class AuditRepository(Repository[EntityT]):
    """A `Repository` whose type includes `AuditPlugin`'s methods.

    At run time it is a plain `Repository` base: the ORM composes the audit mixin in front
    of it, as for any ``repository_class``. An ORM without `AuditPlugin` (or a table the
    plugin does not audit) is refused when the repository is built, not at the first call.

    Raises:
        BadRequestError: The repository got no audit methods from its ORM.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self, AuditMixin):
            raise BadRequestError(
                f"AuditRepository for {self.table.name!r} needs an ORM with "
                "AuditPlugin that audits this table"
            )

    if TYPE_CHECKING:
        # The signatures of the audit mixin's added methods, with the entity type filled in.

        async def get_audit_history(
            self, id: Any, limit: int | None = None, offset: int = 0
        ) -> list[AuditLogEntry]:
            raise NotImplementedError

        async def get_audit_log(self, audit_id: int) -> AuditLogEntry | None:
            raise NotImplementedError

        async def get_table_audit_logs(
            self,
            operation: AuditOperation | None = None,
            user_id: Any = None,
            since: dt.datetime | None = None,
            until: dt.datetime | None = None,
            limit: int | None = None,
            offset: int = 0,
        ) -> list[AuditLogEntry]:
            raise NotImplementedError

        async def get_user_changes(
            self, user_id: Any, limit: int | None = None, offset: int = 0
        ) -> list[AuditLogEntry]:
            raise NotImplementedError

        async def restore_from_audit(self, audit_id: int, **options: Any) -> EntityT:
            raise NotImplementedError
