"""The labels the workbook puts on what it makes in a Docker engine, defined once: the names,
and the values a container carries.

Containers: every one the workbook starts carries {CONTAINER_LABEL: "1"} and labels naming its
owner (the process that started it), its stack and its role, so whatever is left after a crash
can be found and removed (`engine.container.remove_orphans`, `DockerEngine.stop`).
Images: the component, flavour, content key, parts and base of each (`build.images.store`).
"""

from __future__ import annotations

import os
from pathlib import Path

PREFIX = "org.ingestlab"

# --- containers ---------------------------------------------------------------------------------
# Every container the workbook starts carries {CONTAINER_LABEL: "1"} (the engine removes every
# container carrying it when it stops).
CONTAINER_LABEL = PREFIX
OWNER_LABEL = f"{PREFIX}.owner"          # "<pid>:<start time>" of the process that started it
STACK_LABEL = f"{PREFIX}.stack"          # the Stack's (the runtime's) id
ROLE_LABEL = f"{PREFIX}.role"            # kafka, kafka-format, node, rust ...
# testcontainers' own label, on every container it creates.
TESTCONTAINERS_LABEL = "org.testcontainers"

# --- images -------------------------------------------------------------------------------------
IMAGE_COMPONENT_LABEL = f"{PREFIX}.component"  # kafka, node, rust, python
IMAGE_FLAVOUR_LABEL = f"{PREFIX}.flavour"      # names.IMAGE_FLAVOURS
IMAGE_KEY_LABEL = f"{PREFIX}.key"              # a digest of everything that went in
IMAGE_PARTS_LABEL = f"{PREFIX}.parts"          # the parts in layer order, comma-separated
IMAGE_BASE_LABEL = f"{PREFIX}.base"            # the base image's tag (conventional)


# --- a container's values -----------------------------------------------------------------------
def _process_start_time(pid: int) -> str:
    """The start time of `pid` in clock ticks since boot (/proc/<pid>/stat field 22): with the
    pid it names one process, even after the pid is reused."""
    raw = Path(f"/proc/{pid}/stat").read_bytes()
    return raw.rpartition(b")")[2].split()[19].decode()


def owner_value(pid: int | None = None) -> str:
    """The OWNER_LABEL value for process `pid` (default: this one): "<pid>:<start ticks>"."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{_process_start_time(pid)}"


def owner_alive(value: str) -> bool:
    """True if the process an OWNER_LABEL value names still runs (same pid, same start)."""
    pid_text, _, start = value.partition(":")
    try:
        return _process_start_time(int(pid_text)) == start
    except (ValueError, FileNotFoundError, ProcessLookupError, IndexError):
        return False


def container_labels(component: str, *, stack_id: str | None = None,
                     owner: str | None = None) -> dict[str, str]:
    """The labels of a container the workbook starts."""
    labels = {CONTAINER_LABEL: "1", ROLE_LABEL: component, OWNER_LABEL: owner or owner_value()}
    if stack_id:
        labels[STACK_LABEL] = stack_id
    return labels
