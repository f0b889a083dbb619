"""A container's memory and CPU from its cgroup, the way the engine accounts them.

A container's processes have host pids, so `/proc` telemetry (RSS, threads, CPU per thread)
works for them unchanged. The cgroup adds what only the container as a whole has: the memory
charged to it (anonymous memory *and* page cache, which is what a memory limit acts on) and its
CPU time and throttling.

The cgroup is found from `/proc/<pid>/cgroup` of the container's main process and the cgroup
mounts in `/proc/self/mountinfo`. Version 2 is used where the memory controller lives in the
unified hierarchy (`memory.current` present); otherwise version 1, as on this project's
machines (cgroup v1 with an empty unified hierarchy beside it):

| column                | v2                            | v1                                 |
|-----------------------|-------------------------------|------------------------------------|
| `cgroup_memory_bytes` | memory.current                | memory.usage_in_bytes              |
| `cgroup_rss_bytes`    | memory.stat `anon`            | memory.stat `total_rss`            |
| `cgroup_cache_bytes`  | memory.stat `file`            | memory.stat `total_cache`          |
| `cgroup_cpu_ns`       | cpu.stat `usage_usec` x 1000  | cpuacct.usage                      |
| `cgroup_throttled_ns` | cpu.stat `throttled_usec` x 1000 | cpu.stat `throttled_time`       |

All values are cumulative (CPU) or current (memory), in bytes and nanoseconds. Throttling only
happens under a CPU quota; the study pins containers with a cpuset and sets no quota, so it
stays 0 unless someone sets one. The parsing functions are pure (texts in, numbers out); `Cgroup`
reads the files.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import polars as pl

CGROUP_SAMPLE_SCHEMA: dict[str, pl.DataType] = {
    "cgroup_memory_bytes": pl.Int64(),   # memory charged to the container (anon + page cache + kernel)
    "cgroup_rss_bytes": pl.Int64(),      # anonymous memory
    "cgroup_cache_bytes": pl.Int64(),    # page cache (file-backed)
    "cgroup_cpu_ns": pl.Int64(),         # cumulative CPU time of every process in the container
    "cgroup_throttled_ns": pl.Int64(),   # cumulative time throttled by a CPU quota
}


class CgroupReading(NamedTuple):
    """One reading of a container's cgroup (see the module's table); None where not reported."""

    memory_bytes: int
    rss_bytes: int | None
    cache_bytes: int | None
    cpu_ns: int | None
    throttled_ns: int | None


class CgroupNotFound(LookupError):
    """The process has no cgroup with a memory controller that this machine mounts."""


class CgroupGone(Exception):
    """The cgroup's files vanished: the container stopped and the engine removed its cgroup."""


# --- pure parsing -----------------------------------------------------------------------------
def parse_proc_cgroup(text: str) -> dict[str, str]:
    """`/proc/<pid>/cgroup` as {controller: path}; the unified (v2) hierarchy's key is "".

    Lines are `id:controllers:path`; v1 controllers are comma separated (`4:cpu,cpuacct:/x`
    gives both "cpu" and "cpuacct"), named hierarchies keep their `name=` prefix, and the v2
    line is `0::/path`.
    """
    paths: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        _, controllers, path = line.split(":", 2)
        if not controllers:
            paths[""] = path
        for controller in filter(None, controllers.split(",")):
            paths[controller] = path
    return paths


@dataclass(frozen=True)
class CgroupMount:
    """A mounted cgroup hierarchy (one line of mountinfo)."""

    version: Literal[1, 2]
    root: str                     # the directory of the hierarchy that is mounted
    mountpoint: str
    controllers: frozenset[str]   # v1: the controllers (and `name=...`) of the hierarchy; v2: empty

    def directory(self, cgroup_path: str) -> Path:
        """Where a cgroup at `cgroup_path` (as /proc/<pid>/cgroup names it) is in this mount."""
        rel = cgroup_path
        if self.root != "/" and (rel == self.root or rel.startswith(self.root.rstrip("/") + "/")):
            rel = rel[len(self.root.rstrip("/")):]
        return Path(self.mountpoint) / rel.lstrip("/")


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040 ...)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[CgroupMount]:
    """The cgroup (v1) and cgroup2 mounts of a `/proc/<pid>/mountinfo` text.

    A line is `id parent major:minor root mountpoint options [optional fields] - fstype source
    super_options`; the optional fields end at the lone "-".
    """
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        fstype, super_options = fields[sep + 1], fields[sep + 3] if len(fields) > sep + 3 else ""
        if fstype not in ("cgroup", "cgroup2"):
            continue
        root, mountpoint = _unescape(fields[3]), _unescape(fields[4])
        if fstype == "cgroup2":
            mounts.append(CgroupMount(2, root, mountpoint, frozenset()))
        else:
            mounts.append(CgroupMount(1, root, mountpoint, frozenset(super_options.split(","))))
    return mounts


