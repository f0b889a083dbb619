"""One worker process of the Python service: an aiohttp server on 127.0.0.1:PORT (SO_REUSEPORT,
shared with its sibling workers) and its own confluent-kafka producer.

`POST /api/ingest` answers 202 `{"status":"Accepted"}` once the record is enqueued
(ACK_MODE=enqueue) or once Kafka acknowledged it (ACK_MODE=acked; a failed delivery is a 500).
A thread blocked in `producer.poll(0.1)` serves delivery reports as they arrive and resolves each
waiting request through `loop.call_soon_threadsafe`, so acked mode adds no polling interval.

Every answer is JSON, including the errors aiohttp's HTTP parser meets before a handler runs
(`JsonRequestHandler.handle_error`) and a head or body that has not arrived within 5 s of the
request's first byte (408). SIGTERM: stop listening, let in-flight requests finish (10 s), flush
the producer (10 s), return.

With `Settings.memory_report_ms` > 0 (INGESTLAB_MEMORY_REPORT_MS; ours, not the article's)
librdkafka reports its statistics that often, and each report becomes one `ingestlab-memory
{...}` line on stdout (services/README.md, "Memory reports"), printed by the thread that polls.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from records import (
    BODY_LIMIT_BYTES,
    BODY_TOO_LARGE,
    PRODUCER_MESSAGE_MAX_BYTES,
    TOPIC,
    Refused,
    encode_record,
    media_type_problem,
)

INGEST_PATH = "/api/ingest"
HEALTH_PATH = "/healthz"
# A request's head and body must arrive within this many seconds of its first byte (408).
REQUEST_TIMEOUT_S = 5.0
# Idle keep-alive connections close after this many seconds (Node's default keepAliveTimeout).
KEEPALIVE_TIMEOUT_S = 5.0
SHUTDOWN_TIMEOUT_S = 10.0
FLUSH_TIMEOUT_S = 10.0
POLL_TIMEOUT_S = 0.1
METADATA_TIMEOUT_S = 2.0
LISTEN_BACKLOG = 511  # Node's default
READ_BYTES = 65_536
MEMORY_REPORT_PREFIX = "ingestlab-memory "
# Summed over the statistics' brokers in a memory report.
BROKER_QUEUE_FIELDS = ("outbuf_cnt", "outbuf_msg_cnt", "waitresp_cnt", "waitresp_msg_cnt")


def _json(doc: dict[str, str]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


ACCEPTED = _json({"status": "Accepted"})
PIPELINE_ERROR = "Internal pipeline error"
REQUEST_TIMEOUT_MESSAGE = f"Request not received within {int(REQUEST_TIMEOUT_S * 1000)} ms."


def answer(status: int, doc: dict[str, str]) -> web.Response:
    return web.Response(status=status, body=_json(doc), content_type="application/json")


def error(status: int, message: str) -> web.Response:
    return answer(status, {"error": message})


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Settings:
    """What a worker is told by its environment (serve.py reads it)."""

    port: int
    brokers: str
    acked: bool
    memory_report_ms: int = 0  # librdkafka's statistics every this many ms as memory reports; 0: none


def report_memory(stats_json: str) -> None:
    """librdkafka's statistics as one memory report line on stdout: the producer queue and its
    caps, and the requests (and their messages) waiting to be sent or answered, summed over
    every broker (a request is held by one broker only, so bootstrap and logical brokers add
    nothing twice)."""
    stats = json.loads(stats_json)
    brokers = stats.get("brokers", {}).values()
    report = {"source": "librdkafka", "t_ms": time.time_ns() // 1_000_000, "pid": os.getpid(),
              **{field: stats[field] for field in ("msg_cnt", "msg_size", "msg_max", "msg_size_max")},
              **{field: sum(broker.get(field, 0) for broker in brokers) for field in BROKER_QUEUE_FIELDS}}
    print(MEMORY_REPORT_PREFIX + json.dumps(report, separators=(",", ":")), flush=True)


def producer_config(brokers: str, memory_report_ms: int = 0) -> dict[str, Any]:
    """The article's producer settings (services/rust/src/main.rs), client.id of our own; with
    `memory_report_ms` > 0 also librdkafka's statistics that often, as memory reports."""
    config: dict[str, Any] = {
        "bootstrap.servers": brokers,
        "client.id": "telemetry-ingestion-python",
        "queue.buffering.max.messages": 100_000,
        "queue.buffering.max.ms": 10,
        "batch.num.messages": 1000,
        "compression.codec": "snappy",
        "request.required.acks": 1,
        "message.max.bytes": PRODUCER_MESSAGE_MAX_BYTES,
        "error_cb": lambda err: log(f"Kafka system-level error occurred: {err}"),
    }
    if memory_report_ms > 0:
        config |= {"statistics.interval.ms": memory_report_ms, "stats_cb": report_memory}
    return config


