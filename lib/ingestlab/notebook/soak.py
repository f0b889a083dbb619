"""Notebook 03: a soak run beside the article's soak: the conditions held, CPU per thread and
per core, the pattern of each service's memory (RSS and Node's V8 heap, in MiB), the GC
pauses' requests in flight, and the article's memory and p99 claims beside the measurements;
and the newest long soak of this machine (`long_soak_runs`) with its memory's trend.

Pure functions of run frames (polars in, polars out), so each is testable on small frames;
the notebook wraps the frames in `display.Table` to show them whole.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from typing import Any

import polars as pl

from ingestlab.analysis.memory import HEAP_CLIMB_POINTS, heap_series, memory_pattern
from ingestlab.config import StudyConfig
from ingestlab.notebook.article import article_claims, article_fact
from ingestlab.quantiles import nearest_rank
from ingestlab.results import Run, find_runs
from ingestlab.summaries import SoakSummary
from ingestlab.telemetry.sampler import cpu_by_core, cpu_by_thread
from ingestlab.units import MIB

# memory_pattern's results, in its order; those in _PATTERN_BYTES are bytes, shown in MiB.
_PATTERN_COLUMNS = ("classification", "mean", "p5", "p95", "amplitude", "amplitude_pct", "peak", "drops",
                    "period_s", "samples", "steady_samples")
_PATTERN_BYTES = frozenset({"mean", "p5", "p95", "amplitude", "peak"})
# A soak this long or longer is a long soak (notebook 03's section of that name).
LONG_SOAK_S = 30 * 60.0


def soak_conditions(run: Run) -> pl.DataFrame:
    """Per service of a soak run: the rate held (req/s), how it was chosen, for how long (s),
    with which generator, what was achieved, and the same as a share (%) of the article's
    soak (data/article_facts.csv: `soak_rate_rps`, `soak_duration_h`)."""
    article_rate_rps = article_fact("soak_rate_rps").value
    article_duration_s = dt.timedelta(hours=article_fact("soak_duration_h").value).total_seconds()
    summary: SoakSummary = run.summary
    rows = [
        {
            "service": service,
            "rate_rps": found.rate_rps,
            "rate_source": summary.rate_source,
            "achieved_rps": found.achieved_rps,
            "duration_s": found.duration_s,
            "engine": found.engine,
            "accepted": found.accepted,
            "lost": found.lost,
            "article_rate_rps": article_rate_rps,
            "article_duration_s": article_duration_s,
        }
        for service, found in summary.services.items()
    ]
    frame = pl.DataFrame(rows, infer_schema_length=None)
    return frame.with_columns(
        rate_pct_of_article=100 * pl.col("rate_rps") / pl.col("article_rate_rps"),
        duration_pct_of_article=100 * pl.col("duration_s") / pl.col("article_duration_s"),
    )


def _per_service(frame: pl.DataFrame, compute: Callable[[pl.DataFrame], pl.DataFrame]) -> pl.DataFrame:
    """`compute` of each service's rows of `frame`, concatenated, `service` first."""
    parts = [
        compute(frame.filter(pl.col("service") == service)).with_columns(service=pl.lit(service))
        for service in frame["service"].unique(maintain_order=True)
    ]
    return pl.concat(parts, how="diagonal_relaxed").select("service", pl.exclude("service"))


def cpu_by_thread_per_service(thread_samples: pl.DataFrame, *, by: str = "name") -> pl.DataFrame:
    """`telemetry.sampler.cpu_by_thread` of each service's thread samples, with `service`
    (`core_pct`: % of one core).

    Per service, because the services of a run are sampled one after the other: over the
    frame as a whole each one's CPU would be divided by both windows."""
    return _per_service(thread_samples, functools.partial(cpu_by_thread, by=by))


def cpu_by_core_per_service(thread_samples: pl.DataFrame) -> pl.DataFrame:
    """`telemetry.sampler.cpu_by_core` of each service's thread samples, with `service`."""
    return _per_service(thread_samples, cpu_by_core)


