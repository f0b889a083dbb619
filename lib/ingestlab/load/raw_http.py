"""One raw HTTP/1.1 exchange: any bytes, any headers, sent at any pace, every wait bounded.

For the bad-input corpus, which must send what a well-behaved client never would (malformed
JSON, a wrong Content-Length, a body trickled over seconds or never finished), and record
whatever comes back, including nothing. The request goes out as given (`RawRequest`); the
answer is every byte the server sent, parsed by httptools (llhttp, the parser Node.js uses) for
its status and body. An asyncio Protocol rather than streams: when a server answers early and
resets the connection, a StreamReader raises and drops the answer it already holds; the
protocol keeps it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httptools

from ingestlab.host.ports import LOOPBACK

# The part of an answer's body that is kept (the services' answers are under 200 bytes).
BODY_KEPT_BYTES = 2_000


@dataclass(frozen=True)
class RawRequest:
    """The bytes of one request: `head` (request line and headers, through the blank line),
    then the body in `pieces`, with `gap_s` seconds before each piece after the first. A
    stalled upload is pieces that stop short of what the head declares."""

    head: bytes
    pieces: tuple[bytes, ...] = ()
    gap_s: float = 0.0

    @property
    def body_bytes(self) -> int:
        return sum(len(piece) for piece in self.pieces)


@dataclass(frozen=True)
class RawAnswer:
    """What came back. `status` 0: no status line arrived (refused, dropped or timed out);
    `body`: its first `BODY_KEPT_BYTES` bytes; `elapsed_s`: from connecting to the answer's
    end (or to giving up); `error`: why the exchange ended without a complete answer, or None."""

    status: int
    body: bytes
    elapsed_s: float
    error: str | None = None


def request_head(method: str, target: str, *, port: int,
                 headers: Sequence[tuple[str, str]] = ()) -> bytes:
    """The request line, Host, `headers` in order, `Connection: close` and the blank line.

    Header values go out as latin-1 bytes, unchecked: a case may send what a client should not.
    """
    lines = [f"{method} {target} HTTP/1.1", f"Host: {LOOPBACK}:{port}",
             *(f"{name}: {value}" for name, value in headers), "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")


class _Exchange(asyncio.Protocol):
    """Collects one answer; `done` resolves when it is complete or the connection ends."""

    def __init__(self) -> None:
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.body = bytearray()
        self.error: str | None = None
        self.complete = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._finish(f"malformed answer: {exc}")

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(None if self.complete else
                     f"connection closed before a complete answer ({type(exc).__name__ if exc else 'EOF'})")

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        room = BODY_KEPT_BYTES - len(self.body)
        if room > 0:
            self.body += body[:room]

    def on_message_complete(self) -> None:
        self.complete = True
        self._finish(None)

    def _finish(self, error: str | None) -> None:
        if not self.done.done():
            self.error = error
            self.done.set_result(None)


async def _write(exchange: _Exchange, request: RawRequest) -> None:
    """Write the head and the pieces at the request's pace; stop if the answer came first."""
    assert exchange.transport is not None
    exchange.transport.write(request.head)
    for index, piece in enumerate(request.pieces):
        if index and request.gap_s:
            await asyncio.sleep(request.gap_s)
        if exchange.done.done() or exchange.transport.is_closing():
            return
        exchange.transport.write(piece)


async def exchange(port: int, request: RawRequest, *, timeout_s: float) -> RawAnswer:
    """Send `request` to 127.0.0.1:`port` and wait at most `timeout_s` seconds in all
    (connecting, sending at the request's pace, answering) for the answer."""
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    answer: _Exchange | None = None
    error: str | None = None
    try:
        async with asyncio.timeout(timeout_s):
            _, answer = await loop.create_connection(_Exchange, LOOPBACK, port)
            writer = asyncio.create_task(_write(answer, request))
            try:
                await answer.done
            finally:
                writer.cancel()
    except TimeoutError:
        error = f"no complete answer within {timeout_s} s"
    except OSError as exc:
        error = f"connection failed: {type(exc).__name__}"
    finally:
        if answer is not None and answer.transport is not None:
            answer.transport.abort()
    elapsed_s = time.monotonic() - started
    if answer is None:
        return RawAnswer(0, b"", elapsed_s, error)
    return RawAnswer(answer.status, bytes(answer.body), elapsed_s, error or answer.error)
