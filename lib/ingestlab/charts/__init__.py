"""Altair charts of result frames: each a pure function, polars frame in, `alt.Chart` out.

The charts live in modules by topic (`ceiling`, `latency`, `delivery`, `memory`, `startup`,
`claims`, `faults`, `contracts`, `overload`, `cpu_cores`, `backlog`) sharing one `style` module; every chart
function is importable from here, as `charts.ceiling_steps(...)`.

Conventions shared by every chart:

- One color per service everywhere (`SERVICE_COLORS`): Node bluish green, Rust vermillion,
  from the Okabe-Ito palette, which stays distinguishable with the common color-vision
  deficiencies (a green/red pair would not).
- Axis titles carry units; tooltips show the numbers behind each mark.
- A ceiling step is "passed", "failed" or "inconclusive" (the load generator saturated, so the
  step says nothing about the service); the same shapes mark them in every chart.
- Altair embeds a chart's data in its spec (and so in the notebook and the report). Each
  function therefore aggregates or thins its input to at most `MAX_CHART_ROWS` rows, and
  every chart's data passes `style.data_chart`, which refuses more (`TooManyRowsError`, an
  `alt.MaxRowsError`), so a chart that would silently embed a million request rows fails
  loudly instead. Functions taking raw request rows (`latency_histogram`) bin them first;
  time series (`latency_over_time`, `memory_over_time`) merge consecutive points when too
  long (each function says how).
- Importing the charts changes no process-wide state: altair's data transformer, renderer
  and theme stay as they were (the row limit above is checked by the charts themselves).

`use_static_renderer()` makes notebooks render charts as PNG images: reports are static HTML
read without network access, and altair's default renderer needs JavaScript from a CDN. It
changes altair's renderer for the process, so a notebook calls it explicitly.
`save_png` / `save_svg` write files with vl-convert (no browser involved).
"""

from __future__ import annotations

from ingestlab.charts.backlog import backlog_over_time
from ingestlab.charts.ceiling import ceiling_steps, step_latency
from ingestlab.charts.claims import claims_ratios
from ingestlab.charts.contracts import contract_decomposition
from ingestlab.charts.cpu_cores import cpu_cores_bars
from ingestlab.charts.delivery import delivery_bars
from ingestlab.charts.faults import OUTCOME_COLORS, fault_rss, fault_timeline
from ingestlab.charts.latency import latency_histogram, latency_over_time, latency_percentiles
from ingestlab.charts.memory import (
    GC_DEFAULT_SERVICE,
    GC_KIND_COLORS,
    MAX_GC_RULES,
    MAX_HEAP_EVENTS,
    MAX_HEAP_WINDOWS,
    cpu_by_thread_bars,
    gc_pause_distribution,
    heap_over_time,
    memory_over_time,
)
from ingestlab.charts.memory_parts import memory_parts_over_time
from ingestlab.charts.overload import overload_memory, overload_requests
from ingestlab.charts.startup import FOOTPRINT_CATEGORIES, cold_start_distribution, footprint_bars, image_bars
from ingestlab.charts.style import (
    HEIGHT,
    MAX_CHART_ROWS,
    NEUTRAL,
    SERVICE_COLORS,
    VERDICT_SHAPES,
    WIDTH,
    TooManyRowsError,
    save_png,
    save_svg,
    use_static_renderer,
)

__all__ = [
    # charts
    "backlog_over_time",
    "ceiling_steps",
    "claims_ratios",
    "cold_start_distribution",
    "contract_decomposition",
    "cpu_by_thread_bars",
    "cpu_cores_bars",
    "delivery_bars",
    "fault_rss",
    "fault_timeline",
    "footprint_bars",
    "image_bars",
    "gc_pause_distribution",
    "heap_over_time",
    "latency_histogram",
    "latency_over_time",
    "latency_percentiles",
    "memory_over_time",
    "memory_parts_over_time",
    "overload_memory",
    "overload_requests",
    "step_latency",
    # rendering and files
    "save_png",
    "save_svg",
    "use_static_renderer",
    # style and limits
    "FOOTPRINT_CATEGORIES",
    "GC_DEFAULT_SERVICE",
    "GC_KIND_COLORS",
    "HEIGHT",
    "MAX_CHART_ROWS",
    "MAX_GC_RULES",
    "MAX_HEAP_EVENTS",
    "MAX_HEAP_WINDOWS",
    "NEUTRAL",
    "OUTCOME_COLORS",
    "SERVICE_COLORS",
    "TooManyRowsError",
    "VERDICT_SHAPES",
    "WIDTH",
]
