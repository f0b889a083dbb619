"""Charts of what a service uses under load: resident memory, the V8 heap and its GC pauses,
and CPU per thread."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import altair as alt
import polars as pl

from ingestlab.charts.style import (
    CATEGORY_COLORS,
    HEIGHT,
    MAX_CHART_ROWS,
    NEUTRAL,
    SERVICE_COLORS,
    WIDTH,
    data_chart,
    listed_order,
    log_bin,
    log_bin_edges,
    service_color,
    thin,
    time_tip,
    tip,
    titled,
    tooltips,
)
from ingestlab.quantiles import nearest_rank
from ingestlab.units import MIB, NS_PER_S

# GC events without a service column are Node's: V8 is the only runtime whose GC is traced.
GC_DEFAULT_SERVICE = "node"
# The longest GC pauses drawn; a loaded Node service scavenges several times a second, and
# beyond this many rules the chart is a grey wall that hides the memory line.
MAX_GC_RULES = 1_000
# One color per V8 collector in every chart; kinds not listed take the remaining colors.
GC_KIND_COLORS: dict[str, str] = {
    "Scavenge": "#0072B2",
    "Mark-Compact": "#E69F00",
    "Minor Mark-Sweep": "#56B4E9",
    "Mark-Sweep": "#CC79A7",
}
# Collections drawn one by one up to this many per service; beyond, per time window.
MAX_HEAP_EVENTS = 1_500
# Time windows of the windowed heap chart, at most.
MAX_HEAP_WINDOWS = 600
_HEAP_TITLE = "V8 heap (MiB)"
_SAMPLES_CLOCK = "time since the service's first sample (s)"
# V8 prints pauses to 0.01 ms: a pause printed as 0.00 ms is drawn there (a log axis has no 0).
_PAUSE_FLOOR_MS = 0.01


# --- GC frames -----------------------------------------------------------------------------


def _kind_order(kinds: list[str]) -> list[str]:
    """`kinds` in the order of GC_KIND_COLORS (young generation first), others after by name."""
    known = list(GC_KIND_COLORS)
    return sorted(kinds, key=lambda kind: (known.index(kind) if kind in known else len(known), kind))


def _kind_colors(kinds: list[str]) -> list[str]:
    spare = iter(c for c in CATEGORY_COLORS if c not in GC_KIND_COLORS.values())
    return [GC_KIND_COLORS.get(kind) or next(spare, NEUTRAL) for kind in kinds]


def _gc_with_service(gc: pl.DataFrame) -> pl.DataFrame:
    return gc if "service" in gc.columns else gc.with_columns(service=pl.lit(GC_DEFAULT_SERVICE))


def _sample_starts(samples: pl.DataFrame) -> pl.DataFrame:
    """Per service, `t0_ns`: its first sample (epoch ns)."""
    return samples.group_by("service").agg(t0_ns=pl.col("t_ns").min())


def _gc_times(gc: pl.DataFrame, samples: pl.DataFrame | None) -> tuple[pl.DataFrame, str]:
    """`gc` (with `service`) plus `t_s`: the end of each pause in seconds since the service's
    first sample (only pauses from then on) if `samples` is given, else since its first
    event; and the axis title."""
    gc = _gc_with_service(gc).filter(pl.col("wall_ns").is_not_null())
    if samples is not None:
        starts = _sample_starts(samples)
        title = _SAMPLES_CLOCK
    else:
        starts = gc.group_by("service").agg(t0_ns=pl.col("wall_ns").min())
        title = "time since the first traced GC (s)"
    timed = (
        gc.join(starts, on="service")
        .with_columns(t_s=(pl.col("wall_ns") - pl.col("t0_ns")) / NS_PER_S)
        .filter(pl.col("t_s") >= 0)
        .sort("service", "wall_ns")
    )
    return timed, title


# --- resident memory -----------------------------------------------------------------------


def _rss_series(samples: pl.DataFrame, starts: pl.DataFrame, max_rows: int) -> pl.DataFrame:
    """RSS (MiB) per service over `t_s` (seconds since its first sample), thinned to
    `max_rows` keeping the highest RSS of merged samples (the envelope a host must provide)."""
    data = (
        samples.sort("service", "t_ns")
        .join(starts, on="service")
        .select(
            "service", t_s=(pl.col("t_ns") - pl.col("t0_ns")) / NS_PER_S, rss_mib=pl.col("rss_bytes") / MIB
        )
    )
    return thin(
        data, keys=["service"], max_rows=max_rows, aggs=[pl.col("t_s").min(), pl.col("rss_mib").max()]
    )


def _pause_rules(gc: pl.DataFrame, starts: pl.DataFrame, x: alt.X) -> alt.Chart:
    """The `MAX_GC_RULES` longest GC pauses (ms) as rules on the samples' clock."""
    pauses = (
        gc.join(starts, on="service")  # a pause of a service without samples has no place
        .select("service", "kind", "pause_ms", t_s=(pl.col("wall_ns") - pl.col("t0_ns")) / NS_PER_S)
        .sort("pause_ms", descending=True)
        .head(MAX_GC_RULES)
    )
    # Light to dark grey by each kind's longest pause: the kind that stops longest is darkest.
    kinds = pauses.group_by("kind").agg(pl.col("pause_ms").max()).drop_nulls("kind").sort("pause_ms")["kind"]
    return (
        data_chart(pauses)
        .mark_rule(strokeWidth=1.5)
        .encode(
            x=x,
            y=alt.Y("pause_ms:Q", title="GC pause (ms)"),
            y2=alt.datum(0),
            color=alt.Color(
                "kind:N",
                title="GC kind",
                scale=alt.Scale(domain=kinds.to_list(), scheme="greys"),
                legend=alt.Legend(),
            ),
            tooltip=tooltips("service", "kind", "pause_ms", time_tip(",.2f")),
        )
        .properties(width=WIDTH, height=90)
    )


