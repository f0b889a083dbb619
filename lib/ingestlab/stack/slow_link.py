"""`SlowLink`: a TCP proxy on loopback in the path between the services and the broker, which
can add latency and limit bandwidth on demand (the `slow` fault of `experiments.faults`).

Why a proxy, not `tc qdisc ... netem` on `lo`: this VM's kernel (6.18, a Firecracker build) has
no netem (CONFIG_NET_SCH_NETEM unset; `tc qdisc add dev lo root netem delay 10ms` answers
"Specified qdisc kind is unknown", tried as root in a network namespace of its own); tbf and htb
exist but only shape bandwidth, not delay; and a qdisc on `lo` would shape the loopback traffic
of everyone measuring on this machine. The proxy carries only the broker's traffic and ends
with the process that started it.

Kafka clients bootstrap from one address, then connect to the address the broker advertises.
For the proxy to stay in the path, the broker advertises the proxy's port
(`KafkaBroker(advertised_port=...)`) and the services bootstrap from it as well
(`Stack(broker_link=True)` does both).

Model of the link: each direction of each connection has a reader that stamps every chunk it
reads and puts it into a bounded queue, and a sender that writes the chunks in order, each no
earlier than its stamp + `delay_s`, and, with a bandwidth limit, no faster than the link's one
shared wire per direction allows (all connections queue for it, as on one cable). The bounded
queue and the writer's drain make a slow link push back on the sending socket, as a slow
network does. Without delay and limit a chunk is written as soon as it is read.

Runs an asyncio loop in a daemon thread of this process (it inherits the thread's CPU
affinity: `Stack` keeps it on the load cores).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from dataclasses import dataclass

from ingestlab.host.ports import LOOPBACK

# One read's most bytes, and how many read chunks may wait per direction of a connection
# before the reader stops reading (= backpressure on the sender): at most 1 MiB in the proxy.
CHUNK_BYTES = 64 * 1024
QUEUED_CHUNKS = 16
_CLOSE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class LinkShape:
    """What the link does to the bytes it carries: one-way added delay (s) and the most
    bytes per second per direction (None: no limit)."""

    delay_s: float = 0.0
    bandwidth_bytes_per_s: float | None = None

    def __post_init__(self) -> None:
        if self.delay_s < 0:
            raise ValueError(f"delay_s must be >= 0, got {self.delay_s!r}")
        if self.bandwidth_bytes_per_s is not None and self.bandwidth_bytes_per_s <= 0:
            raise ValueError(f"bandwidth_bytes_per_s must be > 0, got {self.bandwidth_bytes_per_s!r}")


CLEAR = LinkShape()


class _Wire:
    """One direction's shared bandwidth: when the wire is next free (monotonic s)."""

    def __init__(self) -> None:
        self.free_at_s = 0.0

    def reserve(self, size: int, bandwidth_bytes_per_s: float) -> float:
        """Book `size` bytes on the wire; returns when they have been carried (monotonic s)."""
        start = max(time.monotonic(), self.free_at_s)
        self.free_at_s = start + size / bandwidth_bytes_per_s
        return self.free_at_s


class SlowLink:
    """A TCP proxy listening on 127.0.0.1:`port`, forwarding to 127.0.0.1:`target_port`.

    ```
    with SlowLink() as link:               # listening from here on
        link.target_port = broker_port     # connections before this are closed at once
        link.shape = LinkShape(delay_s=0.1, bandwidth_bytes_per_s=2e6)
        ...
        link.shape = CLEAR
    ```
    `shape` may be changed at any time from any thread; it applies to every chunk sent from
    then on. `bytes_carried` counts bytes written, per direction ("up": to the target).
    """

    def __init__(self, *, target_port: int | None = None) -> None:
        # Bound now, so the port is known (and ours) before the broker is configured with it.
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port: int = self._listener.getsockname()[1]
        self.target_port = target_port
        self.shape = CLEAR
        self.bytes_carried = {"up": 0, "down": 0}
        self.connections = 0
        self._wires = {"up": _Wire(), "down": _Wire()}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> str:
        """"127.0.0.1:<port>", for clients (e.g. a service's KAFKA_BROKERS)."""
        return f"{LOOPBACK}:{self.port}"

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> SlowLink:
        if self._thread is not None:
            raise RuntimeError("this link was already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        listening = threading.Event()

        async def serve() -> None:
            self._server = await asyncio.start_server(self._handle, sock=self._listener,
                                                      limit=CHUNK_BYTES)
            listening.set()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(serve())
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="ingestlab-slow-link", daemon=True)
        self._thread.start()
        if not listening.wait(_CLOSE_TIMEOUT_S):
            raise RuntimeError(f"the slow link on {self.address} did not start listening")
        return self

    def close(self) -> None:
        """Stop listening, drop every connection, stop the thread (safe to call twice)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            self._listener.close()
            return
        with contextlib.suppress(TimeoutError, RuntimeError):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(_CLOSE_TIMEOUT_S)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_CLOSE_TIMEOUT_S)
        self._listener.close()

    def __enter__(self) -> SlowLink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> dict[str, object]:
        return {"address": self.address, "target_port": self.target_port,
                "connections": self.connections, "bytes_carried": dict(self.bytes_carried)}

    # --- the loop's side ---------------------------------------------------------------------
    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(client_writer)
        try:
            if self.target_port is None:
                return
            try:
                target_reader, target_writer = await asyncio.open_connection(
                    LOOPBACK, self.target_port, limit=CHUNK_BYTES)
            except OSError:
                return  # the target is down (e.g. a killed broker): the client sees a closed connection
            self._writers.add(target_writer)
            self.connections += 1
            pumps = [asyncio.create_task(self._pump(client_reader, target_writer, "up")),
                     asyncio.create_task(self._pump(target_reader, client_writer, "down"))]
            try:
                # The first direction to end (EOF or error) ends the connection.
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
                target_writer.close()
                self._writers.discard(target_writer)
        finally:
            client_writer.close()
            self._writers.discard(client_writer)
            self._tasks.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str) -> None:
        """Carry one direction: a reader filling a bounded queue, a sender emptying it."""
        chunks: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(QUEUED_CHUNKS)

        async def read() -> None:
            try:
                while data := await reader.read(CHUNK_BYTES):
                    await chunks.put((time.monotonic(), data))
            except OSError:
                pass
            await chunks.put(None)

        reading = asyncio.create_task(read())
        wire = self._wires[direction]
        try:
            while (item := await chunks.get()) is not None:
                read_at, data = item
                shape = self.shape
                due = read_at + shape.delay_s
                if shape.bandwidth_bytes_per_s is not None:
                    due = max(due, wire.reserve(len(data), shape.bandwidth_bytes_per_s))
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
                self.bytes_carried[direction] += len(data)
        except OSError:
            pass
        finally:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
