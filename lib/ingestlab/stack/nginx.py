"""nginx as a reference endpoint: the fastest thing the load tools can talk to on this machine.

`POST /accept` (infra/nginx/nginx.conf.template) reads the whole body into memory (bodies up
to 128 KiB; larger ones get 413) and answers 202 with a tiny JSON body, so a load tool's
ceiling can be measured without a service in the way. A known service time for checking a
tool's latency accounting comes from `stack.delay_server` instead.

One worker process, pinned (with the master) to the caller's cores, no access log, error log
to the component log, pid file and temp dirs in its own work dir.
"""

from __future__ import annotations

import shutil
import string
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from ingestlab.host.component import StartupError, wait_until
from ingestlab.host.ports import LOOPBACK, free_port
from ingestlab.host.process import NativeProcess
from ingestlab.paths import PROJECT_ROOT

TEMPLATE = PROJECT_ROOT / "infra" / "nginx" / "nginx.conf.template"
ECHO_MODULE = Path("/usr/lib/nginx/modules/ngx_http_echo_module.so")
ACCEPT_PATH = "/accept"
HEALTH_PATH = "/healthz"
HINT = "apt-get install nginx-light libnginx-mod-http-echo (Debian); a port clash is retryable"


class ReferenceEndpoint(NativeProcess):
    """nginx in the foreground on 127.0.0.1:`port` (a free port by default).

    Use as a context manager: entering writes the config under `work_dir`, starts nginx pinned
    to `cores` and returns once its worker answers `GET /healthz`.
    """

    def __init__(
        self,
        *,
        work_dir: Path,
        cores: tuple[int, ...] | None = None,
        port: int | None = None,
        start_timeout_s: float = 15.0,
        nginx: str = "nginx",
    ) -> None:
        self.work_dir = work_dir
        self.port = port or free_port()
        self.start_timeout_s = start_timeout_s
        self.binary = shutil.which(nginx) or shutil.which(nginx, path="/usr/sbin:/sbin") or nginx
        super().__init__(
            "nginx",
            [self.binary, "-p", str(work_dir), "-c", str(self.config_path), "-e", "stderr",
             "-g", "daemon off;"],
            log_path=work_dir / "nginx.log",
            cores=cores,
            endpoint=f"{LOOPBACK}:{self.port}",
        )

    @property
    def config_path(self) -> Path:
        return self.work_dir / "nginx.conf"

    @property
    def pid_path(self) -> Path:
        return self.work_dir / "nginx.pid"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def accept_url(self) -> str:
        return self.url + ACCEPT_PATH

    def render_config(self) -> str:
        return string.Template(TEMPLATE.read_text()).substitute(
            echo_module=ECHO_MODULE,
            pid_path=self.pid_path,
            temp_dir=self.work_dir / "tmp",
            port=self.port,
        )

    def ready(self) -> bool:
        """True once *this* nginx serves requests: it writes its pid file only after binding
        the port (so an answer from some other process holding the port does not count), and
        /healthz is answered by its worker."""
        try:
            if int(self.pid_path.read_text().strip() or 0) != self.pid:
                return False
            with urllib.request.urlopen(self.url + HEALTH_PATH, timeout=1.0) as response:
                return response.status == 200
        except (FileNotFoundError, ValueError, urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def start(self) -> ReferenceEndpoint:
        for path, what in ((self.binary, "nginx binary"), (ECHO_MODULE, "nginx echo module")):
            if not Path(path).exists():
                raise StartupError(self.name, f"{what} not found at {path}", hint=HINT)
        (self.work_dir / "tmp").mkdir(parents=True, exist_ok=True)  # nginx makes only the last level
        self.pid_path.unlink(missing_ok=True)
        self.config_path.write_text(self.render_config())
        super().start()
        try:
            wait_until(self.ready, component=self, timeout_s=self.start_timeout_s,
                       what=f"answering on {self.url}{HEALTH_PATH}", hint=HINT)
        except BaseException:
            self.kill()
            raise
        return self

    def __enter__(self) -> ReferenceEndpoint:
        return self.start()

    def version(self) -> str:
        """e.g. "nginx/1.22.1" (nginx prints it on stderr)."""
        done = subprocess.run([self.binary, "-v"], capture_output=True, text=True, timeout=10)
        return done.stderr.strip().removeprefix("nginx version: ")

    def describe(self) -> dict[str, object]:
        """For a run's meta.json."""
        return {"argv": list(self.argv), "port": self.port, "cores": self.cores,
                "config": str(self.config_path), "version": self.version()}
