"""The services a study can run: the article's two programs, and variants of them that change
one design choice each, so a difference can be put down to the language or to the design.

A variant is a program (services/<program>/) run with a promise and a process model:

- promise "enqueue": 202 once the record is in librdkafka's queue (the article's Node);
  "acked": 202 only after Kafka acknowledged it (the article's Rust), a failed delivery 5xx.
- processes "one": a single process (Rust's actix still runs one worker thread per core it
  is given); "per-core": one process per core it is given (Node's `cluster`, Python's
  workers sharing the port with SO_REUSEPORT).

services/README.md lists them with what each changes; `stack.services` turns one into a
command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ServiceName = Literal["node", "rust", "node-acked", "rust-enqueue", "node-cluster", "python",
                      "python-enqueue"]
Program = Literal["node", "rust", "python"]
Promise = Literal["enqueue", "acked"]
Processes = Literal["one", "per-core"]


@dataclass(frozen=True)
class Variant:
    """One service name: which program runs, when it answers 202, and how many processes."""

    name: ServiceName
    program: Program
    promise: Promise
    processes: Processes = "one"
    # What this service changes against the article's program in the same language.
    differs: str = "the article's program"


VARIANTS: dict[ServiceName, Variant] = {v.name: v for v in (
    Variant("node", "node", "enqueue"),
    Variant("rust", "rust", "acked"),
    Variant("node-acked", "node", "acked",
            differs="202 only after the delivery report (an error: 500); polls delivery reports "
                    "every 5 ms instead of 100"),
    Variant("rust-enqueue", "rust", "enqueue",
            differs="202 once the record is enqueued (queue full: 500), as the article's Node"),
    Variant("node-cluster", "node", "enqueue", "per-core",
            differs="the article's Node under `cluster`: one worker process per core it is given"),
    Variant("python", "python", "acked", "per-core",
            differs="aiohttp + confluent-kafka, one process per core; 202 after Kafka acknowledged"),
    Variant("python-enqueue", "python", "enqueue", "per-core",
            differs="as `python`, but 202 once the record is enqueued"),
)}
SERVICES: tuple[ServiceName, ...] = tuple(VARIANTS)
# The article's table compares these two; a study runs them unless told otherwise.
ARTICLE_SERVICES: tuple[ServiceName, ...] = ("node", "rust")
# Each article program's promise-matched twin in the other language (notebook 06).
MATCHED_PAIRS: dict[Promise, tuple[ServiceName, ServiceName]] = {
    "acked": ("node-acked", "rust"),
    "enqueue": ("node", "rust-enqueue"),
}


def variant(name: str) -> Variant:
    """The variant called `name`; ValueError naming the known ones otherwise."""
    try:
        return VARIANTS[name]  # type: ignore[index]
    except KeyError:
        raise ValueError(f"unknown service {name!r}; known: {', '.join(SERVICES)}") from None


def has_v8_trace(name: str) -> bool:
    """Whether `name`'s log holds one V8 `--trace-gc` trace: a Node program in one process (a
    cluster's workers write theirs interleaved into one log, which is not parsed)."""
    v = variant(name)
    return v.program == "node" and v.processes == "one"


def program_of(name: str) -> Program:
    """The program (services/<program>/) a service name runs."""
    return variant(name).program
