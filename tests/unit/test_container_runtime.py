"""The container runtime's pure parts (no engine): container arguments, labels, the broker's and
services' commands in their images, runtime selection, and the stop/kill/pause logic of
`ContainerProcess` against a stand-in for the engine's container object."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import get_args

import psutil
import pytest
import requests

from ingestlab.build import artifacts, layout
from ingestlab.cli import _config, build_parser
from ingestlab.config import StudyConfig
from ingestlab.engine.container import (
    NETWORK_MODE,
    Bind,
    ContainerProcess,
    container_kwargs,
    remove_containers,
    remove_orphans,
)
from ingestlab.engine.labels import (
    CONTAINER_LABEL,
    OWNER_LABEL,
    ROLE_LABEL,
    STACK_LABEL,
    container_labels,
    owner_alive,
    owner_value,
)
from ingestlab.names import (
    CONTAINER,
    CONVENTIONAL,
    IMAGE_FLAVOURS,
    MINIMAL,
    NATIVE,
    RUNTIMES,
    ImageFlavour,
    Runtime,
)
from ingestlab.stack.kafka import ContainerKafkaBroker, KafkaBroker
from ingestlab.stack.services import (
    ContainerService,
    ServiceProcess,
    container_spec_for,
    spec_for,
)
from ingestlab.stack.stack import ContainerRuntime, NativeRuntime, Stack, runtime_for
from ingestlab.variants import SERVICES, variant


# --- container arguments and labels ---------------------------------------------------------
def test_container_kwargs_use_host_networking_the_cores_and_the_whole_argv_as_entrypoint(tmp_path):
    kwargs = container_kwargs("rust", ["/app/ingest-rust", "--flag"], image="ingestlab/rust:minimal-abc",
                              env={"PORT": "1234"}, cwd="/app", cores=(1,),
                              mounts=[Bind.same_path(tmp_path)], labels={"x": "y"})
    assert kwargs["network_mode"] == NETWORK_MODE == "host"
    assert kwargs["cpuset_cpus"] == "1"
    assert kwargs["entrypoint"] == ["/app/ingest-rust", "--flag"]  # neither ENTRYPOINT nor CMD adds
    assert kwargs["env"] == {"PORT": "1234"} and kwargs["working_dir"] == "/app"
    assert kwargs["volumes"] == [(str(tmp_path), str(tmp_path), "rw")]
    assert kwargs["labels"] == {"x": "y"} and kwargs["image"] == "ingestlab/rust:minimal-abc"
    assert kwargs["name"].startswith("ingestlab-rust-")
    assert "network" not in kwargs and "ports" not in kwargs


def test_several_cores_and_defaults():
    kwargs = container_kwargs("kafka", ["java"], image="i", cores=(0, 1))
    assert kwargs["cpuset_cpus"] == "0,1"
    assert "working_dir" not in kwargs and kwargs["volumes"] == []
    assert kwargs["labels"][CONTAINER_LABEL] == "1" and kwargs["labels"][ROLE_LABEL] == "kafka"
    assert "cpuset_cpus" not in container_kwargs("x", ["a"], image="i")
    with pytest.raises(ValueError):
        container_kwargs("x", [], image="i")


def test_labels_name_the_workbook_the_owner_the_stack_and_the_role():
    labels = container_labels("node", stack_id="s1")
    assert labels[CONTAINER_LABEL] == "1" and labels[ROLE_LABEL] == "node" and labels[STACK_LABEL] == "s1"
    assert labels[OWNER_LABEL] == owner_value() and owner_value().startswith(f"{os.getpid()}:")
    assert STACK_LABEL not in container_labels("node")


def test_an_owner_is_alive_only_with_the_same_pid_and_start_time():
    assert owner_alive(owner_value())
    pid, _, start = owner_value().partition(":")
    assert not owner_alive(f"{pid}:{int(start) + 1}")  # a reused pid
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    assert not owner_alive(f"{done.stdout.strip()}:1")
    assert not owner_alive("garbage") and not owner_alive("")


class _FakeContainer:
    def __init__(self, labels: dict[str, str], cid: str) -> None:
        self.labels, self.id, self.removed = labels, cid, False

    def remove(self, **kwargs) -> None:
        self.removed = True


class _FakeClient:
    def __init__(self, containers: list[_FakeContainer]) -> None:
        self.all = containers
        self.filters: list[dict] = []
        self.containers = self

    def list(self, **kwargs) -> list[_FakeContainer]:  # the SDK's list(all=True, filters=...)
        filters = kwargs["filters"]
        self.filters.append(filters)
        wanted = filters["label"] if isinstance(filters["label"], list) else [filters["label"]]
        pairs = [w.partition("=")[::2] for w in wanted]
        return [c for c in self.all if all(c.labels.get(k) == v for k, v in pairs)]


def test_orphans_are_the_containers_of_owners_that_are_gone():
    mine = _FakeContainer(container_labels("kafka"), "mine")
    orphan = _FakeContainer(container_labels("node", owner="999999999:1"), "orphan")
    foreign = _FakeContainer({CONTAINER_LABEL: "1"}, "foreign")  # no owner label: not ours to judge
    client = _FakeClient([mine, orphan, foreign])
    assert remove_orphans(client) == ["orphan"]
    assert orphan.removed and not mine.removed and not foreign.removed


def test_a_stacks_leftovers_are_found_by_its_label():
    a = _FakeContainer(container_labels("kafka", stack_id="a"), "a1")
    b = _FakeContainer(container_labels("kafka", stack_id="b"), "b1")
    client = _FakeClient([a, b])
    assert remove_containers(client, {STACK_LABEL: "a"}) == ["a1"]
    assert client.filters[-1] == {"label": [f"{STACK_LABEL}=a"]}
    assert a.removed and not b.removed


# --- the broker and the services in their images --------------------------------------------
def test_the_container_broker_runs_the_native_argv_with_the_images_paths(tmp_path):
    native = KafkaBroker(work_dir=tmp_path / "n")
    broker = ContainerKafkaBroker(image="ingestlab/kafka:minimal-k", work_dir=tmp_path / "c", cores=(0,),
                                  heap_mib=256, stack_id="s")
    argv = broker.argv
    assert argv[0] == layout.JAVA_BINARY == "/opt/java/bin/java"
    assert argv[argv.index("-cp") + 1] == layout.KAFKA_CLASSPATH == "/opt/kafka/libs/*"
    assert f"-Dlog4j2.configurationFile=/opt/kafka/config/{Path(layout.KAFKA_LOG4J).name}" in argv
    assert Path(layout.KAFKA_LOG4J).name == "log4j2.properties"
    assert argv[-2:] == ["kafka.Kafka", str(tmp_path / "c" / "server.properties")]
    assert "-Xmx256m" in argv
    # the same options as natively, apart from the paths
    def shape(a: list[str]) -> list[str]:
        return [x for x in a[1:] if not x.startswith("-Dlog4j2") and "/" not in x and x != "-Xmx256m"
                and x != "-Xms256m" and not x.startswith("-Xm")]
    assert shape(argv) == shape(native.argv)
    # the work dir (config, data dir) is mounted at the same path; pinned like natively
    assert broker.mounts == (Bind(tmp_path / "c", str(tmp_path / "c"), "rw"),)
    assert broker.data_dir.is_relative_to(broker.work_dir)
    assert broker.cores == (0,) and broker.labels is not None and broker.labels[STACK_LABEL] == "s"
    assert broker.endpoint == broker.bootstrap
    fmt = broker.format_storage_argv("abc")
    assert fmt[0] == layout.JAVA_BINARY and layout.KAFKA_CLASSPATH in fmt and "--cluster-id=abc" in fmt
    assert fmt[-1] == str(broker.config_path)


def test_the_native_broker_keeps_the_hosts_java_jars_and_log4j(tmp_path):
    broker = KafkaBroker(work_dir=tmp_path)
    assert broker.argv[broker.argv.index("-cp") + 1] == artifacts.kafka_classpath()
    assert f"-Dlog4j2.configurationFile={artifacts.KAFKA_DIR / 'log4j2.properties'}" in broker.argv
    assert not hasattr(broker, "runtime") or broker.runtime != "container"


@pytest.mark.parametrize("name", SERVICES)
def test_a_container_service_gets_the_native_env_and_the_images_command(name, tmp_path):
    flags = ("--trace-gc", "--max-old-space-size=1536")
    spec = container_spec_for(name, image=f"ingestlab/{name}:minimal-k", node_flags=flags)
    service = ContainerService(spec, brokers="127.0.0.1:9092", log_dir=tmp_path, cores=(1,), stack_id="s")
    native = ServiceProcess(spec_for(name, node_flags=flags), brokers="127.0.0.1:9092", log_dir=tmp_path,
                            cores=(1,), port=service.port)
    v = variant(name)
    expected = {"PORT": str(service.port), "KAFKA_BROKERS": "127.0.0.1:9092", "ACK_MODE": v.promise}
    if v.program == "rust":
        expected["RUST_LOG"] = "info"
        assert service.argv == [layout.RUST_BINARY]
    elif v.program == "node":
        entry = "cluster.js" if v.processes == "per-core" else "server.js"
        assert service.argv == [layout.NODE_BINARY, *flags, entry]
        assert native.argv[1:] == service.argv[1:]  # the same flags and script
    else:
        assert service.argv[1:] == native.argv[1:] == ["serve.py"]
    assert service.container_env == expected
    assert {k: native._env[k] for k in expected} == expected
    assert str(service.cwd) == "/app" and service.image == spec.image and service.cores == (1,)
    assert service.log_path == tmp_path / f"{name}.log" and service.url == native.url
    assert service.describe()["image"] == spec.image and service.runtime == "container"


def test_a_container_service_needs_an_image(tmp_path):
    with pytest.raises(ValueError, match="image"):
        ContainerService(spec_for("rust"), brokers="b", log_dir=tmp_path)


# --- runtime selection ----------------------------------------------------------------------
def test_the_default_runtime_is_container_and_the_profiles_leave_it_alone():
    assert StudyConfig().runtime == "container"
    assert StudyConfig.for_profile("quick").runtime == StudyConfig.for_profile("full").runtime == "container"
    assert StudyConfig().stack.image_flavour == "minimal"
    assert isinstance(runtime_for(StudyConfig(runtime="native")), NativeRuntime)


def test_the_container_runtime_takes_its_flavour_from_the_config():
    config = StudyConfig.for_profile("quick", runtime="container", stack={"image_flavour": "conventional"})
    runtime = runtime_for(config)
    assert isinstance(runtime, ContainerRuntime) and runtime.flavour == "conventional"
    assert runtime_for(config).stack_id != runtime.stack_id  # one id (label) per stack
    stack = Stack(config)  # not entered: nothing starts, the engine is not contacted
    try:
        assert stack.runtime.name == "container"
    finally:
        stack.close()
    assert config.as_dict()["runtime"] == "container"
    assert config.as_dict()["stack"]["image_flavour"] == "conventional"


@pytest.mark.parametrize("bad", [{"runtime": "vm"}, {"stack": {"image_flavour": "fat"}}])
def test_unknown_runtimes_and_flavours_are_refused(bad):
    with pytest.raises(ValueError):
        StudyConfig().replace(**bad)


def test_the_runtime_and_flavour_names_are_defined_once():
    """`names` spells each name for its Literal type and for its tuple: the two agree."""
    assert get_args(Runtime) == RUNTIMES == (CONTAINER, NATIVE)
    assert get_args(ImageFlavour) == IMAGE_FLAVOURS == (MINIMAL, CONVENTIONAL)


@pytest.mark.parametrize("command", [["smoke"], ["run", "smoke"]])
def test_runtime_on_the_command_line(command):
    parser = build_parser()
    assert _config(parser.parse_args([*command, "--runtime", "container"])).runtime == "container"
    assert _config(parser.parse_args(command)).runtime == "container"
    with pytest.raises(SystemExit):
        parser.parse_args([*command, "--runtime", "vm"])
    assert set(RUNTIMES) == {"container", "native"}


def test_study_passes_the_runtime_to_the_notebooks_only_when_given():
    parser = build_parser()
    assert parser.parse_args(["study", "--runtime", "container"]).runtime == "container"
    assert parser.parse_args(["study"]).runtime is None


class _FakeComponent:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self._log = name, log
        self.bootstrap = "127.0.0.1:1"
        self.startup_s = 0.1
        self.pid = 1

    def start(self):
        self._log.append(f"start {self.name}")
        return self

    def create_topic(self, topic: str) -> None:
        self._log.append(f"topic {topic}")

    def wait_ready(self, timeout_s: float) -> float:
        return 0.0

    def stop(self) -> None:
        self._log.append(f"stop {self.name}")

    def describe(self) -> dict[str, object]:
        return {"container_id": f"id-{self.name}"}


class _FakeRuntime:
    name = "container"

    def __init__(self) -> None:
        self.log: list[str] = []

    def prepare(self, services) -> None:
        self.log.append(f"prepare {','.join(services)}")

    def broker(self, **kwargs) -> _FakeComponent:
        assert kwargs["cores"] == (0,)
        return _FakeComponent("kafka", self.log)

    def service(self, name, *, brokers, log_dir, cores, node_flags, memory_report_ms) -> _FakeComponent:
        assert brokers == "127.0.0.1:1" and cores == (1,)
        return _FakeComponent(name, self.log)

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "images": {"kafka": "ingestlab/kafka:minimal-k"}}

    def close(self) -> None:
        self.log.append("runtime closed")


def test_the_stack_asks_its_runtime_for_every_component_and_closes_it_last():
    if not {0, 1} <= set(range(os.cpu_count() or 1)):
        pytest.skip("needs cores 0 and 1")
    runtime = _FakeRuntime()
    with Stack(StudyConfig.for_profile("quick"), runtime=runtime) as stack:
        described = stack.describe()
        extra = stack.new_service("rust")
    assert runtime.log == ["prepare node,rust", "start kafka", "topic data-ingestion",
                           "prepare node", "start node", "prepare rust", "start rust",
                           "stop node", "stop rust", "stop kafka", "runtime closed"]
    assert described["runtime"]["name"] == "container"
    assert described["services"]["node"] == {"container_id": "id-node"}
    assert described["kafka"] == {"container_id": "id-kafka"}
    assert isinstance(extra, _FakeComponent)


# --- ContainerProcess against a stand-in for the engine's container ---------------------------
class _EngineContainer:
    """What ContainerProcess uses of docker's Container; `obeys_sigterm` decides whether wait()
    returns after SIGTERM or times out."""

    def __init__(self, child: subprocess.Popen, *, obeys_sigterm: bool) -> None:
        self.child, self.obeys, self.calls = child, obeys_sigterm, []

    def kill(self, signal: str = "SIGKILL") -> None:
        self.calls.append(f"kill {signal}")
        if signal == "SIGKILL" or self.obeys:
            self.child.kill()

    def wait(self, timeout: float) -> dict:
        self.calls.append("wait")
        try:
            return {"StatusCode": self.child.wait(timeout=timeout)}
        except subprocess.TimeoutExpired as exc:
            raise requests.exceptions.ReadTimeout() from exc

    def logs(self, **kwargs) -> bytes:
        return b"line 1\nline 2\n"

    def reload(self) -> None:
        pass  # attrs are read live

    @property
    def attrs(self) -> dict:
        code = self.child.poll()
        return {"State": {"Running": code is None, "ExitCode": code, "OOMKilled": False,
                          "FinishedAt": "2026-12-07T20:00:00.123456789Z", "Error": ""}}


class _Testcontainer:
    def __init__(self, container: _EngineContainer) -> None:
        self._container, self.stopped = container, False

    def stop(self, **kwargs) -> None:
        self.stopped = True
        self._container.calls.append("remove")


@pytest.fixture
def attached(tmp_path):
    """A ContainerProcess attached to a stand-in container whose main process is a real child."""
    made = []

    def attach(*, obeys_sigterm: bool) -> tuple[ContainerProcess, _EngineContainer, _Testcontainer]:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        made.append(child)
        proc = ContainerProcess("svc", ["/app/svc"], image="i", log_path=tmp_path / "svc.log")
        container = _EngineContainer(child, obeys_sigterm=obeys_sigterm)
        tc = _Testcontainer(container)
        proc._container, proc._tc, proc._proc = container, tc, psutil.Process(child.pid)  # as start() would
        proc.container_id = "c0ffee"
        return proc, container, tc

    yield attach
    for child in made:
        child.kill()
        child.wait()


def test_stop_sends_sigterm_waits_and_removes(attached):
    proc, container, tc = attached(obeys_sigterm=True)
    assert proc.is_running() and proc.pid == container.child.pid
    proc.stop(timeout_s=5)
    assert container.calls == ["kill SIGTERM", "wait", "remove"]
    assert tc.stopped and not proc.is_running() and proc.pid is None
    assert proc.stop() is not None  # a second stop is harmless and keeps the exit code
    assert proc.describe()["container_id"] == "c0ffee"


def test_stop_kills_after_the_timeout_when_sigterm_is_ignored(attached):
    proc, container, tc = attached(obeys_sigterm=False)
    began = time.monotonic()
    proc.stop(timeout_s=0.3)
    assert time.monotonic() - began < 5
    assert container.calls == ["kill SIGTERM", "wait", "kill SIGKILL", "wait", "remove"]
    assert tc.stopped and not proc.is_running()


def test_kill_is_immediate_and_removes(attached):
    proc, container, tc = attached(obeys_sigterm=True)
    proc.kill()
    assert container.calls == ["kill SIGKILL", "wait", "remove"] and tc.stopped


def test_how_the_container_ended_is_kept_after_its_removal(attached):
    proc, container, _ = attached(obeys_sigterm=True)
    assert proc.exit_state() is None  # running
    proc.kill()
    assert proc.exit_state() == {"oom_killed": False, "exit_code": container.child.returncode,
                                 "finished_at": "2026-12-07T20:00:00.123456789Z", "error": None}


def test_pause_and_resume_signal_the_main_process_from_the_host(attached):
    proc, container, _ = attached(obeys_sigterm=True)
    proc.pause()
    deadline = time.monotonic() + 5
    while psutil.Process(container.child.pid).status() != psutil.STATUS_STOPPED:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.resume()
    while psutil.Process(container.child.pid).status() == psutil.STATUS_STOPPED:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.pause()
    proc.stop(timeout_s=5)  # a paused container is resumed so that it can act on SIGTERM
    assert container.calls[0] == "kill SIGTERM"


def test_logs_come_from_the_engine_while_the_container_exists_then_from_the_file(attached, tmp_path):
    proc, _, _ = attached(obeys_sigterm=True)
    assert proc.logs() == "line 1\nline 2\n"
    proc.stop(timeout_s=5)
    (tmp_path / "svc.log").write_text("a\nb\nc\n")
    assert proc.logs(tail_lines=2) == "b\nc\n"


def test_an_unstarted_container_is_not_running_and_stops_quietly(tmp_path):
    proc = ContainerProcess("svc", ["x"], image="i", log_path=tmp_path / "x.log")
    assert proc.pid is None and not proc.is_running() and proc.stop() is None
    proc.kill()
    proc.pause()
    proc.resume()
    assert proc.logs() == ""