# --- HTTP: JSON answers for what the parser and the clock refuse ---------------------------------
def _raw_json_answer(status: int, reason: str, message: str) -> bytes:
    body = _json({"error": message})
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


class JsonRequestHandler(RequestHandler):
    """aiohttp's connection protocol with JSON error answers, and a 408 for a request whose
    head has not arrived within REQUEST_TIMEOUT_S of its first byte (aiohttp has no head
    timeout of its own). `request_began` is when the current request's first byte arrived."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request_began: float | None = None
        self.in_handler = False
        self._head_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        if data and not self.in_handler and self.request_began is None:
            self.request_began = time.monotonic()
            # A request has begun: the idle timer (which would close the connection silently,
            # at the same moment) gives way to this one; aiohttp re-arms it after the answer.
            self.keep_alive(True)
            self._head_timer = asyncio.get_running_loop().call_later(REQUEST_TIMEOUT_S, self._head_timed_out)
        super().data_received(data)

    def head_arrived(self) -> float:
        """The handler has the request: the head timer stops; returns the first byte's time."""
        self.in_handler = True
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        return self.request_began or time.monotonic()

    def handler_done(self, body_read: bool) -> None:
        """The answer is out. If the body was not read to its end, the connection closes after
        aiohttp drains the rest (the answer said so): those bytes begin no request."""
        if body_read:
            self.in_handler = False
            self.request_began = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        transport = self.transport
        if self.in_handler or transport is None or transport.is_closing():
            return
        transport.write(_raw_json_answer(408, "Request Timeout", REQUEST_TIMEOUT_MESSAGE))
        self.force_close()
        transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("a response has begun: nothing more to answer")
        if status >= 500:
            log(f"Unhandled request error: {exc!r}")
            response = error(500, PIPELINE_ERROR)
        else:
            # exc's own text names the parser's internals: say what the client can act on
            response = error(status, "Malformed HTTP request.")
        response.force_close()
        return response


class JsonServer(web.Server):
    """aiohttp's low-level server with `JsonRequestHandler` as each connection's protocol."""

    def __call__(self) -> RequestHandler:
        return JsonRequestHandler(self, loop=self._loop, **self._kwargs)


# --- Kafka ------------------------------------------------------------------------------------
class DeliveryPoller(threading.Thread):
    """Serves the producer's delivery reports: blocked in poll(POLL_TIMEOUT_S), which returns
    as soon as a report arrives, until `stop()`."""

    def __init__(self, producer: Producer) -> None:
        super().__init__(name="delivery-poller", daemon=True)
        self.producer = producer
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            self.producer.poll(POLL_TIMEOUT_S)

    def stop(self) -> None:
        self._stopping.set()
        self.join()


def _settle(future: asyncio.Future, err: KafkaError | None) -> None:
    if not future.done():
        future.set_result(err)


def _log_failed_delivery(err: KafkaError | None, _msg: Message) -> None:
    if err is not None:
        log(f"Failed to commit message to broker: {err}")


