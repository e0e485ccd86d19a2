"""Errors raised by kysera.core.testing.

```
KyseraError (kysera.core)
├── ImplicitCommitError     TESTING_IMPLICIT_COMMIT
└── NotATestDatabaseError   TESTING_NOT_A_TEST_DATABASE
```

Bad arguments raise kysera.core's `BadRequestError`; database failures its classified
`DatabaseError` subclasses.
"""

from __future__ import annotations

from typing import ClassVar

from kysera.core.errors import KyseraError

__all__ = ["ImplicitCommitError", "NotATestDatabaseError"]


class ImplicitCommitError(KyseraError):
    """The database ended the test's transaction on its own, so it could not be rolled back.

    On MySQL/MariaDB, DDL and a few other statements commit implicitly, and a deadlock rolls
    the whole transaction back. Writes made before that point may have been committed.
    """

    code: ClassVar[str] = "TESTING_IMPLICIT_COMMIT"


class NotATestDatabaseError(KyseraError):
    """The pytest plugin refused to drop or empty tables in a database it did not set up.

    Raised before anything is dropped, when the database holds a migrations bookkeeping table
    or, in a database the plugin has not marked as its own, a table named like one of the
    test's tables. Point the tests at a dedicated test database, or opt in (see
    docs/testing.md) when this database's tables may be lost.
    """

    code: ClassVar[str] = "TESTING_NOT_A_TEST_DATABASE"
