"""A TCP proxy on 127.0.0.1 that injects network faults between a client and its database.

Point a second engine at the proxy (`FaultProxy.url`) and arm one fault at a time:

* `FaultProxy.drop_after_forward`: forward a client->server chunk (the next one, or the next
  one containing given bytes, such as ``b"COMMIT"``), let the server answer, throw the answer
  away and close both sides. The server did the work; the client never hears of it: the
  "outcome unknown" case.
* `FaultProxy.blackhole`: accept new connections and never answer them, nor forward
  anything: a server that accepts TCP and hangs.
* `FaultProxy.drop_mid_stream`: forward part of the server's answer, then close both sides.
* `FaultProxy.hide_server_close`: when the server closes a connection, forward what it sent
  (such as PostgreSQL's "terminating connection" error) but keep the client's socket open
  and swallow what the client sends: a session the server ended that the client's driver
  cannot see closed, as behind a middlebox that loses the close.
* `FaultProxy.forward`: disarm; forward everything again.

A fault fires once (except the blackhole and the hidden close, which last until `forward`);
then the proxy forwards normally, so a retry reaches the database.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from types import TracebackType

from sqlalchemy.engine import make_url

from kysera.core.errors import BadRequestError

__all__ = ["FaultProxy"]

ChunkMatch = bytes | Callable[[bytes], bool] | None
"""Which client->server chunk a fault waits for: any (``None``), one containing these bytes,
or one the callable accepts."""


class _Link:
    """One proxied connection: the client's streams and the server's."""

    __slots__ = ("client_writer", "done", "server_closed", "server_writer", "swallow")

    def __init__(self, client_writer: asyncio.StreamWriter) -> None:
        self.client_writer = client_writer
        self.server_writer: asyncio.StreamWriter | None = None
        # Set when the server closed and the proxy hides it: the client's chunks go nowhere.
        self.server_closed = False
        # Set when the server's next answer must be thrown away and the link closed.
        self.swallow: asyncio.Event | None = None
        self.done = asyncio.Event()

    def close(self) -> None:
        for writer in (self.client_writer, self.server_writer):
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.transport.abort()
        self.done.set()


class FaultProxy:
    """A TCP proxy on 127.0.0.1 to ``host:port`` that can drop, stall or cut connections.

    Use it as an async context manager (or call `start` and `close`)::

        async with FaultProxy("127.0.0.1", 5432) as proxy:
            engine = create_async_engine(proxy.url(database_url), poolclass=NullPool)
            proxy.drop_after_forward(b"COMMIT")  # the next COMMIT runs, its answer is lost

    Args:
        host: The database server's host.
        port: The database server's port.
        reply_wait: After `drop_after_forward` forwarded its chunk, how long (seconds) the
            proxy waits for the server's answer before closing anyway (the chunk may not be
            a complete request).

    Attributes:
        connections: How many client connections the proxy has accepted.
        fired: How many armed faults have fired.
        chunks: How many client->server chunks the proxy has forwarded (count the chunks a
            call sends, then arm `drop_after_forward` with ``skip=`` to hit each of them).
    """

    def __init__(self, host: str, port: int, *, reply_wait: float = 1.0) -> None:
        self.target = (host, port)
        self.reply_wait = reply_wait
        self.connections = 0
        self.fired = 0
        self._fired_changed = asyncio.Event()
        self.chunks = 0
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._blackhole = False
        self._drop_match: ChunkMatch = None
        self._drop_skip = 0
        self._drop_armed = False
        self._cut_after: int | None = None
        self._hide_close = False

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> FaultProxy:
        """Listen on an ephemeral port of 127.0.0.1."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        """Stop listening and cut every proxied connection."""
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def port(self) -> int:
        """The port the proxy listens on (on 127.0.0.1)."""
        if self._server is None:
            raise BadRequestError("the FaultProxy is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def url(self, database_url: str) -> str:
        """``database_url`` with its host and port replaced by the proxy's."""
        return (
            make_url(database_url)
            .set(host="127.0.0.1", port=self.port)
            .render_as_string(hide_password=False)
        )

    # --- faults ------------------------------------------------------------------------------

    def forward(self) -> None:
        """Disarm every fault: forward everything (new connections included), and pass on
        the closes `hide_server_close` hid."""
        self._blackhole = False
        self._drop_armed = False
        self._cut_after = None
        self._hide_close = False
        for link in list(self._links):
            if link.server_closed:
                link.close()

    def blackhole(self) -> None:
        """Accept new connections but never answer nor forward them, until `forward`.

        Connections already open keep working.
        """
        self._blackhole = True

    def drop_after_forward(self, match: ChunkMatch = None, *, skip: int = 0) -> None:
        """Forward one client->server chunk, swallow the server's answer, close both sides.

        Args:
            match: Which chunk: the next one (``None``), the next containing these bytes, or
                the next the callable accepts. Chunks are what the client wrote at once; with
                prepared-statement caches the SQL text is only in a connection's first use
                of a statement, so match fresh connections (``poolclass=NullPool``).
            skip: Let this many matching chunks through first.
        """
        if skip < 0:
            raise BadRequestError(f"skip must be >= 0, got {skip!r}")
        self._drop_match = match
        self._drop_skip = skip
        self._drop_armed = True

    def drop_mid_stream(self, after_bytes: int) -> None:
        """Forward ``after_bytes`` more bytes of server answers, then close that connection."""
        if after_bytes < 0:
            raise BadRequestError(f"after_bytes must be >= 0, got {after_bytes!r}")
        self._cut_after = after_bytes

    def hide_server_close(self) -> None:
        """Until `forward`: when the server closes a connection, keep the client's side open.

        What the server sent before closing reaches the client; what the client sends after
        it is swallowed, and no answer comes. Each hidden close counts in ``fired``.
        """
        self._hide_close = True

    async def wait_fired(self, count: int = 1, timeout: float = 30.0) -> None:
        """Wait until ``fired`` reaches ``count``: a fault set off by another connection
        (a hidden close after ``pg_terminate_backend``, say) has happened.

        Raises:
            TimeoutError: It did not within ``timeout`` seconds.
        """

        async def reached() -> None:
            while self.fired < count:
                self._fired_changed.clear()
                await self._fired_changed.wait()

        await asyncio.wait_for(reached(), timeout)

    # --- plumbing ----------------------------------------------------------------------------

    def _fire(self) -> None:
        self.fired += 1
        self._fired_changed.set()

    def _matches(self, chunk: bytes) -> bool:
        match = self._drop_match
        if match is None:
            return True
        if isinstance(match, bytes):
            return match in chunk
        return bool(match(chunk))

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        link = _Link(writer)
        self._links.add(link)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if self._blackhole:
                # Read and discard until the client gives up or the proxy closes.
                while await reader.read(65536):
                    pass
                return
            try:
                server_reader, server_writer = await asyncio.open_connection(*self.target)
            except OSError:
                return
            link.server_writer = server_writer
            upstream = asyncio.ensure_future(self._client_to_server(reader, link))
            downstream = asyncio.ensure_future(self._server_to_client(server_reader, link))
            await link.done.wait()
            for pump in (upstream, downstream):
                pump.cancel()
            await asyncio.gather(upstream, downstream, return_exceptions=True)
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            link.close()
            self._links.discard(link)
            self._tasks.discard(task)

    async def _client_to_server(self, reader: asyncio.StreamReader, link: _Link) -> None:
        assert link.server_writer is not None
        try:
            while chunk := await reader.read(65536):
                self.chunks += 1
                if self._drop_armed and self._matches(chunk):
                    if self._drop_skip > 0:
                        self._drop_skip -= 1
                    else:
                        self._drop_armed = False
                        self._fire()
                        link.swallow = asyncio.Event()
                        link.server_writer.write(chunk)
                        await link.server_writer.drain()
                        # The server's answer (or the wait) ends the link, not the client.
                        with contextlib.suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(link.swallow.wait(), self.reply_wait)
                        link.close()
                        return
                if link.server_closed:
                    continue
                link.server_writer.write(chunk)
                await link.server_writer.drain()
        except ConnectionError:
            pass
        link.close()

    async def _server_to_client(self, reader: asyncio.StreamReader, link: _Link) -> None:
        try:
            while chunk := await reader.read(65536):
                if link.swallow is not None:
                    link.swallow.set()
                    return
                if self._cut_after is not None:
                    if len(chunk) > self._cut_after:
                        link.client_writer.write(chunk[: self._cut_after])
                        with contextlib.suppress(ConnectionError):
                            await link.client_writer.drain()
                        self._cut_after = None
                        self._fire()
                        link.close()
                        return
                    self._cut_after -= len(chunk)
                link.client_writer.write(chunk)
                await link.client_writer.drain()
            if self._hide_close:
                # The server closed: leave the client talking to nobody until the link ends.
                link.server_closed = True
                self._fire()
                return
        except ConnectionError:
            pass
        link.close()
