"""Telemetry ingestion service (Python): POST /api/ingest -> validate -> Kafka `data-ingestion`.

aiohttp + confluent-kafka, run the way a Python service is deployed: one worker process per core
this process may run on (`os.sched_getaffinity`; env WORKERS overrides), each listening on
127.0.0.1:PORT with SO_REUSEPORT and holding its own producer (worker.py). This parent process
forks them after the imports (shared pages), forwards SIGTERM/SIGINT to them and exits 0 once
all exited 0. A worker that exits on its own takes the service down (its siblings get SIGTERM):
a crash is seen, not hidden by a restart.

Env: PORT (default 8080), KAFKA_BROKERS (default 127.0.0.1:9092), ACK_MODE `acked` (202 after
Kafka acknowledged the record, the default) or `enqueue` (202 once the record is in the
producer's queue), WORKERS, INGESTLAB_MEMORY_REPORT_MS (memory reports every that many ms;
unset, empty or 0: none).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import mmap
import os
import signal
import sys

from worker import Settings, log, serve

ACK_MODES = ("acked", "enqueue")
PR_SET_PDEATHSIG = 1
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def settings_from_env(env: os._Environ[str] | dict[str, str]) -> Settings:
    mode = env.get("ACK_MODE", "acked")
    if mode not in ACK_MODES:
        raise SystemExit(f"ACK_MODE must be one of {ACK_MODES}, got {mode!r}")
    memory_report_ms = int(env.get("INGESTLAB_MEMORY_REPORT_MS") or 0)
    if memory_report_ms < 0:
        raise SystemExit(f"INGESTLAB_MEMORY_REPORT_MS must be a whole number of ms, got {memory_report_ms}")
    return Settings(port=int(env.get("PORT", "8080")), brokers=env.get("KAFKA_BROKERS", "127.0.0.1:9092"),
                    acked=mode == "acked", memory_report_ms=memory_report_ms)


def worker_count(env: os._Environ[str] | dict[str, str]) -> int:
    """WORKERS if set (at least 1), else the number of cores this process may run on."""
    return max(1, int(env.get("WORKERS") or len(os.sched_getaffinity(0))))


def _die_with_parent(parent: int) -> None:
    """SIGTERM this worker when the parent dies (so it flushes and exits, never lingers)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl
        os.kill(os.getpid(), signal.SIGTERM)


def _run_worker(index: int, board: mmap.mmap, settings: Settings, parent: int) -> int:
    """A forked worker's life; `board` holds one byte per worker, 1 once its producer is ready."""
    _die_with_parent(parent)

    def on_ready() -> None:
        board[index] = 1

    def all_ready() -> bool:
        return board.find(b"\0") == -1

    try:
        return asyncio.run(serve(settings, on_ready=on_ready, siblings_ready=all_ready))
    except Exception as exc:  # noqa: BLE001 - the parent reports the exit code; say why here
        log(f"worker {index} failed: {exc!r}")
        return 1


def supervise(workers: int, settings: Settings) -> int:
    """Fork `workers` workers and wait for all of them; returns the service's exit code."""
    board = mmap.mmap(-1, workers)  # shared with the children: fork keeps anonymous maps shared
    parent = os.getpid()
    children: dict[int, int] = {}
    # Blocked until each process has its handlers (a worker unblocks them in worker.serve): a
    # SIGTERM during start-up waits for them instead of killing a process half set up.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    for index in range(workers):
        pid = os.fork()
        if pid == 0:
            os._exit(_run_worker(index, board, settings, parent))
        children[pid] = index

    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):  # exited, not yet waited for
                os.kill(pid, signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    log(f"supervising {workers} worker(s): {sorted(children)}")
    code = 0
    while children:
        pid, status = os.wait()
        index = children.pop(pid)
        exit_code = os.waitstatus_to_exitcode(status)
        if exit_code != 0 or not stopping:
            log(f"worker {index} (pid {pid}) exited with {exit_code}"
                + ("" if stopping else "; stopping the service"))
            code = code or exit_code or 1
        if not stopping:
            forward(signal.SIGTERM, None)
    return code


def main() -> int:
    return supervise(worker_count(os.environ), settings_from_env(os.environ))


if __name__ == "__main__":
    sys.exit(main())
