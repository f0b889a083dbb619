"""`ingestlab ...`: a thin command line over experiments and results.

The last line printed by `smoke` and `run` is the path of the run directory written.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

from ingestlab import compare, inputs, report
from ingestlab.build import builders
from ingestlab.config import PROFILES, SERVICES, StudyConfig
from ingestlab.experiments import EXPERIMENTS
from ingestlab.host.component import ArtifactMissing, StartupError
from ingestlab.names import RUNTIMES
from ingestlab.results import Run, RunWarning, new_study_id
from ingestlab.summaries import PerService


def _config(args: argparse.Namespace) -> StudyConfig:
    overrides: dict[str, object] = {"runs_dir": Path(args.runs_dir)}
    if args.service:
        overrides["services"] = tuple(dict.fromkeys(args.service))
    if args.study_id:
        overrides["study_id"] = args.study_id
    if args.runtime:
        overrides["runtime"] = args.runtime
    return StudyConfig.for_profile(args.profile, **overrides)


def _delivery_frame(run: Run) -> pl.DataFrame:
    counts = run.summary.services
    return pl.DataFrame([{"service": s, **dataclasses.asdict(counts[s])} for s in SERVICES if s in counts])


def _print_delivery(run: Run) -> None:
    with pl.Config(tbl_hide_column_data_types=True, tbl_hide_dataframe_shape=True,
                   tbl_formatting="ASCII_MARKDOWN", tbl_cols=-1):
        print(_delivery_frame(run))
    _print_warnings(run)


def _print_warnings(run: Run) -> None:
    for text in run.warnings:
        print(f"WARNING: {text}")


def _lost(run: Run) -> int:
    return sum(counts.lost for counts in run.summary.services.values())


def _keep_off_the_service_cores(config: StudyConfig) -> None:
    """Run this process, and everything it starts (notebook kernels, Kafka clients), on the
    load cores: the code that drives a measurement must not take CPU from the service."""
    os.sched_setaffinity(0, config.cores.load)


def cmd_smoke(args: argparse.Namespace) -> int:
    config = _config(args)
    _keep_off_the_service_cores(config)
    run = EXPERIMENTS["smoke"](config)
    _print_delivery(run)
    print(run.path)
    return 1 if _lost(run) else 0


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([hms]?)")
_DURATION_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "": 1.0}


def parse_duration(text: str) -> float:
    """Seconds from a duration such as `1h`, `90m`, `3600s` or `3600` (seconds), `1.5h`; for
    `--duration` (an argparse type: a bad one is a usage error)."""
    match = _DURATION.fullmatch(text.strip().lower())
    seconds = float(match.group(1)) * _DURATION_UNIT_S[match.group(2)] if match else 0.0
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 1h, 90m, 3600s or 3600)")
    return seconds


def cmd_run(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.duration is not None:  # the soak's length for this run; the profiles keep theirs
        if args.experiment != "soak":
            print("ingestlab run: --duration sets the soak's length; it means nothing to "
                  f"{args.experiment}", file=sys.stderr)
            return 2
        config = config.replace(soak={"duration_s": args.duration})
    _keep_off_the_service_cores(config)
    run = inputs.run_experiment(config, args.experiment)
    summary = run.summary
    for key, value in dataclasses.asdict(summary).items():
        print(f"{key}: {value}")
    if isinstance(summary, PerService) and (ratios := summary.rust_over_node()):
        print(f"rust_over_node: {ratios}")
    _print_warnings(run)
    print(run.path)
    return 0


# Builds run side by side by `ingestlab build` (see cmd_build).
PARALLEL_BUILDS = 3


def cmd_build(args: argparse.Namespace) -> int:
    unknown = set(args.artifact) - set(builders.BUILDERS)
    if unknown:
        print(f"ingestlab build: unknown artifact(s) {sorted(unknown)}; choose from "
              f"{', '.join(builders.BUILDERS)}", file=sys.stderr)
        return 2
    names = args.artifact or list(builders.BUILDERS)

    def build(name: str) -> None:
        start = time.monotonic()
        path = builders.BUILDERS[name]()
        print(f"{name:6s} ready in {time.monotonic() - start:6.1f} s: {path}", flush=True)

    # The builds are independent processes (Maven's download, npm's librdkafka compile, cargo):
    # side by side they overlap one's waits with another's compiling on the 2 cores. The
    # images are made of their results, so they come last.
    first = [name for name in names if name not in builders.BUILT_FROM_OTHERS]
    with ThreadPoolExecutor(max_workers=PARALLEL_BUILDS) as pool:
        for done in [pool.submit(build, name) for name in first]:
            done.result()  # the first failure, with its command, after the others finished
    for name in names:
        if name in builders.BUILT_FROM_OTHERS:
            build(name)
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    """Execute the numbered notebooks with papermill, render reports/ (index.html last).

    Every notebook gets the study's id (new, or `--study-id` to resume or extend a study), so
    all of them read and make the runs of this study only."""
    study_id = args.study_id or new_study_id()
    print(f"study id: {study_id}", flush=True)
    # The notebooks build the default layout (their parameters do not change it).
    _keep_off_the_service_cores(StudyConfig.for_profile(args.profile))
    parameters = {"study_id": study_id}
    if args.runtime:  # else each notebook's own default
        parameters["runtime"] = args.runtime
    entries = report.run_study(args.profile, Path(args.notebooks), Path(args.reports),
                               parameters=parameters)
    print(Path(args.reports).resolve() / "index.html")
    return 0 if entries else 1


def cmd_report(args: argparse.Namespace) -> int:
    """Re-render reports/ from the notebooks a study already executed (no new measurements)."""
    reports_dir = Path(args.reports)
    executed = report.study_notebooks(reports_dir)
    if not executed:
        print(f"ingestlab report: no executed notebooks in {reports_dir}; run `make study` first",
              file=sys.stderr)
        return 2
    entries = [report.report_entry(nb, report.render_html(nb, reports_dir)) for nb in executed]
    print(report.render_index(reports_dir, entries))
    return 0


def _print_table(frame: pl.DataFrame) -> None:
    with pl.Config(tbl_hide_column_data_types=True, tbl_hide_dataframe_shape=True,
                   tbl_formatting="ASCII_MARKDOWN", tbl_cols=-1, tbl_rows=-1, fmt_str_lengths=1_000,
                   tbl_width_chars=10_000):
        print(frame)


def cmd_compare(args: argparse.Namespace) -> int:
    """Two studies' claims tables side by side (ingestlab.compare); 0 whatever they say, 2 when
    a study has no claims run."""
    try:
        a_table, a = compare.claims_of(args.runs_dir, args.a)
        b_table, b = compare.claims_of(args.runs_dir_b or args.runs_dir, args.b)
    except compare.StudyNotFound as exc:
        print(f"ingestlab compare: {exc}", file=sys.stderr)
        return 2
    frame = compare.compare_claims(a_table, b_table)
    _print_table(compare.header_table(a, b))
    for text in compare.header_warnings(a, b):
        print(f"WARNING: {text}")
    print()
    _print_table(compare.comparison_view(frame))
    print(compare.agreement_line(frame))
    if args.csv:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        frame.write_csv(args.csv)
        print(Path(args.csv).resolve())
    return 0


def cmd_studies(args: argparse.Namespace) -> int:
    """The studies in a runs directory, newest first, and which have a claims run to compare."""
    studies = compare.list_studies(args.runs_dir)
    if not studies.height:
        print(f"no study's runs in {Path(args.runs_dir).resolve()}")
        return 0
    _print_table(studies.select(
        pl.col("study_id").alias("study"), "profile", pl.col("created_utc").alias("created (UTC)"), "commit",
        pl.col("cpu_model").alias("CPU"), pl.col("hostname").alias("host"), "runs",
        pl.col("claims_run").fill_null("no").alias("claims run")))
    return 0


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=PROFILES, default="quick",
                   help="quick: seconds, for checks; full: the real study (default: quick)")
    p.add_argument("--service", action="append", choices=SERVICES,
                   help="service(s) or variant(s) to include (services/README.md); repeat for several "
                        "(default: the article's node and rust)")
    p.add_argument("--runs-dir", default="data/runs", help="where run directories are written")
    p.add_argument("--study-id", default=None,
                   help="the study the run belongs to, recorded in its config (default: none)")
    _add_runtime(p)


def _add_runtime(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runtime", choices=RUNTIMES, default=None,
                   help="run the broker and services as native processes or in containers of the "
                        f"workbook's Docker engine (default: {StudyConfig().runtime})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ingestlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    smoke = sub.add_parser("smoke", help="stack up, a burst to each service, read back from Kafka")
    _add_common(smoke)
    smoke.set_defaults(func=cmd_smoke)
    run = sub.add_parser("run", help="run one experiment and write its run directory")
    run.add_argument("experiment", choices=sorted(EXPERIMENTS))
    run.add_argument("--duration", type=parse_duration, default=None,
                     help="soak only: hold the rate this long (1h, 90m, 3600s, 3600); longer than "
                          "SoakConfig.segment_s (60 s) it is held in segments (docs/experiments.md, "
                          "'The long soak'); default: the profile's")
    _add_common(run)
    run.set_defaults(func=cmd_run)
    study = sub.add_parser("study", help="execute the notebooks in order and render reports/")
    study.add_argument("--profile", choices=PROFILES, default="full")
    study.add_argument("--notebooks", default="notebooks")
    study.add_argument("--reports", default="reports")
    study.add_argument("--study-id", default=None,
                       help="resume or extend an earlier study: reuse its runs, add to them "
                            "(default: a new study)")
    _add_runtime(study)
    study.set_defaults(func=cmd_study)
    rep = sub.add_parser("report", help="re-render reports/ from the executed notebooks")
    rep.add_argument("--reports", default="reports")
    rep.set_defaults(func=cmd_report)
    build = sub.add_parser("build", help="build the services and fetch the broker jars (make setup)")
    build.add_argument("artifact", nargs="*",
                       help=f"what to build: {', '.join(builders.BUILDERS)} (default: all)")
    build.set_defaults(func=cmd_build)
    cmp = sub.add_parser("compare", help="two studies' claims tables side by side, with agreeing verdicts")
    cmp.add_argument("a", help="study A: a study id, a claims run id, a run directory or a runs directory")
    cmp.add_argument("b", help="study B: the same kinds; looked up in --runs-dir-b if given")
    cmp.add_argument("--runs-dir", default="data/runs", help="where A's runs are (and B's by default)")
    cmp.add_argument("--runs-dir-b", default=None,
                     help="where B's runs are, e.g. another machine's data/runs (default: --runs-dir)")
    cmp.add_argument("--csv", default=None, help="also write the comparison's numbers to this CSV file")
    cmp.set_defaults(func=cmd_compare)
    studies = sub.add_parser("studies", help="the studies in a runs directory, to compare")
    studies.add_argument("--runs-dir", default="data/runs")
    studies.set_defaults(func=cmd_studies)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            # the CLI prints a run's warnings itself, once, after its table
            warnings.simplefilter("ignore", RunWarning)
            return int(args.func(args))
    except (StartupError, ArtifactMissing, report.NotebookError, inputs.InputsError) as exc:
        print(f"ingestlab: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ingestlab: interrupted; everything started was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