def memory_over_time(samples: pl.DataFrame, gc: pl.DataFrame | None = None) -> alt.Chart | alt.VConcatChart:
    """Resident memory (MiB) over time per service; below it, GC pauses (ms) as rules.

    `samples`: t_ns (epoch ns), rss_bytes, service. `gc` (optional): wall_ns (epoch ns, the
    end of the pause), pause_ms, kind, and `service` (taken as "node" when absent: only V8's
    GC is traced). Time is seconds since each service's first sample, on one axis for both
    panels. Over 5,000 samples, consecutive samples are merged keeping the highest RSS (the
    envelope a host must provide); only the `MAX_GC_RULES` longest pauses are drawn. The
    pauses get a panel of their own because a loaded Node process collects several times a
    second: rules across the memory line would hide it.
    """
    starts = _sample_starts(samples)
    data = _rss_series(samples, starts, MAX_CHART_ROWS - (MAX_GC_RULES if gc is not None else 0))
    x = alt.X("t_s:Q", title=_SAMPLES_CLOCK)
    title = "Memory over time"
    subtitle = "resident set size (RSS) sampled from /proc"
    memory = (
        data_chart(data)
        .mark_line(strokeWidth=2)
        .encode(
            x=x,
            y=alt.Y("rss_mib:Q", title="resident memory, RSS (MiB)"),
            color=service_color(data),
            tooltip=tooltips("service", time_tip(), tip("rss_mib:Q", "RSS (MiB)", ",.1f")),
        )
        .properties(width=WIDTH, height=HEIGHT)
    )
    if gc is None or gc.height == 0:
        return memory.properties(title=alt.Title(title, subtitle=subtitle))
    note = f"; below: GC pauses (the {MAX_GC_RULES:,} longest at most)"
    return (
        alt.vconcat(memory, _pause_rules(_gc_with_service(gc), starts, x))
        .resolve_scale(x="shared", color="independent")
        .properties(title=alt.Title(title, subtitle=subtitle + note))
    )


# --- V8 heap -------------------------------------------------------------------------------


class _HeapBody(NamedTuple):
    """What the heap chart draws, collection by collection or per time window."""

    body: alt.Chart  # the heap between collections: a sawtooth line or a band
    committed: pl.DataFrame  # service, t_s, committed_mib: the dashed line
    dots: pl.DataFrame  # service, kind, t_s, before_mib, after_mib, committed_mib, pause_ms
    subtitle: str


