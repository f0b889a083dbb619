"""CPU per core over a measured window: the service's threads by group, and what else used
each core (`experiments.cpu_cores`). Pure polars functions of sampled frames.

Every `*_pct` is % of one core over the window (100 = the core busy the whole window).

- The service's share of a core comes from its thread samples (`telemetry.sampler`): each
  interval's CPU time of a thread is put on the core it last ran on (`cpu_by_core`), so with
  a service free to move between cores it is approximate; the finer the sampling, the closer.
- A core's busy time comes from /proc/stat (`telemetry.core_times`): everything that ran on it.
  The two sources are counted differently (per thread: scheduler time; per core: timer ticks
  and idle periods): over the quick profile's 3 s windows they disagreed by up to 10-25 points
  of a core here, so the service's share may exceed its core's busy time; the full profile's
  windows are ten times longer.
- What the broker used comes from its own thread samples, the load engine's from its own
  account of its CPU; the rest (`rest_pct`) is the core's busy time that none of those
  explains: the measuring process, the kernel's interrupt work for loopback traffic, other
  users of the machine. It is clipped at 0, since the service's share is approximate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from ingestlab.telemetry.sampler import cpu_by_core
from ingestlab.variants import Program

# Thread groups by the name the runtime gives a thread (the kernel keeps 15 bytes), per program,
# after the main thread (tid == pid, in every process of the service) and librdkafka's ("rdk:").
MAIN_GROUP: dict[Program, str] = {"node": "event loop", "rust": "main", "python": "event loop"}
LIBRDKAFKA = "librdkafka"
OTHER = "other"
NAMED_GROUPS: dict[Program, tuple[tuple[str, str], ...]] = {
    # Node 20 names its libuv pool and V8 platform threads "node", like the main thread
    "node": (("node", "V8 and libuv pool"),),
    # actix names every worker "actix-rt|system:N|arbiter:M", cut to "actix-rt|system"
    "rust": (("actix-rt|system", "actix workers"), ("actix-server", "actix acceptor"),
             ("producer pollin", "rdkafka poller")),
    "python": (),
}
# The service's cores, ranked by its share: the article's "busiest" and "other" core.
ROLES = ("busiest", "other")
CORE_TABLE_COLUMNS = ("core", "service_pct", "broker_pct", "load_pct", "rest_pct", "busy_pct", "steal_pct")


def thread_groups(thread_samples: pl.DataFrame, program: Program) -> pl.DataFrame:
    """`thread_samples` with a `group` column: the main thread (`MAIN_GROUP`), librdkafka's
    threads, the program's named threads (`NAMED_GROUPS`, by name prefix), else "other"."""
    group = pl.when(pl.col("tid") == pl.col("pid")).then(pl.lit(MAIN_GROUP.get(program, "main")))
    group = group.when(pl.col("name").str.starts_with("rdk:")).then(pl.lit(LIBRDKAFKA))
    for prefix, name in NAMED_GROUPS.get(program, ()):
        group = group.when(pl.col("name").str.starts_with(prefix)).then(pl.lit(name))
    return thread_samples.with_columns(group=group.otherwise(pl.lit(OTHER)))


def measured_window(rows: pl.DataFrame) -> tuple[int, int]:
    """(first, last) intended send time (epoch ns) of the requests of the measured phase."""
    intended = rows.filter(pl.col("phase") == "measure")["intended_start_ns"]
    if intended.is_empty():
        raise ValueError("no request of the measured phase")
    return int(intended.min()), int(intended.max())  # type: ignore[arg-type]


def _within(frame: pl.DataFrame, start_ns: int, end_ns: int) -> pl.DataFrame:
    return frame.filter(pl.col("t_ns").is_between(start_ns, end_ns))


def _span_s(frame: pl.DataFrame) -> float:
    if frame["t_ns"].n_unique() < 2:
        raise ValueError("need samples from at least two ticks within the window")
    return (frame["t_ns"].max() - frame["t_ns"].min()) / 1e9  # type: ignore[operator]


