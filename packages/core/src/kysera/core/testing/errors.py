"""Errors raised by kysera.core.testing.

```
KyseraError (kysera.core)
└── ImplicitCommitError     TESTING_IMPLICIT_COMMIT
```

Bad arguments raise kysera.core's `BadRequestError`; database failures its classified
`DatabaseError` subclasses.
"""

from __future__ import annotations

from typing import ClassVar

from kysera.core.errors import KyseraError

__all__ = ["ImplicitCommitError"]


class ImplicitCommitError(KyseraError):
    """The database ended the test's transaction on its own, so it could not be rolled back.

    On MySQL/MariaDB, DDL and a few other statements commit implicitly, and a deadlock rolls
    the whole transaction back. Writes made before that point may have been committed.
    """

    code: ClassVar[str] = "TESTING_IMPLICIT_COMMIT"
