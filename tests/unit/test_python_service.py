"""The Python service's pure parts: its input rules (services/python/records.py) against the
bad-input corpus's expectations, its settings and worker count (serve.py), and what its
deployment and image hold (build.footprint, build.images)."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path, PurePosixPath
from types import ModuleType

import pytest

from ingestlab.build import artifacts
from ingestlab.build.footprint import keep_in_stdlib, python_deployment
from ingestlab.build.images import contents, recipes
from ingestlab.load.bad_input import BadInputCase, corpus


@pytest.fixture(scope="module")
def service_modules() -> dict[str, ModuleType]:
    """records and serve, imported from services/python as the service imports them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(artifacts.PYTHON_DIR))
        return {name: importlib.import_module(name) for name in ("records", "serve")}


@pytest.fixture(scope="module")
def records(service_modules) -> ModuleType:
    return service_modules["records"]


def _answer(records: ModuleType, body: bytes) -> tuple[int, str | bytes]:
    try:
        return 202, records.encode_record(body)
    except records.Refused as refused:
        return refused.status, refused.message


def _body_only(case: BadInputCase) -> bool:
    """A case decided by its body alone: a plain POST of a JSON body the HTTP limit admits."""
    return (case.method == "POST" and case.target.partition("?")[0] == "/api/ingest"
            and case.framing in ("length", "chunked") and case.declared_length is None
            and not case.slow and case.content_type == "application/json" and not case.headers
            and len(case.body_bytes()) <= 1_048_576)


BODY_CASES = [c for c in corpus("unit") if _body_only(c)]


@pytest.mark.parametrize("case", BODY_CASES, ids=lambda c: c.case_id)
def test_each_body_of_the_corpus_gets_what_python_promises(records, case):
    status, detail = _answer(records, case.body_bytes())
    if case.expected_for("python") == "accept":
        assert status == 202, detail
        assert isinstance(detail, bytes) and len(detail) <= records.RECORD_LIMIT_BYTES
        assert json.loads(detail)["data"]["request_id"] == case.request_id
    else:
        assert 400 <= status < 500 and isinstance(detail, str) and detail


def test_the_corpus_covers_the_rules():
    assert len(BODY_CASES) > 150
    rules = {"json-syntax", "json-valid", "event_type", "timestamp", "data", "nesting", "numbers", "unicode",
             "prototype", "size"}
    assert {c.category for c in BODY_CASES} >= rules


def test_the_record_is_the_three_fields_compact_with_a_whole_timestamp(records):
    body = b'{"extra": 1, "data": {"b": 1E2, "a": "caf\\u00e9"}, "timestamp": 1e3, "event_type": "x"}'
    record = '{"event_type":"x","timestamp":1000,"data":{"b":100.0,"a":"café"}}'.encode()
    assert records.encode_record(body) == record


@pytest.mark.parametrize(("body", "status", "message"), [
    (b"", 400, "the body is empty"),
    (b"\xef\xbb\xbf{}", 400, "byte order mark"),
    (b"[1]", 400, "must be a JSON object"),
    (b'{"event_type": true, "timestamp": 1, "data": {}}', 400, "'event_type'"),
    (b'{"event_type": "x", "timestamp": true, "data": {}}', 400, "'timestamp'"),
    (b'{"event_type": "x", "timestamp": 1, "data": []}', 400, "'data'"),
    (b'{"event_type": "x", "timestamp": 1, "data": {"n": NaN}}', 400, "Invalid JSON body."),
    (b'{"event_type": "x", "timestamp": 1, "data": {"n": 1e400}}', 400, "out of range"),
    (b'{"event_type": "x", "timestamp": 1, "data": {"s": "\\ud800"}}', 400, "lone surrogate"),
    (b'{"event_type": "x", "timestamp": 1, "data": {"d": ' + b"[" * 200_000 + b"]" * 200_000 + b"}}", 400,
     "nested deeper than 127 levels"),
])
def test_refusals_name_the_problem(records, body, status, message):
    assert _answer(records, body)[0] == status
    assert message in str(_answer(records, body)[1])


