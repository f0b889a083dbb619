"""ingestlab: a reproducible investigation of a Node.js -> Rust ingestion-service rewrite.

The library holds everything the notebooks do: starting the stack (`ingestlab.stack`),
driving load (`ingestlab.load`), sampling telemetry (`ingestlab.telemetry`), analysing
results (`ingestlab.analysis`) and the experiments that tie them together.
"""

from ingestlab.config import CoreLayout, StudyConfig

__all__ = ["CoreLayout", "StudyConfig"]
__version__ = "0.1.0"
