"""Progress display for the load engine, in the parent process.

The engine child puts a small dict on a queue every ~0.5 s; this module only shows it. It
never feeds the results: the numbers in a run come from the request rows (locust keeps its
event stream apart from its stats the same way).

Where it goes: under a study (`make study`: the kernel has a progress channel,
`ingestlab.progress_channel`) to the study's terminal, never into the notebook's outputs,
so a report holds results only; in JupyterLab a tqdm widget; in a terminal a tqdm bar;
in CI or a pipe a log line every 2 s.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from typing import Literal, Protocol

from ingestlab import progress_channel

ProgressMode = bool | Literal["auto", "bar", "log"]
# Plain log lines are for CI logs and pipes: one line every 2 s is readable and still shows
# a stall while it happens.
LOG_INTERVAL_S = 2.0


class ProgressDisplay(Protocol):
    def update(self, event: dict[str, float]) -> None: ...

    def close(self) -> None: ...


def _in_jupyter() -> bool:
    """True inside a Jupyter kernel (where tqdm.auto draws a widget)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    return type(shell.get_ipython()).__name__ == "ZMQInteractiveShell"


def _has_widgets() -> bool:
    """tqdm.auto needs ipywidgets (a dependency) for a notebook bar; without it it prints a
    text bar per update into the cell output, so log lines are the better choice."""
    return importlib.util.find_spec("ipywidgets") is not None


def resolve_mode(progress: ProgressMode) -> Literal["bar", "log", "channel", "off"]:
    """Which display `progress` means here.

    `True` and `"auto"`: the study's progress channel when it set one (`"channel"`: events
    for its terminal, nothing in the notebook); else a bar when stdout is a terminal, or a
    Jupyter kernel with ipywidgets, and the `CI` environment variable is unset; plain log
    lines otherwise. `"bar"` / `"log"` force one, `False` shows nothing.
    """
    if progress is False:
        return "off"
    if progress in ("bar", "log"):
        return progress  # type: ignore[return-value]
    if progress is True or progress == "auto":
        if progress_channel.channel_path() is not None:
            return "channel"
        interactive = sys.stdout.isatty() or (_in_jupyter() and _has_widgets())
        return "bar" if interactive and not os.environ.get("CI") else "log"
    raise ValueError(f"progress must be True, False, 'auto', 'bar' or 'log', got {progress!r}")


def _summary(event: dict[str, float]) -> str:
    return (
        f"offered {event['offered_rps']:.0f}/s achieved {event['achieved_rps']:.0f}/s "
        f"sent {event['sent']:.0f} errors {event['errors']:.0f} dropped {event['dropped']:.0f}"
    )


def _postfix(event: dict[str, float]) -> dict[str, str | int]:
    """What a bar shows beside its count."""
    return {
        "offered": f"{event['offered_rps']:.0f}/s",
        "achieved": f"{event['achieved_rps']:.0f}/s",
        "errors": int(event["errors"]),
        "dropped": int(event["dropped"]),
    }


class _Bar:
    def __init__(self, total: int, desc: str) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, desc=desc, unit="req", smoothing=0.1)

    def update(self, event: dict[str, float]) -> None:
        # The bar counts schedule slots dealt with: sent or dropped.
        self._bar.n = int(event["sent"] + event["dropped"])
        self._bar.set_postfix(_postfix(event), refresh=True)

    def close(self) -> None:
        self._bar.close()


class _LogLines:
    def __init__(self, total: int, desc: str) -> None:
        self._total = total
        self._desc = desc
        self._last = -LOG_INTERVAL_S

    def update(self, event: dict[str, float]) -> None:
        now = time.monotonic()
        if now - self._last < LOG_INTERVAL_S:
            return
        self._last = now
        print(
            f"{self._desc}: {event['elapsed_s']:6.1f}s "
            f"{event['sent'] + event['dropped']:.0f}/{self._total} {_summary(event)}",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        pass


class _Channel:
    """Events on the study's progress channel; the study's terminal draws the bar."""

    def __init__(self, total: int, desc: str) -> None:
        self._id = progress_channel.new_id()
        self._fields = {"id": self._id, "label": desc, "total": total, "unit": "req"}
        progress_channel.emit("progress", done=0, **self._fields)

    def update(self, event: dict[str, float]) -> None:
        progress_channel.emit(
            "progress",
            done=int(event["sent"] + event["dropped"]),
            info=_postfix(event),
            **self._fields,
        )

    def close(self) -> None:
        progress_channel.emit("end", id=self._id)


class _Silent:
    def update(self, event: dict[str, float]) -> None:
        pass

    def close(self) -> None:
        pass


def make_display(progress: ProgressMode, *, total: int, desc: str) -> ProgressDisplay:
    """A display for `total` schedule slots, chosen by `resolve_mode(progress)`."""
    mode = resolve_mode(progress)
    if mode == "bar":
        return _Bar(total, desc)
    if mode == "log":
        return _LogLines(total, desc)
    if mode == "channel":
        return _Channel(total, desc)
    return _Silent()
