"""A closed-loop burst: send a fixed list of requests with bounded concurrency.

For functional checks (the smoke run, integration tests), not for latency measurements:
the open-loop engine (`ingestlab.load.engine`) measures latency. Rows follow
`ingestlab.load.rows.REQUEST_SCHEMA`, with intended start = actual start.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import aiohttp
import polars as pl

from ingestlab.host.ports import require_loopback
from ingestlab.load.own_loop import run_in_own_loop
from ingestlab.load.rows import REQUEST_SCHEMA, WallClock


async def _send_all(url: str, items: Sequence[tuple[str, bytes]], concurrency: int,
                    timeout_s: float) -> list[tuple]:
    clock = WallClock()
    rows: list[tuple] = []
    queue = iter(items)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    headers = {"Content-Type": "application/json"}

    async def worker(session: aiohttp.ClientSession) -> None:
        for request_id, body in queue:  # the shared iterator hands each item out once
            start = clock.wall_ns(time.monotonic_ns())
            status, error = 0, None
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    status = response.status
            except (TimeoutError, aiohttp.ClientError) as exc:
                error = type(exc).__name__
            rows.append((request_id, 0, "measure", start, start, clock.wall_ns(time.monotonic_ns()),
                         status, len(body), error))

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return rows


def send_burst(url: str, items: Sequence[tuple[str, bytes]], *, concurrency: int = 16,
               timeout_s: float = 10.0) -> pl.DataFrame:
    """POST every `(request_id, body)` to `url`; one row per request.

    Runs its own event loop (`run_in_own_loop`), so it also works inside Jupyter.
    """
    require_loopback(url)
    rows = run_in_own_loop(_send_all(url, items, concurrency, timeout_s))
    return pl.DataFrame(rows, schema=REQUEST_SCHEMA, orient="row")
