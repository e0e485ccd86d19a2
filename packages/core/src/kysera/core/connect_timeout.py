"""Every connection attempt ends within a timeout, on every driver.

asyncpg bounds its whole connection attempt (``timeout=``, 60 s by default) and aiosqlite
opens a file. asyncmy and aiomysql bound only the TCP connect with ``connect_timeout``: a
server that accepts the connection and never sends its handshake (a hung server, a
blackholing proxy or firewall) keeps the attempt waiting forever. `limit_connect_time` makes
an engine's asyncmy and aiomysql connection attempts, handshake and authentication included,
fail after ``connect_timeout`` seconds (10 when the URL and ``connect_args`` set none, the
drivers' default) with MySQL's "can't connect" error (2003), which Kysera classifies as a
transient `DatabaseConnectionError`.

Kysera applies it to every engine it is given (repositories, ORMs, `paginate`,
`paginate_cursor`, `retry_transaction`, `check_health`); call it yourself for engines you use
only through SQLAlchemy.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine

from kysera.core.errors import BadRequestError

__all__ = ["limit_connect_time"]

# Seconds a connection attempt may take when the engine's settings give no limit.
_DEFAULT_TIMEOUT = 10.0

# Engines (by their sync core, which execution_options() copies share) already limited.
_LIMITED: weakref.WeakSet[Any] = weakref.WeakSet()


def limit_connect_time(engine: AsyncEngine, timeout: float | None = None) -> AsyncEngine:
    """Bound every new connection attempt of ``engine``; return ``engine``.

    Idempotent and cheap to call again. Only drivers without a bound of their own are
    changed (asyncmy, aiomysql); an engine made with ``async_creator=`` is left alone (that function
    decides how to connect).

    Args:
        engine: The engine.
        timeout: Seconds per attempt when the engine's own ``connect_timeout`` is unset;
            defaults to 10 seconds (PyMySQL's default).

    Raises:
        BadRequestError: ``timeout`` is not a positive number.
    """
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise BadRequestError(f"timeout must be a positive number of seconds, got {timeout!r}")
    sync_engine = engine.sync_engine
    if sync_engine in _LIMITED:
        return engine
    _LIMITED.add(sync_engine)
    bounded_connect = _BOUNDED_CONNECTS.get(sync_engine.dialect.driver)
    if bounded_connect is not None:
        fallback = _DEFAULT_TIMEOUT if timeout is None else float(timeout)

        def bound_handshake(
            dialect: Dialect, record: Any, cargs: list[Any], cparams: dict[str, Any]
        ) -> None:
            if "async_creator_fn" not in cparams:
                cparams["async_creator_fn"] = bounded_connect(dialect, fallback)

        event.listen(sync_engine, "do_connect", bound_handshake)
    return engine


def _bounded_aiomysql_connect(dialect: Dialect, fallback: float) -> Any:
    import aiomysql

    async def connect(*args: Any, **kwargs: Any) -> Any:
        limit = kwargs.get("connect_timeout") or fallback
        connection = aiomysql.Connection(*args, **kwargs)
        try:
            # The handshake and authentication, which aiomysql itself never times out.
            async with asyncio.timeout(limit):  # not wait_for: it can drop a cancellation
                await connection._connect()
        except TimeoutError:
            connection.close()  # the socket stays open otherwise
            raise _no_handshake(dialect, kwargs.get("host"), limit) from None
        except BaseException:
            connection.close()
            raise
        return connection

    return connect


def _bounded_asyncmy_connect(dialect: Dialect, fallback: float) -> Any:
    import asyncmy

    async def connect(*args: Any, **kwargs: Any) -> Any:
        limit = kwargs.get("connect_timeout") or fallback
        try:
            # asyncmy closes its transport when a read of the handshake is cancelled.
            async with asyncio.timeout(limit):  # not wait_for: it can drop a cancellation
                return await asyncmy.connect(*args, **kwargs)
        except TimeoutError:
            raise _no_handshake(dialect, kwargs.get("host"), limit) from None

    return connect


def _no_handshake(dialect: Dialect, host: object, limit: float) -> Exception:
    """MySQL's "can't connect" error (2003), as the driver raises it for a refused port."""
    error: Exception = dialect.loaded_dbapi.OperationalError(
        2003,
        f"Can't connect to MySQL server on {host!r} (no handshake within the connect "
        f"timeout of {limit:g} s)",
    )
    return error


_BOUNDED_CONNECTS = {
    "aiomysql": _bounded_aiomysql_connect,
    "asyncmy": _bounded_asyncmy_connect,
}