def _memory_series(samples: pl.DataFrame, requests: pl.DataFrame, gc: pl.DataFrame | None
                   ) -> list[tuple[str, pl.DataFrame, str]]:
    """(series name, frame with `load_ns`, value column in bytes) of each series to classify:
    the RSS of each service's main process and, with GC events, Node's V8 heap."""
    starts = requests.group_by("service").agg(load_ns=pl.col("intended_start_ns").min())
    # The sampler reads the main process first: its pid is that of the service's first sample.
    main = samples.filter(pl.col("pid") == pl.col("pid").sort_by("t_ns").first().over("service"))
    series = [("RSS", main.join(starts, on="service"), "rss_bytes")]
    if gc is not None and gc.height:
        named = gc if "service" in gc.columns else gc.with_columns(service=pl.lit("node"))
        heap = heap_series(named, climb_points=HEAP_CLIMB_POINTS)
        series.append(("V8 heap", heap.join(starts, on="service"), "heap_bytes"))
    return series


def _pattern_row(service: str, series: str, found: Mapping[str, Any]) -> dict[str, Any]:
    """One row of `memory_patterns` from `memory_pattern`'s result: bytes as MiB (`_mib`)."""
    row: dict[str, Any] = {"service": service, "series": series}
    for key in _PATTERN_COLUMNS:
        value = found[key]
        if key in _PATTERN_BYTES:
            row[f"{key}_mib"] = value / MIB if value is not None else None
        else:
            row[key] = value
    return row


def memory_patterns(samples: pl.DataFrame, requests: pl.DataFrame, gc: pl.DataFrame | None = None
                    ) -> pl.DataFrame:
    """`analysis.memory.memory_pattern` per service of a soak run, in MiB: the RSS of each
    service's own process and, from `gc`, Node's V8 heap (objects, before and after each
    collection, with `HEAP_CLIMB_POINTS` points on each climb between collections: see
    `heap_series`; `samples` counts them).

    Only samples from the service's first request on count (the soak samples from before the
    load starts); the pattern's own warm-up (its first 20%) is then left out of the steady
    state. The main process is the pid of the service's first sample (the sampler reads it
    first). One row per service and series: service, series ("RSS" or "V8 heap"),
    classification (flat / sawtooth / irregular), mean_mib, p5_mib, p95_mib, amplitude_mib,
    amplitude_pct, peak_mib, drops, period_s, samples, steady_samples. A series with too
    few samples gets classification "too few samples".
    """
    rows = []
    for name, frame, value in _memory_series(samples, requests, gc):
        for service in frame["service"].unique(maintain_order=True):
            mine = frame.filter((pl.col("service") == service) & (pl.col("t_ns") >= pl.col("load_ns")))
            try:
                found = memory_pattern(mine, value=value)
            except ValueError:
                rows.append({"service": service, "series": name, "classification": "too few samples",
                             "samples": mine.height})
                continue
            rows.append(_pattern_row(service, name, found))
    return pl.DataFrame(rows, infer_schema_length=None)


def gc_in_flight(in_flight: pl.DataFrame) -> pl.DataFrame:
    """Per GC kind, from `analysis.gc.in_flight_per_pause`: pauses, how many caught at
    least one request on the wire, the requests in flight per pause (mean, p99, max) and the
    pause length (p99, max, ms)."""
    return (
        in_flight.group_by("kind")
        .agg(
            pauses=pl.len(),
            pauses_with_requests=(pl.col("in_flight") > 0).sum(),
            in_flight_mean=pl.col("in_flight").mean(),
            in_flight_p99=nearest_rank(pl.col("in_flight"), 0.99),
            in_flight_max=pl.col("in_flight").max(),
            pause_p99_ms=nearest_rank(pl.col("pause_ms"), 0.99),
            pause_max_ms=pl.col("pause_ms").max(),
        )
        .sort("pause_max_ms", descending=True)
    )


def _fmt(value: Any, spec: str = ",.1f", unit: str = "") -> str:
    """`value` formatted with `spec` and `unit`, or "—" for no value."""
    return "—" if value is None else f"{value:{spec}}{unit}"


def _pct(share: float | None) -> float | None:
    """A share (0..1) as a percentage."""
    return None if share is None else 100 * share


def _heap_measured(heap: Mapping[str, Any]) -> str:
    """Node's V8 heap pattern as measured (a `memory_patterns` row, or {} without one)."""
    period = f" (a drop every {heap['period_s']:.2f} s)" if heap.get("period_s") is not None else ""
    return (f"{heap.get('classification', '—')}{period}, "
            f"mean {_fmt(heap.get('mean_mib'))} MiB, peak {_fmt(heap.get('peak_mib'))} MiB")


