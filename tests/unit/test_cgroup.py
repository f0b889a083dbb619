"""telemetry.cgroup: locating a container's cgroup (v1, v2, hybrid) and parsing its files; the
sampler's cgroup columns."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest

from ingestlab.telemetry.cgroup import (
    CGROUP_SAMPLE_SCHEMA,
    Cgroup,
    CgroupFiles,
    CgroupGone,
    CgroupNotFound,
    CgroupReading,
    locate,
    parse_flat_keyed,
    parse_mountinfo,
    parse_proc_cgroup,
    reading_v1,
    reading_v2,
)
from ingestlab.telemetry.sampler import SAMPLE_SCHEMA, ProcessSampler

CID = "3f1c2a9d0b7e"

# This project's machines: cgroup v1, cpu and cpuacct in hierarchies of their own, and an
# empty unified (v2) hierarchy beside them (the "hybrid" layout).
V1_MOUNTINFO = textwrap.dedent("""\
    22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
    31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
    32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
    33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
    34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
    35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
    40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
""")
V1_PROC_CGROUP = textwrap.dedent(f"""\
    9:name=systemd:/docker/{CID}
    4:memory:/docker/{CID}
    3:cpuset:/docker/{CID}
    2:cpuacct:/docker/{CID}
    1:cpu:/docker/{CID}
    0::/docker/{CID}
""")
# A common v1 layout: cpu and cpuacct co-mounted, optional fields before the "-".
V1_COMOUNTED_MOUNTINFO = textwrap.dedent("""\
    30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:10 - cgroup cgroup rw,cpu,cpuacct
    31 25 0:27 / /sys/fs/cgroup/memory rw,nosuid shared:11 - cgroup cgroup rw,memory
""")
V1_COMOUNTED_PROC_CGROUP = f"5:cpu,cpuacct:/docker/{CID}\n4:memory:/docker/{CID}\n"
# Pure v2, with the systemd cgroup driver.
V2_MOUNTINFO = "29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev - cgroup2 cgroup2 rw,nsdelegate\n"
V2_PROC_CGROUP = f"0::/system.slice/docker-{CID}.scope\n"

V1_MEMORY_STAT = textwrap.dedent("""\
    cache 212992
    rss 2174976
    rss_huge 0
    hierarchical_memory_limit 9223372036854771712
    total_cache 5242880
    total_rss 73400320
    total_rss_huge 0
""")
V1_CPU_STAT = "nr_periods 40\nnr_throttled 7\nthrottled_time 123456789\nnr_bursts 0\nburst_time 0\n"
V2_MEMORY_STAT = textwrap.dedent("""\
    anon 73400320
    file 5242880
    kernel 1048576
    kernel_stack 163840
    sock 0
    shmem 0
""")
V2_CPU_STAT = textwrap.dedent("""\
    usage_usec 2500000
    user_usec 2000000
    system_usec 500000
    nr_periods 40
    nr_throttled 7
    throttled_usec 1234