@pytest.mark.parametrize(("content_type", "encoding", "refused"), [
    ("application/json", None, False),
    ("Application/JSON; Charset=\"UTF-8\"", "identity", False),
    ("application/json; foo=bar", None, False),
    (None, None, True),
    ("application/json; charset=latin1", None, True),
    ("application/json; charset", None, True),
    ("application/vnd.api+json", None, True),
    ("application/json", "gzip", True),
])
def test_media_types(records, content_type, encoding, refused):
    assert (records.media_type_problem(content_type, encoding) is not None) == refused


def test_settings_and_workers_come_from_the_environment(service_modules):
    serve = service_modules["serve"]
    settings = serve.settings_from_env({"PORT": "9000", "KAFKA_BROKERS": "127.0.0.1:1"})
    assert (settings.port, settings.brokers, settings.acked) == (9000, "127.0.0.1:1", True)
    assert serve.settings_from_env({"ACK_MODE": "enqueue"}).acked is False
    with pytest.raises(SystemExit, match="ACK_MODE"):
        serve.settings_from_env({"ACK_MODE": "later"})
    assert serve.worker_count({}) == len(os.sched_getaffinity(0))
    assert serve.worker_count({"WORKERS": "3"}) == 3


@pytest.mark.parametrize(("relative", "kept"), [
    ("os.py", True), ("asyncio/events.py", True), ("__pycache__/os.cpython-311.pyc", True),
    ("__pycache__/os.cpython-311.opt-1.pyc", False), ("test/test_os.py", False),
    ("tkinter/__init__.py", False),
    ("site-packages/aiohttp/__init__.py", False), ("config-3.11-x86_64-linux-gnu/libpython3.11.a", False),
    ("lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so", True),
    ("lib-dynload/_tkinter.cpython-311-x86_64-linux-gnu.so", False),
    ("lib-dynload/_curses_panel.cpython-311-x86_64-linux-gnu.so", False),
    ("lib-dynload/_testcapi.cpython-311-x86_64-linux-gnu.so", False),
])
def test_the_standard_library_less_what_the_service_never_imports(relative, kept):
    assert keep_in_stdlib(PurePosixPath(relative)) == kept


def test_listing_key_changes_with_a_file(tmp_path: Path):
    (tmp_path / "a.py").write_text("a")
    key = contents.listing_key(tmp_path, [tmp_path / "a.py"])
    assert key == contents.listing_key(tmp_path, [tmp_path / "a.py"])
    (tmp_path / "a.py").write_text("ab")
    assert contents.listing_key(tmp_path, [tmp_path / "a.py"]) != key


def test_the_image_holds_the_interpreter_its_library_and_the_imported_distributions():
    deployment = python_deployment()
    assert {"aiohttp", "yarl", "multidict", "confluent-kafka"} <= set(deployment.distributions)
    assert "setuptools" not in deployment.distributions  # the venv's .pth imports it, the service does not
    keep = deployment.keep_in_site_packages()
    assert keep(PurePosixPath("aiohttp/web.py"))
    assert any(keep(PurePosixPath(f"confluent_kafka.libs/{p.name}"))
               for p in (deployment.site_packages / "confluent_kafka.libs").iterdir())
    recipe = recipes.recipe("python")
    by_dest = {entry.dest: entry for entry in recipe.entries}
    stdlib = f"/usr/local/lib/{deployment.stdlib.name}"
    assert by_dest["/usr/local/bin/python3"].part == "executable"
    assert by_dest[stdlib].part == "stdlib" and by_dest[f"{stdlib}/site-packages"].part == "site-packages"
    assert {"/app/serve.py", "/app/worker.py", "/app/records.py"} <= set(by_dest)
    libraries = {entry.library for entry in recipe.entries if entry.library}
    assert {"libpython3.11.so.1.0", "libssl.so.3", "libstdc++.so.6"} <= libraries
    assert not any("rdkafka" in name for name in libraries)  # confluent_kafka.libs brings its own
    assert recipe.cmd == ("/usr/local/bin/python3", "serve.py") and recipe.workdir == "/app"