def _p99_cause_measured(gc: Mapping[str, Any]) -> str:
    """What Node's p99 overlapped, from `analysis.gc.gc_latency_summary` ({} without Node)."""
    return (
        f"p99 outside GC pauses {_fmt(gc.get('p99_outside_gc_ms'), ',.2f')} ms; "
        f"{_fmt(_pct(gc.get('share_of_slow_requests_during_gc')), '.0f')}% of the requests slower than "
        f"p99 overlapped a pause, against {_fmt(_pct(gc.get('share_during_gc')), '.1f')}% "
        "of all requests"
    )


def soak_vs_article(patterns: pl.DataFrame, latency: pl.DataFrame, gc_summary: Mapping[str, Any] | None
                    ) -> pl.DataFrame:
    """The article's memory and p99 claims beside a soak's measurements, as text to read.

    `patterns`: `memory_patterns`; `latency`: `analysis.latency.percentiles(requests,
    by="service")`; `gc_summary`: `analysis.gc.gc_latency_summary` of Node's requests and
    GC events (None without Node). The article's side comes from data/article_claims.csv
    (`memory_sustained_mb`, `p99_latency_ms`) and data/article_facts.csv (`node_heap_peak_mb`,
    `rust_heap`). Columns: claim, node_article, rust_article, node_measured, rust_measured.
    """
    claims = article_claims()
    memory, p99 = claims["memory_sustained_mb"], claims["p99_latency_ms"]
    node_heap, rust_heap = article_fact("node_heap_peak_mb"), article_fact("rust_heap")

    def pattern(service: str, series: str) -> dict[str, Any]:
        found = patterns.filter((pl.col("service") == service) & (pl.col("series") == series))
        return found.row(0, named=True) if found.height else {}

    def p99_of(service: str) -> float | None:
        found = latency.filter(pl.col("service") == service)
        return found["p99_ms"][0] if found.height else None

    rss = {s: pattern(s, "RSS") for s in ("node", "rust")}
    rows = [
        (f"average memory, sustained (MiB; the article says {memory['unit']})",
         _fmt(memory["node_value"], ",.0f"), _fmt(memory["rust_value"], ",.0f"),
         _fmt(rss["node"].get("mean_mib")), _fmt(rss["rust"].get("mean_mib"))),
        ("memory pattern (RSS)", memory["node_note"], memory["rust_note"],
         rss["node"].get("classification", "—"), rss["rust"].get("classification", "—")),
        ("RSS swing p5-p95 (MiB)", "—", "—", _fmt(rss["node"].get("amplitude_mib")),
         _fmt(rss["rust"].get("amplitude_mib"))),
        ("V8 heap pattern (Node only)", node_heap.text, rust_heap.text,
         _heap_measured(pattern("node", "V8 heap")), "no GC"),
        ("p99 latency (ms)", _fmt(p99["node_value"], ",.1f"), _fmt(p99["rust_value"], ",.1f"),
         _fmt(p99_of("node"), ",.2f"), _fmt(p99_of("rust"), ",.2f")),
        ("p99 cause", p99["node_note"], p99["rust_note"], _p99_cause_measured(gc_summary or {}),
         "no GC (its tail has other causes)"),
    ]
    columns = ["claim", "node_article", "rust_article", "node_measured", "rust_measured"]
    return pl.DataFrame(rows, schema=columns, orient="row")


def memory_parts_table(run: Run) -> pl.DataFrame:
    """Per service of a soak (or contracts) run, its memory's parts (`SoakResult.memory_parts`:
    mean and peak in MiB, the queue's peak in messages, the part that grew most and the one
    largest at RSS's peak); a service without memory reports has a row of nulls but its name."""
    rows = [{"service": service, **(found.memory_parts or {})}
            for service, found in run.summary.services.items()]
    return pl.DataFrame(rows, infer_schema_length=None)


def long_soak_runs(config: StudyConfig, *, min_duration_s: float = LONG_SOAK_S) -> list[Run]:
    """The soak runs in `config.runs_dir` measured on this machine (host, CPU and core layout,
    `Run.environment_of`), of any profile and study, that held a service for at least
    `min_duration_s` (s), newest first (`ingestlab run soak --duration 1h` makes one)."""
    here = Run.environment_of(config)
    return [run for run in find_runs(config.runs_dir, "soak")
            if run.environment_key() == here
            and any(found.duration_s >= min_duration_s for found in run.summary.services.values())]