def group_core_pct(
    thread_samples: pl.DataFrame, *, program: Program, start_ns: int, end_ns: int
) -> pl.DataFrame:
    """The service's CPU by core and thread group over the ticks within [start_ns, end_ns]:
    `core`, `group`, `threads` (how many), `core_pct` (% of that core). Groups that used no
    measurable CPU on a core have no row."""
    window = thread_groups(_within(thread_samples, start_ns, end_ns), program)
    window_s = _span_s(window)
    parts = []
    for (group,), samples in window.group_by("group"):
        if samples["t_ns"].n_unique() < 2:
            continue  # threads seen at one tick only: no interval to measure
        per_core = cpu_by_core(samples).filter(pl.col("cpu_s") > 0)
        parts.append(per_core.select(
            core=pl.col("last_cpu").cast(pl.Int32), group=pl.lit(group),
            threads=pl.lit(samples.select(pl.struct("pid", "tid").n_unique()).item(), pl.UInt32),
            core_pct=pl.col("cpu_s") / window_s * 100.0))
    schema = {"core": pl.Int32, "group": pl.String, "threads": pl.UInt32, "core_pct": pl.Float64}
    return pl.concat(parts) if parts else pl.DataFrame(schema=schema)


def process_core_pct(thread_samples: pl.DataFrame, *, start_ns: int, end_ns: int) -> pl.DataFrame:
    """A sampled process's CPU by core over the ticks within [start_ns, end_ns]: `core`,
    `core_pct`."""
    window = _within(thread_samples, start_ns, end_ns)
    return cpu_by_core(window).select(core=pl.col("last_cpu").cast(pl.Int32), core_pct=pl.col("core_pct"))


def core_busy(core_times: pl.DataFrame, *, start_ns: int, end_ns: int) -> pl.DataFrame:
    """Each core's busy and stolen time over the ticks of `core_times`
    (`telemetry.core_times.CORE_TIMES_SCHEMA`) within [start_ns, end_ns]: `core`, `busy_pct`,
    `steal_pct`, in % of the time the kernel accounted to the core (busy + idle + steal), as
    top and mpstat count: over a few seconds that sum is not the wall time (a tickless kernel
    books an idle period when it ends), and dividing by the wall time gave a core 143%."""
    window = _within(core_times, start_ns, end_ns).sort("t_ns")
    _span_s(window)  # at least two ticks
    delta = {c: pl.col(c).last() - pl.col(c).first() for c in ("busy_s", "idle_s", "steal_s")}
    accounted = delta["busy_s"] + delta["idle_s"] + delta["steal_s"]
    return (
        window.group_by("core")
        .agg(busy_pct=delta["busy_s"] / accounted * 100.0, steal_pct=delta["steal_s"] / accounted * 100.0)
        .sort("core")
    )


def core_table(
    groups: pl.DataFrame, busy: pl.DataFrame, broker: pl.DataFrame, load_pct: Mapping[int, float]
) -> pl.DataFrame:
    """One row per core of `busy` (`core_busy`) with the columns of `CORE_TABLE_COLUMNS`:
    `service_pct` (the sum of `groups`, `group_core_pct`), `broker_pct` (`process_core_pct`
    of the broker), `load_pct` (the load engine's, core -> %), `rest_pct` (busy time none of
    them explains, at least 0; see the module doc), `busy_pct` and `steal_pct`."""
    service = groups.group_by("core").agg(service_pct=pl.col("core_pct").sum())
    load = pl.DataFrame({"core": list(load_pct), "load_pct": list(load_pct.values())},
                        schema={"core": pl.Int32, "load_pct": pl.Float64})
    table = (
        busy.with_columns(pl.col("core").cast(pl.Int32))
        .join(service, on="core", how="left")
        .join(broker.rename({"core_pct": "broker_pct"}), on="core", how="left")
        .join(load, on="core", how="left")
        .with_columns(pl.col("service_pct", "broker_pct", "load_pct").fill_null(0.0))
    )
    others = pl.col("service_pct") + pl.col("broker_pct") + pl.col("load_pct")
    return table.with_columns(rest_pct=(pl.col("busy_pct") - others).clip(lower_bound=0.0)).select(
        CORE_TABLE_COLUMNS).sort("core")