def _heap_events(gc: pl.DataFrame, samples: pl.DataFrame | None) -> tuple[pl.DataFrame, str]:
    """One row per collection: the end of its pause `t_s` and its start `start_s` (s), the heap
    before and after it and the committed heap (MiB); and the time axis title."""
    timed, x_title = _gc_times(gc, samples)
    events = timed.select(
        "service",
        "kind",
        "t_s",
        "pause_ms",
        start_s=pl.col("t_s") - pl.col("pause_ms") / 1_000,
        before_mib=pl.col("heap_before_mib"),
        after_mib=pl.col("heap_after_mib"),
        committed_mib=pl.col("committed_after_mib"),
    )
    return events, x_title


def _heap_tooltips(*fields: str | alt.Tooltip) -> list[alt.Tooltip]:
    """The heap chart's tooltips: service, time (s, to 10 ms: collections come that close), `fields`."""
    return tooltips("service", time_tip(",.2f"), *fields)


def _sawtooth(events: pl.DataFrame, x: alt.X) -> _HeapBody:
    """Each collection drawn: a line from its "before" (at its start) to its "after" (at its end)."""
    saw = (
        pl.concat(
            [
                events.select("service", t_s="start_s", heap_mib="before_mib", order=pl.lit(0)),
                events.select("service", "t_s", heap_mib="after_mib", order=pl.lit(1)),
            ]
        )
        .drop_nulls("heap_mib")
        .sort("service", "t_s", "order")
        .drop("order")
    )
    body = (
        data_chart(saw)
        .mark_line(strokeWidth=1.2, color=SERVICE_COLORS["node"])
        .encode(x=x, y=alt.Y("heap_mib:Q", title=_HEAP_TITLE), detail="service:N")
    )
    subtitle = "heap objects before -> after each collection (solid); dashed: heap committed from the OS"
    return _HeapBody(body, events.select("service", "t_s", "committed_mib"), events.drop("start_s"), subtitle)


def _window_s(events: pl.DataFrame) -> float:
    """A round window length (1, 2 or 5 times a power of ten, s) giving at most `MAX_HEAP_WINDOWS`."""
    span = float(events["t_s"].max() or 0.0)
    window_s = max(span / MAX_HEAP_WINDOWS, 0.001)
    nice = 10 ** math.floor(math.log10(window_s))
    return next(m * nice for m in (1, 2, 5, 10) if m * nice >= window_s)


def _windowed(events: pl.DataFrame, x: alt.X) -> _HeapBody:
    """Collections per time window: the band from the lowest "after" to the highest "before"
    (the sawtooth's envelope), and per kind the lowest "after" as the dots."""
    window_s = _window_s(events)
    windowed = events.with_columns(window=(pl.col("t_s") / window_s).floor())
    middle = (pl.col("window") + 0.5) * window_s
    band = (
        windowed.group_by("service", "window")
        .agg(
            floor_mib=pl.col("after_mib").min(),
            peak_mib=pl.col("before_mib").max(),
            committed_mib=pl.col("committed_mib").max(),
            collections=pl.len(),
        )
        .with_columns(t_s=middle)
        .sort("service", "t_s")
    )
    body = (
        data_chart(band)
        .mark_area(color=SERVICE_COLORS["node"], opacity=0.45)
        .encode(
            x=x,
            y=alt.Y("floor_mib:Q", title=_HEAP_TITLE),
            y2="peak_mib:Q",
            detail="service:N",
            tooltip=_heap_tooltips(
                "collections:Q",
                tip("floor_mib:Q", "lowest after (MiB)", ",.1f"),
                tip("peak_mib:Q", "highest before (MiB)", ",.1f"),
            ),
        )
    )
    dots = (
        windowed.group_by("service", "window", "kind")
        .agg(
            after_mib=pl.col("after_mib").min(),
            before_mib=pl.col("before_mib").max(),
            pause_ms=pl.col("pause_ms").max(),
            committed_mib=pl.col("committed_mib").max(),
        )
        .with_columns(t_s=middle)
        .drop("window")
        .sort("service", "t_s")
    )
    subtitle = (
        f"{events.height:,} collections in {window_s:g}-s windows: the band spans each window's lowest "
        "'after' to highest 'before'; dots: the lowest 'after' per kind; dashed: heap committed"
    )
    return _HeapBody(body, band.select("service", "t_s", "committed_mib"), dots, subtitle)