def long_soaks(config: StudyConfig, *, run_path: str = "", min_duration_s: float = LONG_SOAK_S
               ) -> dict[str, Run]:
    """Per service, the newest long soak that held it (`long_soak_runs`: an hour's soak is
    usually run one service at a time, so node's and rust's are two runs); with `run_path`,
    that run for each of its services. The newest run's services first."""
    if run_path:
        run = Run.open(run_path)
        return dict.fromkeys(run.summary.services, run)
    found: dict[str, Run] = {}
    for run in long_soak_runs(config, min_duration_s=min_duration_s):
        for service, held in run.summary.services.items():
            if held.duration_s >= min_duration_s:
                found.setdefault(service, run)
    return found


def no_long_soak(config: StudyConfig, *, min_duration_s: float = LONG_SOAK_S) -> str:
    """What to say when `long_soaks` finds none: how to make one."""
    return (f"No soak of {min_duration_s / 60:g} minutes or more measured on this machine in "
            f"{config.runs_dir}. Make one (about an hour per service) with "
            "`.venv/bin/ingestlab run soak --profile full --duration 1h --service node --runs-dir data/runs` "
            "(and the same with `--service rust`), then run this notebook again.")


def long_soak_samples(soaks: Mapping[str, Run]) -> pl.DataFrame:
    """Each service's samples (`samples` frame) from its long soak's run (`long_soaks`)."""
    return pl.concat([run.read_frame("samples").filter(pl.col("service") == service)
                      for service, run in soaks.items()], how="diagonal_relaxed")


def long_soak_table(soaks: Mapping[str, Run]) -> pl.DataFrame:
    """Per service of its long soak (`long_soaks`): the run, what was held (rate in req/s,
    duration in s, segments of `segment_s`, the gaps between them in s and in % of the hold,
    requests accepted and lost), RSS at start, mean and peak (MiB, summed over the service's
    processes), its trend (MiB per hour with the 95% interval, `SoakResult.rss_slope_mib_per_h`),
    the part that grew most, and the rig's own peak RSS (the measuring process's and the
    largest load engine's, MiB)."""
    rows = []
    for service, run in soaks.items():
        found = run.summary.services[service]
        low, high = found.rss_slope_ci_mib_per_h or (None, None)
        rows.append({
            "service": service,
            "run": run.run_id,
            "rate_rps": found.rate_rps,
            "duration_s": found.duration_s,
            "segments": found.segments,
            "segment_s": found.segment_s,
            "segment_gap_s": found.segment_gap_s,
            "segment_gap_pct": _pct(found.segment_gap_share),
            "accepted": found.accepted,
            "lost": found.lost,
            "rss_start_mib": found.rss_start_mib,
            "rss_mean_mib": found.rss_mean_mib,
            "rss_peak_mib": found.rss_peak_mib,
            "rss_slope_mib_per_h": found.rss_slope_mib_per_h,
            "slope_low_mib_per_h": low,
            "slope_high_mib_per_h": high,
            "grew_most": (found.memory_parts or {}).get("grew_most"),
            "rig_rss_peak_mib": found.rig_rss_peak_mib,
            "engine_rss_peak_mib": found.engine_rss_peak_mib,
        })
    return pl.DataFrame(rows, infer_schema_length=None)


def long_soak_slopes(soaks: Mapping[str, Run]) -> pl.DataFrame:
    """Per service and series (RSS, then each memory part: `analysis.memory_parts.part_slopes`)
    of its long soak (`long_soaks`): the trend in MiB per hour, its 95% interval, and what the
    interval says: "grows" (above 0), "shrinks" (below 0) or "no trend shown" (it holds 0)."""
    rows = []
    for service, run in soaks.items():
        found = run.summary.services[service]
        series = {"RSS": {"slope_mib_per_h": found.rss_slope_mib_per_h,
                          "ci_mib_per_h": found.rss_slope_ci_mib_per_h}}
        series.update({f"part: {part}": slope for part, slope in (found.memory_part_slopes or {}).items()})
        for name, slope in series.items():
            low, high = slope.get("ci_mib_per_h") or (None, None)
            verdict = (None if low is None else "grows" if low > 0 else "shrinks" if high < 0
                       else "no trend shown")
            rows.append({"service": service, "series": name, "slope_mib_per_h": slope.get("slope_mib_per_h"),
                         "low_mib_per_h": low, "high_mib_per_h": high, "verdict": verdict})
    return pl.DataFrame(rows, infer_schema_length=None)
