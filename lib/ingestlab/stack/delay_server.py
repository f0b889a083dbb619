"""A fixed-delay HTTP endpoint (infra/delay-server): the yardstick for latency accuracy.

Thread-per-connection with nanosleep, so its delay is accurate to tens of microseconds;
nginx's `echo_sleep` and event-loop servers round to their 1 ms timer ticks.
"""

from __future__ import annotations

from pathlib import Path

from ingestlab.build import artifacts
from ingestlab.host.component import wait_until
from ingestlab.host.ports import LOOPBACK, free_port
from ingestlab.host.process import NativeProcess


class DelayServer(NativeProcess):
    """Answers every request 202 `delay_ms` after its body arrived, on 127.0.0.1:`port`."""

    def __init__(self, *, log_dir: Path, delay_ms: float = 5.0, cores: tuple[int, ...] | None = None,
                 start_timeout_s: float = 10.0) -> None:
        self.delay_ms = delay_ms
        self.port = free_port()
        self.start_timeout_s = start_timeout_s
        binary = artifacts.require(artifacts.delay_server_binary(), "the delay server binary")
        super().__init__("delay-server",
                         [str(binary), "--port", str(self.port), "--delay-us", str(round(delay_ms * 1000))],
                         log_path=log_dir / "delay-server.log", cores=cores,
                         endpoint=f"{LOOPBACK}:{self.port}")

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/delay"

    def start(self) -> DelayServer:
        super().start()
        wait_until(lambda: "listening on" in self.logs(), component=self, timeout_s=self.start_timeout_s,
                   what="listening", hint=artifacts.SETUP_HINT)
        return self

    def describe(self) -> dict[str, object]:
        return {"delay_ms": self.delay_ms, "port": self.port, "cores": self.cores}
