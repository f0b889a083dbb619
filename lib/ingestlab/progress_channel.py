"""The study's progress side channel: what a notebook's kernel is doing, for the terminal.

`make study` executes each notebook in a kernel whose outputs become the report; progress
(the load engine's bar, "running ceiling: ...") belongs in the terminal, not there. So the
study gives the kernel a file in the environment variable `INGESTLAB_PROGRESS_FILE`; code
in the kernel appends events to it as JSON lines (`emit`) and the study process reads them
back (`ChannelReader`) and draws them (`ingestlab.study_progress`). Without the variable (a
notebook in JupyterLab, `ingestlab run` in a terminal) `emit` writes nothing and says so,
and the caller shows its progress itself.

One event a line, each with `t` (Unix time, s), `pid` and `kind`:

```
{"kind": "progress", "id": "4242-1", "label": "load constant", "done": 2100, "total": 60000,
 "unit": "req", "info": {"offered": "2000/s", "achieved": "1998/s", "errors": 0}}
{"kind": "end", "id": "4242-1"}
{"kind": "announce", "experiment": "ceiling", "why": "the comparison rates need ..."}
```

Imports nothing of ingestlab: every layer may write to it.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

ENV_VAR = "INGESTLAB_PROGRESS_FILE"

_ids = itertools.count(1)


def channel_path() -> Path | None:
    """The channel this process writes to, or None when no study set one."""
    value = os.environ.get(ENV_VAR)
    return Path(value) if value else None


def new_id() -> str:
    """An id for one progress bar, unique within the study (`<pid>-<n>`)."""
    return f"{os.getpid()}-{next(_ids)}"


def emit(kind: str, **fields: Any) -> bool:
    """Append one event to the channel; False (nothing written) when there is none.

    One `write` of one line to a file opened with O_APPEND: lines from several processes
    never interleave, and a reader never sees half of a line as a whole one.
    """
    path = channel_path()
    if path is None:
        return False
    line = json.dumps({"t": time.time(), "pid": os.getpid(), "kind": kind, **fields}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return True


class ChannelReader:
    """Reads a channel's events as they are appended (the study process's side).

    `read()` returns the events written since the last call; a line still being written
    waits for the next call. A file that does not exist yet has no events.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._offset = 0
        self._partial = b""

    def read(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]