""")


def _exists_only(*paths: str):
    wanted = set(paths)
    return lambda path: path in wanted


# --- parsing --------------------------------------------------------------------------------
def test_proc_cgroup_lines_split_into_controllers_and_the_unified_key():
    paths = parse_proc_cgroup(V1_COMOUNTED_PROC_CGROUP + V2_PROC_CGROUP)
    assert paths["cpu"] == paths["cpuacct"] == paths["memory"] == f"/docker/{CID}"
    assert paths[""] == f"/system.slice/docker-{CID}.scope"
    assert parse_proc_cgroup(V1_PROC_CGROUP)["name=systemd"] == f"/docker/{CID}"


def test_mountinfo_keeps_only_cgroup_mounts_with_their_controllers():
    mounts = parse_mountinfo(V1_MOUNTINFO)
    assert [m.mountpoint for m in mounts] == [
        "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/cpuset",
        "/sys/fs/cgroup/memory", "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"]
    assert mounts[0].version == 1 and "cpu" in mounts[0].controllers
    assert mounts[-1].version == 2 and not mounts[-1].controllers
    comounted = parse_mountinfo(V1_COMOUNTED_MOUNTINFO)[0]  # optional fields before "-"
    assert {"cpu", "cpuacct"} <= comounted.controllers


def test_a_mount_of_a_sub_hierarchy_strips_its_root_and_unescapes_octal():
    (mount,) = parse_mountinfo(
        "35 31 0:32 /docker /sys/fs/my\\040cgroups/memory rw - cgroup cgroup rw,memory\n")
    assert mount.mountpoint == "/sys/fs/my cgroups/memory"
    assert mount.directory(f"/docker/{CID}") == Path(f"/sys/fs/my cgroups/memory/{CID}")
    assert mount.directory("/other") == Path("/sys/fs/my cgroups/memory/other")  # a namespace's view


def test_v1_is_used_when_the_unified_hierarchy_has_no_memory_controller():
    files = locate(V1_PROC_CGROUP, V1_MOUNTINFO,
                   exists=_exists_only(f"/sys/fs/cgroup/memory/docker/{CID}/memory.usage_in_bytes"))
    assert files == CgroupFiles(1, Path(f"/sys/fs/cgroup/memory/docker/{CID}"),
                                Path(f"/sys/fs/cgroup/cpu/docker/{CID}"),
                                Path(f"/sys/fs/cgroup/cpuacct/docker/{CID}"))
    comounted = locate(V1_COMOUNTED_PROC_CGROUP, V1_COMOUNTED_MOUNTINFO,
                       exists=_exists_only(f"/sys/fs/cgroup/memory/docker/{CID}/memory.usage_in_bytes"))
    assert comounted.cpu_dir == comounted.cpuacct_dir == Path(f"/sys/fs/cgroup/cpu,cpuacct/docker/{CID}")


def test_v2_is_used_where_memory_current_exists():
    directory = f"/sys/fs/cgroup/system.slice/docker-{CID}.scope"
    files = locate(V2_PROC_CGROUP, V2_MOUNTINFO, exists=_exists_only(f"{directory}/memory.current"))
    assert files == CgroupFiles(2, Path(directory), Path(directory), None)


def test_no_memory_cgroup_is_an_error_that_says_so():
    with pytest.raises(CgroupNotFound, match="memory cgroup"):
        locate(V2_PROC_CGROUP, V2_MOUNTINFO, exists=_exists_only())
    with pytest.raises(CgroupNotFound):
        locate("1:cpu:/x\n", V1_MOUNTINFO, exists=lambda path: True)


def test_v1_reading_takes_usage_total_rss_total_cache_cpuacct_and_throttled_time():
    reading = reading_v1("80000000\n", V1_MEMORY_STAT, "2500000000\n", V1_CPU_STAT)
    assert reading == CgroupReading(memory_bytes=80_000_000, rss_bytes=73_400_320, cache_bytes=5_242_880,
                                    cpu_ns=2_500_000_000, throttled_ns=123_456_789)
    # without the hierarchical totals, the cgroup's own numbers; without cpu files, None
    own = reading_v1("4009984", "cache 212992\nrss 2174976\n", None, None)
    assert own == CgroupReading(4_009_984, 2_174_976, 212_992, None, None)


def test_v2_reading_takes_current_anon_file_and_usec_as_ns():
    reading = reading_v2("80000000\n", V2_MEMORY_STAT, V2_CPU_STAT)
    assert reading == CgroupReading(memory_bytes=80_000_000, rss_bytes=73_400_320, cache_bytes=5_242_880,
                                    cpu_ns=2_500_000_000, throttled_ns=1_234_000)
    assert reading_v2("1", "anon 1\n", None).cpu_ns is None


def test_flat_keyed_files_ignore_blank_lines():
    assert parse_flat_keyed("a 1\n\nb 22\n") == {"a": 1, "b": 22}


def test_the_schema_names_the_five_columns_with_units():
    assert list(CGROUP_SAMPLE_SCHEMA) == ["cgroup_memory_bytes", "cgroup_rss_bytes", "cgroup_cache_bytes",
                                          "cgroup_cpu_ns", "cgroup_throttled_ns"]
    assert not set(CGROUP_SAMPLE_SCHEMA) & set(SAMPLE_SCHEMA)
    assert len(CgroupReading._fields) == len(CGROUP_SAMPLE_SCHEMA)


# --- reading files --------------------------------------------------------------------------
def test_reading_files_of_a_v1_cgroup_and_its_removal(tmp_path):
    memory, cpu = tmp_path / "memory", tmp_path / "cpu"
    memory.mkdir()
    cpu.mkdir()
    (memory / "memory.usage_in_bytes").write_text("80000000\n")
    (memory / "memory.stat").write_text(V1_MEMORY_STAT)
    (cpu / "cpuacct.usage").write_text("2500000000\n")
    (cpu / "cpu.stat").write_text(V1_CPU_STAT)
    cgroup = Cgroup(CgroupFiles(1, memory, cpu, cpu))
    assert cgroup.read() == reading_v1("80000000", V1_MEMORY_STAT, "2500000000", V1_CPU_STAT)
    (memory / "memory.usage_in_bytes").unlink()
    with pytest.raises(CgroupGone):
        cgroup.read()


def _own_memory_cgroup() -> Cgroup:
    try:
        return Cgroup.of_pid(os.getpid())
    except CgroupNotFound:
        pytest.skip("this machine mounts no memory cgroup")


def test_this_process_cgroup_reads_plausible_numbers():
    reading = _own_memory_cgroup().read()
    assert reading.memory_bytes > 0 and reading.rss_bytes is not None and reading.rss_bytes >= 0
    assert reading.cpu_ns is None or reading.cpu_ns > 0


# --- the sampler's columns ------------------------------------------------------------------
@pytest.fixture
def sleeper():
    """A Python child that starts a grandchild, then waits."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import subprocess, sys
        grandchild = subprocess.Popen(["sleep", "30"])
        print("ready", flush=True)
        sys.stdin.readline()
        grandchild.kill()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    yield proc
    proc.kill()
    proc.wait()