def with_roles(table: pl.DataFrame, service_cores: Sequence[int]) -> pl.DataFrame:
    """`table` (one row per core, with `service_pct`) with `role`: "busiest" for the service's
    core where it used the most, "other" for its next, null for the rest and for cores the
    service may not use (ties: the lower core number first)."""
    ranked = (
        table.filter(pl.col("core").is_in(list(service_cores)))
        .sort(["service_pct", "core"], descending=[True, False])
        .head(len(ROLES))
        .with_row_index("rank")
        .select("core", role=pl.col("rank").replace_strict(list(range(len(ROLES))), list(ROLES)))
    )
    return table.join(ranked, on="core", how="left")


def load_by_core(cpu_pct: float, cores: Sequence[int]) -> dict[int, float]:
    """A load engine's CPU (% of one core, its own account over its run) spread evenly over
    the cores it was pinned to (the study's layouts pin it to one)."""
    return {core: cpu_pct / len(cores) for core in cores}


def role_means(cores: pl.DataFrame) -> pl.DataFrame:
    """Per `service` and `role` of a frame of `core_table` rows with `service`, `trial` and
    `role` (`with_roles`): `trials` (how many), `cores` (the core numbers that had the role,
    sorted), and the mean over the trials of every `*_pct` column, with the service's lowest
    and highest share (`service_min_pct`, `service_max_pct`). Rows without a role are left
    out."""
    pct = [c for c in CORE_TABLE_COLUMNS if c.endswith("_pct")]
    return (
        cores.filter(pl.col("role").is_not_null())
        .group_by("service", "role")
        .agg(pl.col("trial").n_unique().alias("trials"), pl.col("core").unique().sort().alias("cores"),
             *(pl.col(c).mean() for c in pct),
             service_min_pct=pl.col("service_pct").min(), service_max_pct=pl.col("service_pct").max())
        .sort("service", pl.col("role").replace_strict(list(ROLES), list(range(len(ROLES)))))
    )


def group_means(core_groups: pl.DataFrame, cores: pl.DataFrame) -> pl.DataFrame:
    """Per `service`, `role` and thread `group`: `core_pct`, the mean over the service's trials
    (in `cores`, as for `role_means`) of the group's share of the core that had the role, a
    trial where the group did not run there counting 0. `core_groups`: `group_core_pct` rows
    with `service`, `trial` and `role`."""
    trials = cores.group_by("service").agg(trials=pl.col("trial").n_unique())
    return (
        core_groups.filter(pl.col("role").is_not_null())
        .group_by("service", "role", "group")
        .agg(pl.col("core_pct").sum())
        .join(trials, on="service")
        .select("service", "role", "group", core_pct=pl.col("core_pct") / pl.col("trials"))
        .sort(["service", "role", "core_pct"], descending=[False, False, True])
    )


# The article's rows for the service's busiest and other core (data/article_claims.csv).
ARTICLE_KEYS: dict[str, str] = {"busiest": "cpu_busiest_core_pct", "other": "cpu_other_core_pct"}


def article_core_pct(claims: pl.DataFrame) -> pl.DataFrame:
    """The article's values as `service`, `role`, `article_pct` (% of that core), from its
    table (`analysis.claims.load_claims`): one row per role of `ARTICLE_KEYS` and per service
    with a value column there (`node_value`, `rust_value`)."""
    services = [c.removesuffix("_value") for c in claims.columns if c.endswith("_value")]
    rows = [
        {"service": service, "role": role, "article_pct": float(row[f"{service}_value"])}
        for role, key in ARTICLE_KEYS.items()
        for row in claims.filter(pl.col("key") == key).iter_rows(named=True)
        for service in services
    ]
    return pl.DataFrame(rows, schema={"service": pl.String, "role": pl.String, "article_pct": pl.Float64})