def parse_flat_keyed(text: str) -> dict[str, int]:
    """A cgroup "flat keyed" file (memory.stat, cpu.stat): `key value` per line."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip():
            values[key] = int(value)
    return values


def reading_v2(memory_current: str, memory_stat: str, cpu_stat: str | None) -> CgroupReading:
    """A reading from cgroup v2 texts: memory.current, memory.stat, cpu.stat (may be absent)."""
    stat = parse_flat_keyed(memory_stat)
    cpu = parse_flat_keyed(cpu_stat) if cpu_stat is not None else {}
    usage_usec, throttled_usec = cpu.get("usage_usec"), cpu.get("throttled_usec")
    return CgroupReading(
        memory_bytes=int(memory_current),
        rss_bytes=stat.get("anon"),
        cache_bytes=stat.get("file"),
        cpu_ns=usage_usec * 1000 if usage_usec is not None else None,
        throttled_ns=throttled_usec * 1000 if throttled_usec is not None else None,
    )


def reading_v1(usage_in_bytes: str, memory_stat: str, cpuacct_usage: str | None,
               cpu_stat: str | None) -> CgroupReading:
    """A reading from cgroup v1 texts: memory.usage_in_bytes, memory.stat, cpuacct.usage and
    cpu.stat (the CPU ones may be absent).

    memory.stat's `total_*` keys include the cgroup's descendants (with use_hierarchy, the
    default); without them the cgroup's own `rss`/`cache` are used.
    """
    stat = parse_flat_keyed(memory_stat)
    cpu = parse_flat_keyed(cpu_stat) if cpu_stat is not None else {}
    return CgroupReading(
        memory_bytes=int(usage_in_bytes),
        rss_bytes=stat.get("total_rss", stat.get("rss")),
        cache_bytes=stat.get("total_cache", stat.get("cache")),
        cpu_ns=int(cpuacct_usage) if cpuacct_usage is not None else None,
        throttled_ns=cpu.get("throttled_time"),
    )


@dataclass(frozen=True)
class CgroupFiles:
    """Where one cgroup's files are: its version and the directory of each controller used."""

    version: Literal[1, 2]
    memory_dir: Path
    cpu_dir: Path | None       # v2: the same directory; v1: the cpu controller's
    cpuacct_dir: Path | None   # v1 only: the cpuacct controller's (often the same as cpu's)


def locate(proc_cgroup: str, mountinfo: str, *,
           exists: Callable[[str], bool] = os.path.exists) -> CgroupFiles:
    """The files of the cgroup that `proc_cgroup` (a /proc/<pid>/cgroup text) names, mounted as
    `mountinfo` says. v2 if its directory in the unified hierarchy has memory.current (the
    memory controller is there), else v1; `exists` is injectable for tests."""
    paths = parse_proc_cgroup(proc_cgroup)
    mounts = parse_mountinfo(mountinfo)
    if "" in paths:
        for mount in (m for m in mounts if m.version == 2):
            directory = mount.directory(paths[""])
            if exists(str(directory / "memory.current")):
                return CgroupFiles(2, directory, directory, None)

    def v1_dir(controller: str) -> Path | None:
        if controller not in paths:
            return None
        for mount in mounts:
            if mount.version == 1 and controller in mount.controllers:
                return mount.directory(paths[controller])
        return None

    memory_dir = v1_dir("memory")
    if memory_dir is None or not exists(str(memory_dir / "memory.usage_in_bytes")):
        raise CgroupNotFound(f"no mounted memory cgroup for {paths or 'an empty cgroup list'}")
    return CgroupFiles(1, memory_dir, v1_dir("cpu"), v1_dir("cpuacct"))


# --- reading ----------------------------------------------------------------------------------
_GONE_ERRNOS = {errno.ENOENT, errno.ENODEV, errno.ESRCH}


def _read_text(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 65536).decode()
    finally:
        os.close(fd)


def _read_optional(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return _read_text(path)
    except FileNotFoundError:
        return None


class Cgroup:
    """A container's cgroup; `read()` costs four small reads (about 40 us here).

    ```
    cgroup = Cgroup.of_pid(container.pid)
    cgroup.read().memory_bytes
    ```
    """

    def __init__(self, files: CgroupFiles) -> None:
        self.files = files

    @classmethod
    def of_pid(cls, pid: int) -> Cgroup:
        """The cgroup of host process `pid` (raises CgroupNotFound, or ProcessLookupError if
        there is no such process)."""
        try:
            proc_cgroup = Path(f"/proc/{pid}/cgroup").read_text()
        except FileNotFoundError as exc:
            raise ProcessLookupError(pid) from exc
        return cls(locate(proc_cgroup, Path("/proc/self/mountinfo").read_text()))

    @property
    def version(self) -> int:
        return self.files.version

    def read(self) -> CgroupReading:
        """The cgroup's memory and CPU now; raises CgroupGone once the cgroup was removed."""
        f = self.files
        try:
            if f.version == 2:
                return reading_v2(_read_text(f.memory_dir / "memory.current"),
                                  _read_text(f.memory_dir / "memory.stat"),
                                  _read_optional(f.cpu_dir / "cpu.stat" if f.cpu_dir else None))
            return reading_v1(_read_text(f.memory_dir / "memory.usage_in_bytes"),
                              _read_text(f.memory_dir / "memory.stat"),
                              _read_optional(f.cpuacct_dir / "cpuacct.usage" if f.cpuacct_dir else None),
                              _read_optional(f.cpu_dir / "cpu.stat" if f.cpu_dir else None))
        except OSError as exc:
            if exc.errno in _GONE_ERRNOS:
                raise CgroupGone(str(f.memory_dir)) from exc
            raise

    def __repr__(self) -> str:
        return f"Cgroup(v{self.files.version}, {self.files.memory_dir})"