def _after_dots(dots: pl.DataFrame, x: alt.X, kinds: list[str]) -> alt.Chart:
    """A dot at each heap "after" (MiB), coloured by GC kind."""
    return (
        data_chart(dots)
        .mark_point(filled=True, opacity=0.9, size=22)
        .encode(
            x=x,
            y=alt.Y("after_mib:Q", title=_HEAP_TITLE),
            color=alt.Color(
                "kind:N", title="GC kind", scale=alt.Scale(domain=kinds, range=_kind_colors(kinds))
            ),
            tooltip=_heap_tooltips(
                "kind",
                tip("before_mib:Q", "heap before (MiB)", ",.1f"),
                tip("after_mib:Q", "heap after (MiB)", ",.1f"),
                tip("committed_mib:Q", "committed (MiB)", ",.1f"),
                "pause_ms",
            ),
        )
    )


def heap_over_time(gc: pl.DataFrame, samples: pl.DataFrame | None = None) -> alt.LayerChart:
    """The V8 heap (MiB) before and after each collection, over time: the heap's sawtooth.

    `gc` is a GC frame (`telemetry.gc_trace.GC_SCHEMA`: wall_ns at the end of each pause,
    pause_ms, kind, heap_before_mib / heap_after_mib = heap objects, committed_after_mib =
    memory the heap holds from the OS; V8 prints MB meaning MiB). With `samples` (the same
    run's process samples) time is seconds since the service's first sample, the axis of
    `memory_over_time`, and collections before it (start-up) are left out.

    Up to `MAX_HEAP_EVENTS` collections per service, each is drawn: the solid line joins a
    collection's "before" (at the start of its pause) to its "after" (at its end), so
    allocation shows as climbs and collections as drops; dots mark each "after", coloured
    by kind (`GC_KIND_COLORS`). A loaded service collects many times a second, too often to
    draw one by one: then time is cut into equal windows (at most `MAX_HEAP_WINDOWS`) and
    each window shows the band from the lowest "after" to the highest "before" (the
    sawtooth's envelope) and, as dots, the lowest "after" of each kind. The dashed line is
    the committed heap (its highest per window).
    """
    events, x_title = _heap_events(gc, samples)
    x = alt.X("t_s:Q", title=x_title)
    per_service = events.group_by("service").len()["len"].max() or 0
    heap = _sawtooth(events, x) if per_service <= MAX_HEAP_EVENTS else _windowed(events, x)
    committed = (
        data_chart(heap.committed.drop_nulls())
        .mark_line(strokeWidth=1.2, strokeDash=[4, 3], color="#777777")
        .encode(x=x, y=alt.Y("committed_mib:Q", title=_HEAP_TITLE), detail="service:N")
    )
    kinds = _kind_order(events["kind"].drop_nulls().unique().to_list())
    return titled(
        alt.layer(committed, heap.body, _after_dots(heap.dots, x, kinds)),
        "V8 heap over time (Node)",
        heap.subtitle,
    )


# --- GC pauses -----------------------------------------------------------------------------


def _pause_stats(pauses: pl.DataFrame) -> pl.DataFrame:
    """Per kind: events, p50_ms, p99_ms (nearest rank) and max_ms, in the order of GC_KIND_COLORS."""
    return (
        pauses.group_by("kind")
        .agg(
            events=pl.len(),
            p50_ms=nearest_rank(pl.col("pause_ms"), 0.5),
            p99_ms=nearest_rank(pl.col("pause_ms"), 0.99),
            max_ms=pl.col("pause_ms").max(),
        )
        .with_columns(order=listed_order("kind", GC_KIND_COLORS))
        .sort("order", "kind")
    )


