"""Notebook 04: a startup run beside the article's start-up claims, the parts of each
service's deployment footprint, and what the Node service's node_modules holds.

Sizes on disk in MB (10^6 bytes, as registries report images), memory in MiB.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ingestlab.files import DistinctFiles
from ingestlab.notebook.article import article_claims
from ingestlab.results import Run
from ingestlab.summaries import StartupSummary
from ingestlab.units import MB, MS_PER_S

# (claim key, metric, unit shown, field of the run's summary, factor from the field's unit
# to the one shown). Factors rather than divisors keep the numbers as they always were.
_STARTUP_METRICS = (
    ("cold_start_s", "cold start: spawn to first 202", "s", "cold_start_ms", 1 / MS_PER_S),
    ("memory_startup_mb", "memory once ready (RSS)", "MiB", "rss_at_ready_mib", 1.0),
    ("image_size_mb", "deployment footprint (article: image size)", "MB", "footprint_bytes", 1 / MB),
)

# Groups of node_modules_breakdown: (group, needed at run time).
_ADDONS = ("native addons (*.node)", True)
_ADDON_LIBRARIES = ("shared libraries the addons load (librdkafka)", True)
_NODE_RDKAFKA = ("node-rdkafka: JavaScript, C++ sources, typings", True)
_OTHER_PACKAGES = ("the other packages (express and its dependencies, nan, ...)", True)
# node-rdkafka's directories left by `npm ci` that only a build reads.
_NODE_RDKAFKA_BUILD = {
    "build": ("node-rdkafka/build/: object files and static archives", False),
    "deps": ("node-rdkafka/deps/: librdkafka's sources and build tree", False),
}


def footprint_parts(run: Run) -> pl.DataFrame:
    """A startup run's deployment footprint, one row per part: service, kind (executable,
    shared-library, node_modules, source), name, path, bytes, mb (10^6 bytes), base (a
    glibc / libgcc library any glibc-based base image already has)."""
    summary: StartupSummary = run.summary
    rows = [
        {"service": service, **part}
        for service, found in summary.services.items()
        for part in found.footprint_parts
    ]
    return pl.DataFrame(rows, infer_schema_length=None).with_columns(mb=pl.col("bytes") / MB)



def image_parts(run: Run) -> pl.DataFrame:
    """A startup run's container images, one row per part: service, flavour (minimal,
    conventional), tag, part, bytes, mb (10^6 bytes). Empty for a run of native processes
    (no image measured)."""
    summary: StartupSummary = run.summary
    rows = [
        {"service": service, "flavour": flavour, "tag": image["tag"], "part": part["part"],
         "bytes": part["bytes"]}
        for service, found in summary.services.items()
        for flavour, image in found.images.items()
        for part in image["parts"]
    ]
    schema = {"service": pl.String, "flavour": pl.String, "tag": pl.String, "part": pl.String,
              "bytes": pl.Int64}
    return pl.DataFrame(rows, schema=schema).with_columns(mb=pl.col("bytes") / MB)


def _measured(summary: StartupSummary, service: str, field: str, factor: float) -> float | None:
    """`field` of `service`'s result times `factor`; None for a service the run did not measure."""
    found = summary.services.get(service)
    return None if found is None else getattr(found, field) * factor


def startup_vs_article(run: Run) -> pl.DataFrame:
    """A startup run's medians beside the article's claims (data/article_claims.csv): cold
    start (s), memory once ready (RSS, MiB; the article says MB) and the deployment footprint
    (MB, standing in for the container image). Columns: metric, unit, node_article,
    rust_article, node_measured, rust_measured, article_ratio, measured_ratio (rust / node)."""
    claims = article_claims()
    summary: StartupSummary = run.summary
    rows = []
    for key, metric, unit, field, factor in _STARTUP_METRICS:
        claim = claims[key]
        node, rust = (_measured(summary, service, field, factor) for service in ("node", "rust"))
        rows.append({
            "metric": metric,
            "unit": unit,
            "node_article": float(claim["node_value"]),
            "rust_article": float(claim["rust_value"]),
            "node_measured": node,
            "rust_measured": rust,
            "article_ratio": claim["rust_value"] / claim["node_value"],
            "measured_ratio": rust / node if node and rust is not None else None,
        })
    return pl.DataFrame(rows, infer_schema_length=None)


def _package_group(root: Path, path: Path) -> tuple[str, bool]:
    """(group, needed at run time) of a file in a package of node_modules `root`."""
    package, *inside = path.relative_to(root).parts
    if package != "node-rdkafka":
        return _OTHER_PACKAGES
    if len(inside) > 1 and inside[0] in _NODE_RDKAFKA_BUILD:  # a file under build/ or deps/
        return _NODE_RDKAFKA_BUILD[inside[0]]
    return _NODE_RDKAFKA


def node_modules_breakdown(node_modules: Path | None = None) -> pl.DataFrame:
    """What the Node service's node_modules holds, in groups a deployment would keep or drop.

    Read from the installed tree (`ingestlab build node` puts it in the build cache), not
    from a run. Each file is counted once (node-gyp hard-links its outputs: `DistinctFiles`)
    in the first group it belongs to:

    - native addons (`*.node`) and the shared libraries they load from inside node_modules
      (librdkafka, found with ldd): needed at run time;
    - everything of the other packages, and node-rdkafka outside `build/` and `deps/` (its
      JavaScript, C++ sources, typings): needed at run time (the sources only by a rebuild);
    - node-rdkafka's `build/` (object files, static archives) and `deps/` (librdkafka's
      sources and its build tree): left by `npm ci`, needed only to build.

    Files directly in node_modules (npm's `.package-lock.json`) belong to no package and are
    not counted. Columns: group, needed_at_runtime, files, bytes, mb (10^6 bytes).
    """
    # Imported here: reading saved runs should not need the stack's modules or ldd.
    from ingestlab.build import artifacts
    from ingestlab.build.footprint import shared_libraries

    root = (node_modules or artifacts.NODE_DIR / "node_modules").resolve(strict=True)
    files = DistinctFiles()
    totals: dict[tuple[str, bool], list[int]] = {}  # group -> [files, bytes]

    def count(group: tuple[str, bool], size: int) -> None:
        entry = totals.setdefault(group, [0, 0])
        entry[0] += 1
        entry[1] += size

    addons = sorted(root.rglob("*.node"))
    for _path, size in files.paths(addons):
        count(_ADDONS, size)
    loaded = (library for addon in addons for library in shared_libraries(addon).values())
    libraries = [library for library in loaded if library.is_relative_to(root)]
    for _path, size in files.paths(libraries):
        count(_ADDON_LIBRARIES, size)
    for package in sorted(p for p in root.iterdir() if p.is_dir()):
        for path, size in files.tree(package):
            count(_package_group(root, path), size)
    rows = [
        {"group": group, "needed_at_runtime": runtime, "files": n, "bytes": size}
        for (group, runtime), (n, size) in totals.items()
    ]
    return (
        pl.DataFrame(rows)
        .with_columns(mb=pl.col("bytes") / MB)
        .sort("needed_at_runtime", "bytes", descending=[True, True])
    )
