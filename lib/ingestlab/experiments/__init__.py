"""The study's experiments: each a function of a `StudyConfig` (and, for those that need
them, keyword inputs: the rig's `limits`, a comparison `rate`, `ceilings`) that writes a run
directory. An experiment never runs another to find its inputs: `ingestlab.inputs` resolves
them (`inputs.run_experiment`), and `ingestlab run NAME` goes through it.
"""

from __future__ import annotations

from collections.abc import Callable

from ingestlab.experiments.backlog import backlog
from ingestlab.experiments.bad_input import bad_input
from ingestlab.experiments.ceiling import ceiling
from ingestlab.experiments.contracts import contracts
from ingestlab.experiments.cpu_cores import cpu_cores
from ingestlab.experiments.engine_bench import engine_capacity, latency_accuracy
from ingestlab.experiments.faults import faults
from ingestlab.experiments.overload import overload
from ingestlab.experiments.reporter_cost import reporter_cost
from ingestlab.experiments.smoke import smoke
from ingestlab.experiments.soak import soak
from ingestlab.experiments.startup import startup
from ingestlab.results import Run

EXPERIMENTS: dict[str, Callable[..., Run]] = {
    "smoke": smoke,
    "latency-accuracy": latency_accuracy,
    "engine-capacity": engine_capacity,
    "ceiling": ceiling,
    "soak": soak,
    "startup": startup,
    "bad-input": bad_input,
    "faults": faults,
    "contracts": contracts,
    "overload": overload,
    "cpu-cores": cpu_cores,
    "backlog": backlog,
    "reporter-cost": reporter_cost,
}

__all__ = ["EXPERIMENTS", "backlog", "bad_input", "ceiling", "contracts", "cpu_cores", "engine_capacity",
           "faults", "latency_accuracy", "overload", "reporter_cost", "smoke", "soak", "startup"]