def _pause_bins(pauses: pl.DataFrame, bins_per_decade: int) -> pl.DataFrame:
    """Pauses counted per kind and logarithmic bin, from `low_ms` to `high_ms`."""
    return (
        pauses.with_columns(bin=log_bin("pause_ms", bins_per_decade))
        .group_by("kind", "bin")
        .agg(pauses=pl.len())
        .with_columns(**log_bin_edges(bins_per_decade))
        .sort("kind", "bin")
        .drop("bin")
    )


def _pause_panel(kind: dict[str, Any], bins: pl.DataFrame, x: alt.X, color: str, y: alt.Y) -> alt.LayerChart:
    """One kind's histogram with a dashed rule at its p99; `kind` is its row of `_pause_stats`."""
    bars = (
        data_chart(bins)
        .mark_bar(color=color, opacity=0.85, stroke="white", strokeWidth=0.5)
        .encode(
            x=x,
            x2="high_ms:Q",
            y=y,
            y2=alt.datum(0),
            tooltip=tooltips("kind", "low_ms", "high_ms", tip("pauses:Q", fmt=",")),
        )
    )
    p99 = pl.DataFrame({"low_ms": [kind["p99_ms"]], "text": [f"p99 {kind['p99_ms']:.2f} ms"]})
    rule = data_chart(p99).encode(x=x)
    title = (
        f"{kind['kind']}: {kind['events']:,} pauses; p50 {kind['p50_ms']:.2f} ms, "
        f"p99 {kind['p99_ms']:.2f} ms, longest {kind['max_ms']:.2f} ms"
    )
    return alt.layer(
        bars,
        rule.mark_rule(color="#333333", strokeDash=[4, 3]),
        rule.mark_text(align="left", dx=4, dy=-4, baseline="top", color="#333333").encode(
            y=alt.value(0), text="text:N"
        ),
    ).properties(title=alt.Title(title, fontSize=12, anchor="start"), width=WIDTH, height=110)


def _pause_count_axis(most: int) -> alt.Y:
    """Pauses per bin on a symlog scale, ticks at 0 and powers of ten up to about `most`."""
    ticks = [0, *(10**e for e in range(0, len(str(most)) + 1) if 10**e <= most * 3)]
    # symlog: a handful of long pauses stays visible next to thousands of short ones
    return alt.Y(
        "pauses:Q",
        title="pauses (log scale)",
        scale=alt.Scale(type="symlog"),
        axis=alt.Axis(values=ticks, labelExpr="format(datum.value, ',.0f')"),
    )


def gc_pause_distribution(gc: pl.DataFrame, *, bins_per_decade: int = 10) -> alt.VConcatChart:
    """How long V8's pauses are, per kind: a histogram of pause lengths on log bins, one
    panel per kind on a shared axis.

    `gc` is a GC frame (kind, pause_ms). Binned here (`bins_per_decade` bins to a factor of
    ten), so the chart embeds one row per bin and kind. Pauses printed as 0.00 ms go into
    the bin of 0.01 ms (a log axis cannot place 0). Each panel's title gives the kind's
    count, p50, p99 and longest pause (nearest rank); a dashed rule marks its p99. The
    count axis is symlog, so a few long pauses stay visible beside thousands of short ones.
    Kinds come in the order of `GC_KIND_COLORS` (young generation first), others after.
    """
    pauses = gc.select("kind", pause_ms=pl.col("pause_ms").clip(lower_bound=_PAUSE_FLOOR_MS)).drop_nulls()
    if pauses.height == 0:
        raise ValueError("gc_pause_distribution: no GC events with a kind and a pause")
    stats = _pause_stats(pauses)
    binned = _pause_bins(pauses, bins_per_decade)
    low = float(binned["low_ms"].min() or _PAUSE_FLOOR_MS)
    high = float(binned["high_ms"].max() or 1.0)
    x = alt.X(
        "low_ms:Q", title="pause (ms, log scale)", scale=alt.Scale(type="log", domain=[low, high], nice=False)
    )
    y = _pause_count_axis(int(binned["pauses"].max() or 1))
    colors = dict(zip(stats["kind"], _kind_colors(stats["kind"].to_list()), strict=True))
    panels = [
        _pause_panel(kind, binned.filter(pl.col("kind") == kind["kind"]), x, colors[kind["kind"]], y)
        for kind in stats.iter_rows(named=True)
    ]
    subtitle = (
        f"main-thread pause per collection; {bins_per_decade} log bins per decade; dashed: the kind's p99"
    )
    return (
        alt.vconcat(*panels)
        .resolve_scale(x="shared")
        .properties(title=alt.Title("GC pauses by kind", subtitle=subtitle))
    )


