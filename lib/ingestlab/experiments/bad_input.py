"""`bad-input`: the bad-input corpus against each service, every answer judged, the service's
health checked after each case, what it accepted looked up in Kafka, and what it listens on.

Cases go one at a time, each followed by a /healthz probe (and every `valid_probe_every` cases
by a valid request); the slow ones (seconds each, by design) go together at the end, followed
by one probe. A service found down after a case is restarted, so later cases are still judged
on a live one. Frames: `answers` (what came back, as measured), `matrix` (judged:
`analysis.bad_input.MATRIX_COLUMNS`), `requests` (every request with an id, for the ledger) and
`deliveries` (the topic read back).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import polars as pl

from ingestlab.analysis.bad_input import classify, verdict_counts
from ingestlab.analysis.delivery import counts_by_group, delivery_table
from ingestlab.config import BadInputConfig, ServiceName, StudyConfig
from ingestlab.host.exposure import listening_addresses, off_loopback
from ingestlab.load.bad_input import BadInputCase, corpus, wire_request
from ingestlab.load.own_loop import run_in_own_loop
from ingestlab.load.payloads import PayloadSet
from ingestlab.load.raw_http import RawAnswer, RawRequest, exchange, request_head
from ingestlab.results import Run
from ingestlab.stack import Stack
from ingestlab.stack.services import HEALTH_PATH, INGEST_PATH
from ingestlab.stack.topic import BROKER_MESSAGE_MAX_BYTES, max_message_bytes
from ingestlab.summaries import BadInputResult, BadInputSummary

# The case whose body is exactly the 1 MiB limit: its record must be in Kafka.
BOUNDARY_CASE = "size-limit-exact"
ANSWER_SCHEMA = {
    "case": pl.String, "category": pl.String, "service": pl.String, "description": pl.String,
    "expected": pl.String, "status": pl.Int64, "answer": pl.String, "client_error": pl.String,
    "elapsed_s": pl.Float64, "request_id": pl.String, "healthy_after": pl.Boolean,
    "health_note": pl.String,
}
SENT_SCHEMA = {"service": pl.String, "case": pl.String, "request_id": pl.String, "status": pl.Int64}
# The delivery ledger's counts a summary keeps (`analysis.delivery.COUNT_COLUMNS`).
LEDGER_FIELDS = ("accepted", "delivered", "lost", "duplicated", "unexpected")
# Valid probes: 1 KB documents, the smallest the payload templates make.
_PROBE_BYTES = 1_000


class _ServiceUnderTest:
    """One service of the stack as the corpus meets it: its port (a restart after a crash
    moves it), its health, the valid probes, and every request sent with an id."""

    def __init__(self, stack: Stack, name: ServiceName, settings: BadInputConfig, *, id_prefix: str,
                 probes: int) -> None:
        self.stack, self.name, self.settings = stack, name, settings
        self.probes = PayloadSet(probes, size_bytes=_PROBE_BYTES, id_prefix=f"{id_prefix}p", templates=1)
        self.probes_sent = 0
        self.sent: list[tuple[str, str, str, int]] = []  # SENT_SCHEMA rows

    @property
    def port(self) -> int:
        return self.stack.service(self.name).port

    async def send(self, case: BadInputCase) -> RawAnswer:
        answer = await exchange(self.port, wire_request(case, port=self.port),
                                timeout_s=self.settings.answer_timeout_s)
        if case.request_id is not None:
            self.sent.append((self.name, case.case_id, case.request_id, answer.status))
        return answer

    async def _get_health(self) -> RawAnswer:
        request = RawRequest(head=request_head("GET", HEALTH_PATH, port=self.port))
        return await exchange(self.port, request, timeout_s=self.settings.health_timeout_s)

    async def _post_valid(self) -> RawAnswer:
        index = self.probes_sent
        self.probes_sent += 1
        body = self.probes.body(index)
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        head = request_head("POST", INGEST_PATH, port=self.port, headers=headers)
        answer = await exchange(self.port, RawRequest(head=head, pieces=(body,)),
                                timeout_s=self.settings.answer_timeout_s)
        self.sent.append((self.name, "probe", self.probes.request_id(index), answer.status))
        return answer

    async def problem_after_case(self, *, valid_probe: bool) -> str | None:
        """What is wrong with the service now (None: alive, /healthz 200 and, with
        `valid_probe`, a valid request accepted); a service found down is restarted."""
        problem = None
        if not self.stack.service(self.name).is_running():
            problem = "the process exited"
        elif (health := await self._get_health()).status != 200:
            problem = f"/healthz answered {health.status or 'nothing'} ({health.error or 'no error'})"
        elif valid_probe and (valid := await self._post_valid()).status != 202:
            problem = f"a valid request got {valid.status or 'no answer'}"
        if problem is not None:
            self.stack.start_service(self.name)
            problem += "; the service was restarted"
        return problem


def _answer_row(case: BadInputCase, service: ServiceName, answer: RawAnswer,
                problem: str | None) -> dict[str, Any]:
    return {"case": case.case_id, "category": case.category, "service": service,
            "description": case.description, "expected": case.expected_for(service),
            "status": answer.status, "answer": answer.body.decode("utf-8", errors="replace"),
            "client_error": answer.error, "elapsed_s": answer.elapsed_s, "request_id": case.request_id,
            "healthy_after": problem is None, "health_note": problem}


async def _send_corpus(sut: _ServiceUnderTest, cases: tuple[BadInputCase, ...]) -> list[dict[str, Any]]:
    """Every case to `sut`: the quick ones one by one with a probe after each, then the slow
    ones together (their waits overlap) with one probe after them all."""
    quick = [c for c in cases if not c.slow]
    slow = [c for c in cases if c.slow]
    rows = []
    every = sut.settings.valid_probe_every
    for index, case in enumerate(quick):
        answer = await sut.send(case)
        problem = await sut.problem_after_case(valid_probe=(index + 1) % every == 0)
        rows.append(_answer_row(case, sut.name, answer, problem))
    answers = await asyncio.gather(*(sut.send(c) for c in slow))
    problem = await sut.problem_after_case(valid_probe=True)  # and the end of the corpus
    if problem is not None:
        problem = f"{problem} (checked once after the {len(slow)} slow cases, sent together)"
    rows += [_answer_row(c, sut.name, a, problem) for c, a in zip(slow, answers, strict=True)]
    return rows


def problems_found(summary: BadInputSummary, matrix: pl.DataFrame) -> list[str]:
    """What broke a promise, one line each (the run's warnings; none when all is well)."""
    found = []
    for service, result in summary.services.items():
        for verdict in ("violation", "crash"):
            cases = matrix.filter((pl.col("service") == service) & (pl.col("verdict") == verdict))["case"]
            if len(cases):
                found.append(f"{service}: {len(cases)} {verdict}s: {', '.join(cases)}")
        for count in ("lost", "duplicated", "unexpected"):
            if getattr(result, count):
                found.append(f"{service}: {getattr(result, count)} {count} in the delivery ledger")
        if not result.boundary_delivered:
            found.append(f"{service}: the {BOUNDARY_CASE} body has no record in Kafka")
        if exposed := off_loopback(result.listen_addresses):
            found.append(f"{service}: listens beyond loopback on {', '.join(exposed)}")
    if (summary.topic_max_message_bytes or 0) < BROKER_MESSAGE_MAX_BYTES:
        found.append(f"the topic takes batches of {summary.topic_max_message_bytes} bytes, fewer than "
                     f"the {BROKER_MESSAGE_MAX_BYTES} a record at the body limit needs")
    return found


@dataclass(frozen=True)
class CorpusRun:
    """What the corpus met on a running stack: `answers` (ANSWER_SCHEMA), every request sent
    with an id (`requests`, SENT_SCHEMA), the topic read back (`records`), each service's
    listening addresses and the topic's max.message.bytes."""

    answers: pl.DataFrame
    requests: pl.DataFrame
    records: pl.DataFrame
    listening: dict[str, list[str]]
    topic_max_message_bytes: int

    def judged(self) -> tuple[BadInputSummary, pl.DataFrame]:
        """The summary and the `matrix` (`analysis.bad_input.classify`)."""
        matrix = classify(self.answers)
        ledger = counts_by_group(delivery_table(self.requests, self.records))
        verdicts = verdict_counts(matrix)
        in_kafka = sorted(set(self.records["request_id"].drop_nulls()))
        boundary = self.answers.filter(pl.col("case") == BOUNDARY_CASE)
        summary = BadInputSummary(services={
            service: BadInputResult(
                **verdicts[service],
                **{k: ledger[service][k] for k in LEDGER_FIELDS},
                boundary_delivered=bool(boundary.filter(pl.col("service") == service)["request_id"]
                                        .is_in(in_kafka).any()),
                listen_addresses=addresses,
            )
            for service, addresses in self.listening.items()
        }, topic_max_message_bytes=self.topic_max_message_bytes)
        return summary, matrix


def run_corpus(stack: Stack, config: StudyConfig, *, tag: str) -> CorpusRun:
    """The corpus against each service of `config` on `stack` (whose topic may hold other
    records: request ids carry `tag`, and the read-back waits for the records this run's
    202s promised)."""
    rows: list[dict[str, Any]] = []
    sent: list[tuple[str, str, str, int]] = []
    listening: dict[str, list[str]] = {}
    records_before = stack.topic_size()
    for service in config.services:
        id_prefix = f"bi-{service}-{tag}"
        cases = corpus(id_prefix)
        sut = _ServiceUnderTest(stack, service, config.bad_input, id_prefix=id_prefix, probes=len(cases) + 1)
        rows += run_in_own_loop(_send_corpus(sut, cases))
        sent += sut.sent
        pid = stack.service(service).pid
        listening[service] = listening_addresses(pid) if pid is not None else []
    requests = pl.DataFrame(sent, schema=SENT_SCHEMA, orient="row")
    stack.wait_for_records(records_before + int((requests["status"] == 202).sum()))
    return CorpusRun(answers=pl.DataFrame(rows, schema=ANSWER_SCHEMA), requests=requests,
                     records=stack.read_topic(), listening=listening,
                     topic_max_message_bytes=max_message_bytes(stack.bootstrap, stack.topic))


def bad_input(config: StudyConfig) -> Run:
    """The bad-input corpus against each service of `config` on a stack of its own (see the
    module docstring and `run_corpus`).

    Summary: per service cases / violations / crashes, the delivery ledger (accepted,
    delivered, lost, duplicated, unexpected), whether the 1 MiB body reached Kafka, and the
    addresses the service listened on; the topic's max.message.bytes; warnings for anything
    that broke a promise.
    """
    run = Run.create(config, "bad-input")
    with Stack(config, log_dir=run.logs_dir) as stack:
        result = run_corpus(stack, config, tag=run.run_id[-6:])
        run.update_meta(stack=stack.describe())
    summary, matrix = result.judged()
    for name, frame in (("answers", result.answers), ("matrix", matrix), ("requests", result.requests),
                        ("deliveries", result.records)):
        run.write_frame(name, frame)
    run.write_summary(summary, warnings_found=problems_found(summary, matrix))
    return run
