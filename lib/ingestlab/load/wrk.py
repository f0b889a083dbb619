"""Closed-loop load from `wrk`: each connection sends its next POST as soon as the previous
answer arrives, so it finds the most a target can serve (a throughput ceiling), not latency
under a given rate: its latencies are coordinated-omission biased (a stall delays the
requests behind it instead of showing up as their latency).
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import tempfile
from pathlib import Path

from ingestlab.host.component import ArtifactMissing
from ingestlab.host.ports import require_loopback
from ingestlab.load.pinned import run_pinned

WRK_HINT = "apt-get install wrk (Debian)"
# The time units wrk prints, in ms.
_TIME_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def wrk_path() -> Path:
    found = shutil.which("wrk")
    if not found:
        raise ArtifactMissing(f"wrk not found on PATH: {WRK_HINT}")
    return Path(found)


@dataclasses.dataclass(frozen=True)
class WrkResult:
    """wrk's report. Latencies in ms; rates in requests/s; CPU in % of one core."""

    requests: int  # completed requests (answers of any status)
    duration_s: float  # wrk's measured run time
    requests_per_s: float
    latency_mean_ms: float
    latency_stdev_ms: float
    latency_max_ms: float
    latency_percentiles_ms: dict[int, float]  # 50, 75, 90, 99 (needs --latency)
    connect_errors: int
    read_errors: int
    write_errors: int
    timeouts: int  # requests with no answer within wrk's --timeout (not in the latencies)
    non_2xx_3xx: int  # answers with status >= 400 ("Non-2xx or 3xx responses")
    cpu_percent: float | None = None  # wrk's CPU during the run, set by run_wrk
    output: str = ""

    @property
    def errors(self) -> int:
        """Socket errors plus answers with status >= 400."""
        return self.connect_errors + self.read_errors + self.write_errors + self.timeouts + self.non_2xx_3xx


def _time_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise ValueError(f"not a wrk time: {text!r}")
    return float(match.group(1)) * _TIME_UNITS_MS[match.group(2)]


def parse_wrk_output(text: str) -> WrkResult:
    """Parse the text wrk 4.x prints (run with --latency). Raises ValueError if a required
    line is missing, e.g. when wrk could not connect at all."""

    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, text, re.MULTILINE)
        if match is None:
            raise ValueError(f"wrk output has no line matching {pattern!r}:\n{text[-2000:]}")
        return match

    latency = find(r"^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)\s+\S+%$")
    total = find(r"^\s+(\d+) requests in (\S+),")
    rate = find(r"^Requests/sec:\s+([\d.]+)$")
    percentiles = {int(p): _time_ms(v) for p, v in
                   re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", text, re.MULTILINE)}
    if not percentiles:
        raise ValueError("wrk output has no latency distribution (run wrk with --latency)")
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    connect, read, write, timeout = (int(n) for n in sockets.groups()) if sockets else (0, 0, 0, 0)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return WrkResult(
        requests=int(total.group(1)),
        duration_s=_time_ms(total.group(2)) / 1e3,
        requests_per_s=float(rate.group(1)),
        latency_mean_ms=_time_ms(latency.group(1)),
        latency_stdev_ms=_time_ms(latency.group(2)),
        latency_max_ms=_time_ms(latency.group(3)),
        latency_percentiles_ms=percentiles,
        connect_errors=connect,
        read_errors=read,
        write_errors=write,
        timeouts=timeout,
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
        output=text,
    )


def post_script(body_path: Path, content_type: str) -> str:
    """wrk Lua script that POSTs the bytes of `body_path` (read once per wrk thread)."""
    return (
        'wrk.method = "POST"\n'
        f'wrk.headers["Content-Type"] = [==[{content_type}]==]\n'
        f'local file = assert(io.open([==[{body_path}]==], "rb"))\n'
        "wrk.body = file:read(\"*a\")\n"
        "file:close()\n"
    )


def run_wrk(
    *,
    url: str,
    duration_s: int,
    body: bytes,
    connections: int,
    threads: int = 1,
    cores: tuple[int, ...] | None,
    content_type: str = "application/json",
    request_timeout_s: int = 2,
    timeout_s: float | None = None,
    nice: int = 0,
) -> WrkResult:
    """POST `body` to `url` over `connections` connections for `duration_s` whole seconds.

    wrk runs `threads` threads pinned to `cores`; a request unanswered after
    `request_timeout_s` counts as a timeout; wrk is killed (`ToolTimeout`) if it has not
    finished `timeout_s` seconds after launch (default: `duration_s` + `request_timeout_s` + 10).
    """
    require_loopback(url)
    if duration_s < 1 or connections < threads:
        raise ValueError("wrk needs duration_s >= 1 and at least one connection per thread")
    with tempfile.TemporaryDirectory(prefix="wrk-") as tmp:
        work = Path(tmp)
        (work / "body").write_bytes(body)
        (work / "post.lua").write_text(post_script(work / "body", content_type))
        argv = [str(wrk_path()), "-t", str(threads), "-c", str(connections), "-d", f"{duration_s}s",
                "--timeout", f"{request_timeout_s}s", "--latency", "-s", str(work / "post.lua"), url]
        run = run_pinned("wrk", argv, cores=cores, nice=nice, log_path=work / "wrk.log", load_s=duration_s,
                         timeout_s=timeout_s or duration_s + request_timeout_s + 10)
    if run.returncode != 0:
        raise RuntimeError(f"wrk failed (exit {run.returncode}):\n{run.output[-4000:]}")
    return dataclasses.replace(parse_wrk_output(run.output), cpu_percent=run.cpu_percent)