# --- CPU per thread ------------------------------------------------------------------------


def _thread_rows(cpu: pl.DataFrame, top: int, min_core_pct: float) -> pl.DataFrame:
    """Per service its `top` busiest labelled threads using at least `min_core_pct` (% of one
    core), and one "other threads" row summing the rest; `row` names service and thread."""
    threads = pl.col("threads") if "threads" in cpu.columns else pl.lit(1)
    labelled = cpu.with_columns(
        label=pl.concat_str(
            pl.col("name"),
            pl.when(pl.col("main_thread")).then(pl.lit(" (main)")).otherwise(pl.lit("")),
            pl.when(threads > 1).then(pl.format(" x {}", threads)).otherwise(pl.lit("")),
        ),
        threads=threads,
        rank=pl.col("core_pct").rank("ordinal", descending=True).over("service"),
    )
    drawn = (pl.col("rank") <= top) & (pl.col("core_pct") >= min_core_pct)
    rest = (
        labelled.filter(~drawn)
        .group_by("service")
        .agg(
            pl.col("threads").sum(),
            pl.col("cpu_user_s", "cpu_system_s", "core_pct").sum(),
            rank=pl.lit(top + 1),
        )
        .with_columns(label=pl.format("other threads x {}", "threads"))
    )
    columns = ("service", "label", "threads", "cpu_user_s", "cpu_system_s", "core_pct", "rank")
    return pl.concat(
        [labelled.filter(drawn).select(columns), rest.select(columns)], how="vertical_relaxed"
    ).with_columns(row=pl.format("{} · {}", "service", "label"))


def cpu_by_thread_bars(cpu: pl.DataFrame, *, top: int = 8, min_core_pct: float = 0.1) -> alt.LayerChart:
    """CPU per thread (% of one core) per service, as horizontal bars, busiest first.

    `cpu` is `telemetry.sampler.cpu_by_thread` of one service's thread samples (by "tid"
    or "name"), with a `service` column added (`notebook.soak.cpu_by_thread_per_service`). A row
    is labelled with the thread name, "(main)" for the thread whose tid is the pid (Node's
    event loop) and "x N" for N same-named threads summed. Per service the `top` busiest
    rows using at least `min_core_pct` are drawn and the rest summed into one "other
    threads" row (idle threads are noise next to the ones doing the work). The dashed rule
    at 100% is one core: a thread cannot pass it, and a single-threaded service is capped
    by it.
    """
    data = _thread_rows(cpu, top, min_core_pct)
    top_pct = max(100.0, float(data["core_pct"].max() or 0.0)) * 1.12
    y = alt.Y("row:N", title=None, sort=data.sort("service", "rank")["row"].to_list())
    x = alt.X("core_pct:Q", title="CPU (% of one core)", scale=alt.Scale(domain=[0, top_pct]))
    bars = (
        data_chart(data)
        .mark_bar()
        .encode(
            x=x,
            y=y,
            color=service_color(data),
            tooltip=tooltips(
                "service",
                tip("label:N", "thread"),
                "threads:Q",
                tip("core_pct:Q", "CPU (% of a core)", ".1f"),
                tip("cpu_user_s:Q", "user (s)", ".2f"),
                tip("cpu_system_s:Q", "system (s)", ".2f"),
            ),
        )
    )
    text = (
        data_chart(data)
        .mark_text(align="left", dx=3, fontSize=10)
        .encode(x=x, y=y, text=alt.Text("core_pct:Q", format=".1f"))
    )
    one_core = (
        data_chart(pl.DataFrame({"core_pct": [100.0]}))
        .mark_rule(color="#777777", strokeDash=[4, 3])
        .encode(x=x)
    )
    return titled(
        alt.layer(bars, text, one_core),
        "CPU by thread",
        "CPU time over the sampled window; dashed: one full core",
        height=alt.Step(18),
    )
