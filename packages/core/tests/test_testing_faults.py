"""FaultProxy does what each fault promises, against a local request/answer server.

The database fault tests (tests/test_connection_faults.py, the repository's
test_fault_outcomes.py) use it against real servers; these pin the proxy's own behaviour
without one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from kysera.core.testing import FaultProxy

HANG = 30  # a guard against a hang, not a timing assertion


class AnswerServer:
    """Answers every line with ``ok:<line>`` and records the lines it received; closes the
    connection after answering ``quit``."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                self.received.append(line.strip())
                writer.write(b"ok:" + line)
                await writer.drain()
                if line.strip() == b"quit":
                    break
        except ConnectionError:
            pass
        finally:
            writer.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port


@pytest_asyncio.fixture
async def proxy() -> AsyncIterator[tuple[FaultProxy, AnswerServer]]:
    answers = AnswerServer()
    answers.server = await asyncio.start_server(answers.handle, "127.0.0.1", 0)
    async with FaultProxy("127.0.0.1", answers.port, reply_wait=5) as fault_proxy:
        yield fault_proxy, answers
    answers.server.close()
    await answers.server.wait_closed()


async def ask(port: int, *lines: bytes) -> list[bytes]:
    """Send each line and read its answer; stop at the first missing answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answers = []
    try:
        for line in lines:
            writer.write(line + b"\n")
            await writer.drain()
            answer = await asyncio.wait_for(reader.readline(), HANG)
            if not answer:
                break
            answers.append(answer.strip())
    finally:
        writer.close()
    return answers


async def send(port: int, line: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a connection through ``port`` and send ``line`` on it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(line)
    await writer.drain()
    return reader, writer


async def test_it_forwards_both_ways(proxy: tuple[FaultProxy, AnswerServer]) -> None:
    fault_proxy, answers = proxy
    assert await ask(fault_proxy.port, b"a", b"b") == [b"ok:a", b"ok:b"]
    assert answers.received == [b"a", b"b"]
    assert (fault_proxy.connections, fault_proxy.chunks, fault_proxy.fired) == (1, 2, 0)


async def test_drop_after_forward_delivers_the_chunk_and_loses_the_answer(
    proxy: tuple[FaultProxy, AnswerServer],
) -> None:
    fault_proxy, answers = proxy
    fault_proxy.drop_after_forward(b"COMMIT", skip=1)
    got = await ask(fault_proxy.port, b"COMMIT 1", b"select", b"COMMIT 2", b"after")
    # The first COMMIT is let through (skip=1); the second reaches the server, its answer
    # does not reach the client, and the connection is closed.
    assert got == [b"ok:COMMIT 1", b"ok:select"]
    assert answers.received == [b"COMMIT 1", b"select", b"COMMIT 2"]
    assert fault_proxy.fired == 1
    # It fired once: the next connection is forwarded normally.
    assert await ask(fault_proxy.port, b"again") == [b"ok:again"]


async def test_a_blackhole_accepts_and_never_answers_until_forward(
    proxy: tuple[FaultProxy, AnswerServer],
) -> None:
    fault_proxy, answers = proxy
    fault_proxy.blackhole()
    reader, writer = await send(fault_proxy.port, b"hello\n")
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(reader.readline(), 0.2)
    writer.close()
    assert answers.received == []
    fault_proxy.forward()
    assert await ask(fault_proxy.port, b"back") == [b"ok:back"]


async def test_drop_mid_stream_cuts_an_answer_after_so_many_bytes(
    proxy: tuple[FaultProxy, AnswerServer],
) -> None:
    fault_proxy, _ = proxy
    fault_proxy.drop_mid_stream(after_bytes=5)
    reader, writer = await send(fault_proxy.port, b"abcdefgh\n")
    received = await asyncio.wait_for(reader.read(), HANG)  # until the proxy closes
    writer.close()
    assert received == b"ok:ab"
    assert fault_proxy.fired == 1


async def test_hide_server_close_keeps_the_client_connected_to_nobody_until_forward(
    proxy: tuple[FaultProxy, AnswerServer],
) -> None:
    fault_proxy, answers = proxy
    fault_proxy.hide_server_close()
    reader, writer = await send(fault_proxy.port, b"quit\n")
    # What the server sent before closing arrives; its close does not.
    assert await asyncio.wait_for(reader.readline(), HANG) == b"ok:quit\n"
    await fault_proxy.wait_fired(timeout=HANG)
    assert fault_proxy.fired == 1
    writer.write(b"anyone there?\n")
    await writer.drain()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(reader.read(), 0.2)

    fault_proxy.forward()  # the close is passed on now
    assert await asyncio.wait_for(reader.read(), HANG) == b""
    writer.close()
    assert answers.received == [b"quit"]
    assert await ask(fault_proxy.port, b"again") == [b"ok:again"]


async def test_wait_fired_gives_up_after_its_timeout(
    proxy: tuple[FaultProxy, AnswerServer],
) -> None:
    fault_proxy, _ = proxy
    with pytest.raises(TimeoutError):
        await fault_proxy.wait_fired(timeout=0.05)


async def test_bad_arguments_are_refused(proxy: tuple[FaultProxy, AnswerServer]) -> None:
    fault_proxy, _ = proxy
    with pytest.raises(ValueError, match="skip"):
        fault_proxy.drop_after_forward(skip=-1)
    with pytest.raises(ValueError, match="after_bytes"):
        fault_proxy.drop_mid_stream(-1)
    assert fault_proxy.url("postgresql+asyncpg://u:p@db.example:5432/app") == (
        f"postgresql+asyncpg://u:p@127.0.0.1:{fault_proxy.port}/app"
    )