class Ingest:
    """The request handler of one worker: routes, the input rules, the producer."""

    def __init__(self, producer: Producer, *, acked: bool, siblings_ready: Callable[[], bool]) -> None:
        self.producer = producer
        self.acked = acked
        self.ready = False  # this worker's producer reached the broker (metadata answered)
        self.siblings_ready = siblings_ready
        self.loop = asyncio.get_running_loop()

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        protocol = request.protocol
        began = protocol.head_arrived() if isinstance(protocol, JsonRequestHandler) else time.monotonic()
        try:
            response = await self.route(request, began)
        finally:
            body_read = request.content.is_eof()
            if isinstance(protocol, JsonRequestHandler):
                protocol.handler_done(body_read)
        if not body_read:
            response.force_close()  # the unread rest of the body is no next request
        return response

    async def route(self, request: web.BaseRequest, began: float) -> web.StreamResponse:
        if request.path == INGEST_PATH and request.method == "POST":
            return await self.ingest(request, began)
        if request.path == HEALTH_PATH and request.method == "GET":
            # every worker's, as a request may reach any of them
            if self.ready and self.siblings_ready():
                return answer(200, {"status": "ok"})
            return answer(503, {"status": "connecting"})
        return error(404, "Not found.")

    async def ingest(self, request: web.BaseRequest, began: float) -> web.StreamResponse:
        try:
            problem = media_type_problem(request.headers.get("Content-Type"),
                                         request.headers.get("Content-Encoding"))
            if problem is not None:
                raise Refused(415, problem)
            body = await read_body(request, deadline=began + REQUEST_TIMEOUT_S)
            record = encode_record(body)
        except Refused as refused:
            return error(refused.status, refused.message)
        try:
            if not self.acked:
                self.producer.produce(TOPIC, record, on_delivery=_log_failed_delivery)
                return web.Response(status=202, body=ACCEPTED, content_type="application/json")
            delivered = self.loop.create_future()
            self.producer.produce(TOPIC, record, on_delivery=self._resolver(delivered))
            failure = await delivered
        except (BufferError, KafkaException) as exc:  # BufferError: librdkafka's queue is full
            log(f"Ingestion production failure: {exc}")
            return error(500, PIPELINE_ERROR)
        if failure is not None:
            log(f"Transmission to Kafka broker failed: {failure}")
            return error(500, PIPELINE_ERROR)
        return web.Response(status=202, body=ACCEPTED, content_type="application/json")

    def _resolver(self, future: asyncio.Future) -> Callable[[KafkaError | None, Message], None]:
        """A delivery callback (run on the poller thread) that hands the outcome to `future`."""
        loop = self.loop
        return lambda err, _msg: loop.call_soon_threadsafe(_settle, future, err)

    async def wait_for_broker(self) -> None:
        """Ask for metadata until the broker answers, then report ready (/healthz 200)."""
        while True:
            try:
                await self.loop.run_in_executor(None, self.producer.list_topics, None, METADATA_TIMEOUT_S)
                self.ready = True
                return
            except KafkaException as exc:
                log(f"waiting for the broker: {exc}")


async def read_body(request: web.BaseRequest, *, deadline: float) -> bytes:
    """The body, at most BODY_LIMIT_BYTES (413 beyond: at once if Content-Length says so),
    complete by `deadline` (time.monotonic(); 408 after), framing intact (400 otherwise)."""
    declared = request.content_length
    if declared is not None and declared > BODY_LIMIT_BYTES:
        raise Refused(413, BODY_TOO_LARGE)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
            while chunk := await request.content.read(READ_BYTES):
                size += len(chunk)
                if size > BODY_LIMIT_BYTES:
                    raise Refused(413, BODY_TOO_LARGE)
                chunks.append(chunk)
    except TimeoutError:
        raise Refused(408, REQUEST_TIMEOUT_MESSAGE) from None
    except HttpProcessingError:  # a broken chunked framing, found while reading the body
        raise Refused(400, "Unreadable request body.") from None
    return b"".join(chunks)


# --- the worker's life --------------------------------------------------------------------------
async def serve(settings: Settings, *, on_ready: Callable[[], None],
                siblings_ready: Callable[[], bool]) -> int:
    """Serve until SIGTERM or SIGINT; returns the exit code (0: flushed). `on_ready` runs once
    the producer reached the broker; /healthz is 200 once it has and `siblings_ready()`."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    for signum in stop_signals:
        loop.add_signal_handler(signum, stopping.set)
    # The supervisor forks with them blocked (serve.py); threads started later inherit the
    # mask, so the signals reach this, the loop's, thread.
    producer = Producer(producer_config(settings.brokers, settings.memory_report_ms))
    poller = DeliveryPoller(producer)
    poller.start()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)
    ingest = Ingest(producer, acked=settings.acked, siblings_ready=siblings_ready)
    # auto_decompress off: a compressed body is refused (415), not inflated.
    runner = web.ServerRunner(JsonServer(ingest, keepalive_timeout=KEEPALIVE_TIMEOUT_S, auto_decompress=False,
                                         access_log=None),
                              shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", settings.port, reuse_port=True, backlog=LISTEN_BACKLOG)
    await site.start()
    log(f"Ingestion microservice running on http://127.0.0.1:{settings.port} "
        f"({'acked' if settings.acked else 'enqueue'})")
    ready = asyncio.ensure_future(_announce_ready(ingest, on_ready))
    await stopping.wait()
    log("SIGTERM received. Shutting down microservice...")
    ready.cancel()
    await runner.cleanup()  # stops listening, waits for in-flight requests, closes connections
    left = await loop.run_in_executor(None, producer.flush, FLUSH_TIMEOUT_S)
    poller.stop()
    if left:
        log(f"Producer flush failed: {left} messages not delivered")
        return 1
    log("Kafka connection closed. Safe exit.")
    return 0


async def _announce_ready(ingest: Ingest, on_ready: Callable[[], None]) -> None:
    await ingest.wait_for_broker()
    log("Kafka producer ready")
    on_ready()
