"""Open-loop load from `oha` (a native Rust generator), recorded in the request-row format.

oha releases requests on a fixed schedule (`-q` requests/s) and, with `--latency-correction`,
stamps each with the time its scheduler released it, so latency includes any wait for a free
connection. The run is a fixed count (`-n` = rate x duration), not oha's `-z` duration mode:
at the end of `-z` oha silently drops requests still queued for a connection (even with
`-w`), which are exactly the slowest ones of an overloaded run. With `-n` every scheduled
request is either answered or fails with a real error, and a target that cannot keep up
makes the run last longer instead.

oha writes one SQLite row per *answered* request (`--db-url`); requests without an HTTP
answer (timeouts, refused connections) are only counted in its JSON summary, by error
message, which `NativeLoadResult.errors` carries.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ingestlab.build.artifacts import SETUP_HINT, oha_root
from ingestlab.host.component import ArtifactMissing
from ingestlab.host.ports import require_loopback
from ingestlab.load.pinned import run_pinned
from ingestlab.load.rows import REQUEST_SCHEMA, WallClock
from ingestlab.quantiles import nearest_rank
from ingestlab.units import MS_PER_S


def oha_path() -> Path:
    """The oha binary: the pinned build under the cache, else the first `oha` on PATH."""
    built = oha_root() / "bin" / "oha"
    if built.exists():
        return built
    found = shutil.which("oha")
    if found:
        return Path(found)
    raise ArtifactMissing(f"oha not found at {built} nor on PATH: {SETUP_HINT}")


def oha_version(binary: Path) -> str:
    """e.g. "oha 1.16.0"."""
    return subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10,
                          check=True).stdout.strip()


@dataclass(frozen=True)
class NativeLoadResult:
    """One oha run. Rates in requests/s; CPU in % of one core."""

    requests: pl.DataFrame  # one row per answered request, REQUEST_SCHEMA (also at out_path)
    errors: dict[str, int]  # requests without an HTTP answer, by oha's error message
    planned: int  # requests scheduled (rate x duration); sent == planned for a finished run
    requested_rps: float
    achieved_rps: float  # answered requests / seconds from oha's start to the last answer
    # oha's CPU during the schedule. It saturates below 100 per core: loopback network work
    # also runs as softirq on its core, charged to no process (one core: behind from ~80%).
    cpu_percent: float
    schedule_lag_p99_ms: float | None  # how late oha's scheduler released requests
    schedule_lag_max_ms: float | None  # (None when failed requests make it unknowable)
    out_path: Path
    argv: tuple[str, ...]
    version: str

    @property
    def sent(self) -> int:
        """Requests oha sent or tried to send: answered plus failed."""
        return self.requests.height + sum(self.errors.values())


def oha_frame(db_path: Path, *, t0_wall_ns: int, bytes_sent: int, step: int = 0,
              phase: str = "measure") -> pl.DataFrame:
    """oha's SQLite table `oha` as request rows, sorted by intended start.

    oha stores seconds (float) relative to its own start instant; `t0_wall_ns` is the wall
    clock (epoch ns) taken to stand for that instant. Rows without `start_latency_correction`
    (runs without `-q --latency-correction`) use the actual start as the intended one.
    Every stored row had an HTTP answer, so `error_class` is null; `request_id` is null
    because oha cannot tag requests.
    """
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
        records = db.execute("SELECT start_latency_correction, start, end, status FROM oha").fetchall()
    raw = pl.DataFrame(records, orient="row",
                       schema={"intended": pl.Float64, "start": pl.Float64, "end": pl.Float64,
                               "status": pl.Int64})

    def wall_ns(seconds: pl.Expr) -> pl.Expr:
        return (seconds * 1e9).round().cast(pl.Int64) + t0_wall_ns

    return raw.select(
        request_id=pl.lit(None, pl.String),
        step=pl.lit(step, pl.Int32),
        phase=pl.lit(phase, pl.String),
        intended_start_ns=wall_ns(pl.coalesce("intended", "start")),
        actual_start_ns=wall_ns(pl.col("start")),
        end_ns=wall_ns(pl.col("end")),
        status=pl.col("status").cast(pl.Int16),
        bytes_sent=pl.lit(bytes_sent, pl.Int32),
        error_class=pl.lit(None, pl.String),
    ).cast(REQUEST_SCHEMA).sort("intended_start_ns")


def schedule_lag_ms(intended_s: pl.Series, rate_rps: float, *, skip_s: float = 0.0) -> tuple[float, float]:
    """(p99, max) of how late each release was against the ideal schedule first + i / rate,
    over the releases due from `skip_s` on (the warm-up, while oha opens its connections, is
    left out as the asyncio engine leaves it out of its own health).

    oha's scheduler sleeps until each request's slot (tokio timer, 1 ms ticks) and records the
    time it woke as the intended start, so its own lateness is *not* in the latency. About
    +-0.5 ms is timer granularity; a lag growing beyond that means oha is short of CPU.
    Needs every scheduled request (times in seconds, any order).
    """
    ordered = intended_s.sort()
    due_s = pl.int_range(ordered.len(), eager=True) / rate_rps
    lag_s = (ordered - ordered[0] - due_s).filter(due_s >= skip_s)
    if lag_s.len() == 0:
        return 0.0, 0.0
    p99_s = lag_s.to_frame("lag_s").select(nearest_rank(pl.col("lag_s"), 0.99)).item()
    return float(p99_s) * MS_PER_S, float(lag_s.max() or 0.0) * MS_PER_S


def run_oha(
    *,
    url: str,
    rate_rps: float,
    duration_s: float,
    body: bytes,
    out_path: Path,
    cores: tuple[int, ...] | None,
    connections: int,
    timeout_s: float,
    request_timeout_s: float = 10.0,
    content_type: str = "application/json",
    step: int = 0,
    phase: str = "measure",
    nice: int = 0,
    warmup_s: float = 0.0,
) -> NativeLoadResult:
    """POST `body` to `url` at `rate_rps` for `duration_s` seconds from oha pinned to `cores`.

    Exactly `round(rate_rps * duration_s)` requests over at most `connections` connections;
    each fails after `request_timeout_s` without an answer, and oha is killed (`ToolTimeout`)
    if it has not finished `timeout_s` seconds after launch. A target that cannot keep up
    makes the run outlast `duration_s` while oha works off its backlog.

    oha writes its rows only when it finishes, so a killed run leaves none.

    Rows go to `out_path` (parquet, REQUEST_SCHEMA). The intended start is when oha's
    scheduler released the request (within about 0.5 ms of its slot, see `schedule_lag_ms`).
    Timestamps: oha measures monotonic seconds from its own start; they become wall-clock
    epoch ns by adding a wall-clock reading taken right before launching oha. oha starts its
    clock after its own start-up, so every absolute timestamp of a run is early by the same
    few ms (about 7 ms warm, 25 ms cold on the study machine); durations and latencies between
    them are exact.

    `request_id` is null: oha sends the same body every time and cannot tag requests (its
    `-Z` picks random lines of a file but does not record which), so delivery checks for oha
    runs compare counts (answered 202 vs records in Kafka), not ids. `bytes_sent` is
    `len(body)` (oha's own `len_bytes` is the response size).
    """
    require_loopback(url)
    if timeout_s <= duration_s:
        raise ValueError(f"timeout_s ({timeout_s}) must exceed duration_s ({duration_s})")
    binary = oha_path()
    planned = max(1, round(rate_rps * duration_s))
    with tempfile.TemporaryDirectory(prefix="oha-") as tmp:
        work = Path(tmp)
        (work / "body").write_bytes(body)
        argv = [
            str(binary), url, "-m", "POST", "-D", str(work / "body"), "-T", content_type,
            "-q", repr(float(rate_rps)), "--latency-correction",
            "-n", str(planned), "-t", f"{round(request_timeout_s * 1000)}ms",
            "-c", str(connections), "--no-tui", "--db-url", str(work / "oha.db"),
            "--output-format", "json", "-o", str(work / "summary.json"),
        ]
        if cores:  # one runtime thread per core oha may use, not one per core of the machine
            argv += ["--worker-threads", str(len(cores))]
        clock = WallClock()
        run = run_pinned("oha", argv, cores=cores, nice=nice, log_path=work / "oha.log",
                         load_s=duration_s, timeout_s=timeout_s)
        if run.returncode != 0 or not (work / "oha.db").exists():
            raise RuntimeError(f"oha failed (exit {run.returncode}):\n{run.output[-4000:]}")
        frame = oha_frame(work / "oha.db", t0_wall_ns=clock.t0_wall_ns, bytes_sent=len(body),
                          step=step, phase=phase)
        errors = dict(json.loads((work / "summary.json").read_text())["errorDistribution"])
    out_path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(out_path)
    seconds = (frame["intended_start_ns"] - clock.t0_wall_ns) / 1e9
    last_end_s = float(frame["end_ns"].max() - clock.t0_wall_ns) / 1e9 if frame.height else 0.0
    lag_p99, lag_max = (schedule_lag_ms(seconds, rate_rps, skip_s=warmup_s) if not errors and frame.height
                        else (None, None))
    return NativeLoadResult(
        requests=frame,
        errors=errors,
        planned=planned,
        requested_rps=rate_rps,
        achieved_rps=frame.height / last_end_s if last_end_s > 0 else 0.0,
        cpu_percent=run.cpu_percent,
        schedule_lag_p99_ms=lag_p99,
        schedule_lag_max_ms=lag_max,
        out_path=out_path,
        argv=tuple(argv),
        version=oha_version(binary),
    )
