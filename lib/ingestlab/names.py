"""Names that several layers write, defined once: how the study's parts run (the runtimes) and
which images the container runtime runs (the image flavours).

`config` validates a study's choice against these; `stack` chooses its runtime by them,
`engine` marks its containers' runtime with one, `build` builds an image per flavour, and
`telemetry`, `summaries` and the experiments tell a container from a native process by them.
"""

from __future__ import annotations

from typing import Final, Literal

# How the broker and the services run: as child processes of this Python ("native"), or each
# in a container of the workbook's own Docker engine (engine.container; host networking).
NATIVE: Final = "native"
CONTAINER: Final = "container"
Runtime = Literal["container", "native"]
RUNTIMES: tuple[Runtime, ...] = (CONTAINER, NATIVE)

# Which images the container runtime runs (build.images builds them): "minimal" holds the
# program and what it loads, nothing else; "conventional" has a distribution's base below it.
MINIMAL: Final = "minimal"
CONVENTIONAL: Final = "conventional"
ImageFlavour = Literal["minimal", "conventional"]
IMAGE_FLAVOURS: tuple[ImageFlavour, ...] = (MINIMAL, CONVENTIONAL)
