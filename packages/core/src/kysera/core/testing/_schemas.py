"""The tables a test session creates on one database: each `MetaData` once, all dropped at the end.

Used by `kysera.core.pytest_plugin.kysera_schema_fixture`; kept free of pytest so that it can be
read and tested as plain async code.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core.testing._guard import claim_test_database, mark_test_database

__all__: list[str] = []


class SessionTables:
    """The `MetaData` whose tables this test session created on ``engine``, in creation order.

    Args:
        engine: The database the tables live on.
        allow_dropping: Skip the check that the database is a test database
            (`kysera.core.testing._guard.claim_test_database`): the user opted in.
    """

    def __init__(self, engine: AsyncEngine, *, allow_dropping: bool = False) -> None:
        self.engine = engine
        self.allow_dropping = allow_dropping
        self._created: list[sa.MetaData] = []

    def created(self, metadata: sa.MetaData) -> bool:
        """Whether `ensure` has already created ``metadata``'s tables in this session."""
        return any(known is metadata for known in self._created)

    async def ensure(self, metadata: sa.MetaData) -> None:
        """Create the tables of ``metadata``, unless this session already did.

        Tables of the same names are dropped first: an interrupted earlier run may have left
        them behind, with rows or with an older shape. Only in a test database, though: see
        `kysera.core.testing._guard`.

        Raises:
            NotATestDatabaseError: The database is not the plugin's to drop tables in; nothing
                was dropped.
        """
        if self.created(metadata):
            return
        async with self.engine.begin() as connection:
            if self.allow_dropping:
                await connection.run_sync(mark_test_database)
            else:
                await connection.run_sync(claim_test_database, metadata)
            await connection.run_sync(metadata.drop_all)
            await connection.run_sync(metadata.create_all)
        self._created.append(metadata)

    async def drop(self) -> None:
        """Drop every table `ensure` created, the last `MetaData` first.

        Every `MetaData` is tried even when one fails (the first error is raised afterwards),
        so one broken table does not leave the others behind.
        """
        first_error: BaseException | None = None
        while self._created:
            metadata = self._created.pop()
            try:
                async with self.engine.begin() as connection:
                    await connection.run_sync(metadata.drop_all)
            except Exception as error:
                first_error = first_error or error
        if first_error is not None:
            raise first_error