class _Counting:
    def __init__(self) -> None:
        self.calls = 0

    def read(self) -> CgroupReading:
        self.calls += 1
        return CgroupReading(1000 * self.calls, 600, 400, 10 * self.calls, 0)


def test_a_cgroup_source_adds_its_columns_on_the_main_process_rows_only(sleeper):
    source = _Counting()
    with ProcessSampler(sleeper, interval_s=0.05, children_every_s=0.01, cgroup=source) as sampler:
        time.sleep(0.3)
    samples = sampler.samples()
    assert samples.schema == pl.Schema({**SAMPLE_SCHEMA, **CGROUP_SAMPLE_SCHEMA})
    main = samples.filter(pl.col("pid") == sleeper.pid)
    children = samples.filter(pl.col("pid") != sleeper.pid)
    assert main["cgroup_memory_bytes"].null_count() == 0 and main["cgroup_memory_bytes"].is_sorted()
    assert len(main) == source.calls  # one cgroup read per tick
    assert len(children) > 0 and children["cgroup_memory_bytes"].null_count() == len(children)


def test_a_native_component_keeps_the_plain_schema(sleeper):
    with ProcessSampler(sleeper, interval_s=0.05) as sampler:
        time.sleep(0.1)
    assert sampler.cgroup is None and sampler.samples().schema == pl.Schema(SAMPLE_SCHEMA)


def test_a_container_component_gets_its_cgroup_found_from_its_pid(sleeper):
    _own_memory_cgroup()  # skips where no memory cgroup is mounted

    class LooksLikeAContainer:
        runtime = "container"
        pid = sleeper.pid

    with ProcessSampler(LooksLikeAContainer(), interval_s=0.05) as sampler:
        time.sleep(0.2)
    assert isinstance(sampler.cgroup, Cgroup)
    main = sampler.samples().filter(pl.col("pid") == sleeper.pid)
    assert (main["cgroup_memory_bytes"] > 0).all()


def test_a_removed_cgroup_ends_sampling_like_an_exited_process(sleeper):
    class Vanishing:
        def read(self) -> CgroupReading:
            raise CgroupGone("/sys/fs/cgroup/memory/docker/x")

    with ProcessSampler(sleeper, interval_s=0.05, cgroup=Vanishing()) as sampler:
        deadline = time.monotonic() + 5
        while not sampler.stats.exited and time.monotonic() < deadline:
            time.sleep(0.02)
    assert sampler.stats.exited
