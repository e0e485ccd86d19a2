"""Connections for the testing helpers: an executor is an `AsyncEngine` or an `AsyncConnection`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeAlias

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kysera.core.errors import classify_database_errors

__all__: list[str] = []

Executor: TypeAlias = "AsyncEngine | AsyncConnection"


@asynccontextmanager
async def writing(executor: Executor) -> AsyncIterator[AsyncConnection]:
    """Yield a connection to write on: a fresh committed transaction for an engine, the caller's
    transaction (never committed here) for a connection. Database errors come out classified."""
    if isinstance(executor, AsyncEngine):
        async with executor.begin() as conn, classify_database_errors(executor.dialect.name):
            yield conn
    else:
        async with classify_database_errors(executor.dialect.name):
            yield executor


@asynccontextmanager
async def reading(executor: Executor) -> AsyncIterator[AsyncConnection]:
    """Yield a connection to read on, without opening a transaction of our own on a connection."""
    if isinstance(executor, AsyncEngine):
        async with executor.connect() as conn, classify_database_errors(executor.dialect.name):
            yield conn
    else:
        async with classify_database_errors(executor.dialect.name):
            yield executor
