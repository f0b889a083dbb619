"""Telemetry documents shaped like the article's: `event_type`, `timestamp`, `data` object.

Each document carries a unique request id in `data.request_id`, so a record read back from
Kafka can be matched to the HTTP request that produced it. Bodies are built from a small set
of seeded templates with a fixed-width id slot: body `i` is `prefix + id + suffix`, so every
body has exactly the target size and building one costs a single bytes concatenation.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

# Sizes named in the study: the article's ~10 KB documents, plus a small and a large one.
SIZES_BYTES = {"1kb": 1_000, "10kb": 10_000, "100kb": 100_000}
EVENT_TYPES = ("sensor.reading", "device.heartbeat", "app.click", "app.error", "battery.level")
# Every request id is exactly this long: "<prefix>-<zero-padded index>"; room for the longest
# service name and an experiment's label ("python-enqueue-overload-10000-" and 2M indices).
ID_WIDTH = 40
_ID_PLACEHOLDER = "#" * ID_WIDTH
# The largest template without padding is about 600 bytes; below this a template may not fit.
MIN_SIZE_BYTES = 700


def _document(rng: random.Random, size_bytes: int) -> str:
    """One compact JSON document of exactly `size_bytes` bytes with an id placeholder."""
    readings = [
        {"sensor": f"s{k}", "value": round(rng.uniform(-50, 150), 3), "ok": rng.random() > 0.05}
        for k in range(rng.randint(3, 8))
    ]
    doc = {
        "event_type": rng.choice(EVENT_TYPES),
        "timestamp": 1_730_000_000_000 + rng.randrange(10**9),
        "data": {
            "request_id": _ID_PLACEHOLDER,
            "device_id": f"dev-{rng.randrange(10_000):04d}",
            "firmware": f"{rng.randint(1, 4)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}",
            "readings": readings,
            "location": {"lat": round(rng.uniform(-90, 90), 5), "lon": round(rng.uniform(-180, 180), 5)},
            "pad": "",
        },
    }
    text = json.dumps(doc, separators=(",", ":"))
    missing = size_bytes - len(text)
    if missing < 0:
        raise ValueError(f"size_bytes={size_bytes} is below this template's {len(text)} bytes")
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    pad = "".join(rng.choice(alphabet) for _ in range(missing))
    return text.replace('"pad":""', f'"pad":"{pad}"', 1)


@dataclass(frozen=True)
class PayloadSet:
    """`count` request bodies of `size_bytes` each, ids `<id_prefix>-<index>`.

    Deterministic: the same arguments give the same bytes. `templates` distinct documents are
    cycled so that the service does not parse one cached shape over and over.
    """

    count: int
    size_bytes: int = SIZES_BYTES["10kb"]
    seed: int = 1
    id_prefix: str = "r"
    templates: int = 64

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError("count must be >= 0")
        if self.size_bytes < MIN_SIZE_BYTES:
            raise ValueError(f"size_bytes must be >= {MIN_SIZE_BYTES}")
        digits = ID_WIDTH - len(self.id_prefix) - 1
        if digits < len(str(max(self.count - 1, 0))):
            raise ValueError(f"id_prefix {self.id_prefix!r} is too long for {self.count} ids "
                             f"within {ID_WIDTH} characters")
        rng = random.Random(self.seed)
        parts = []
        for _ in range(max(1, min(self.templates, self.count))):
            prefix, suffix = _document(rng, self.size_bytes).split(_ID_PLACEHOLDER)
            parts.append((prefix.encode(), suffix.encode()))
        object.__setattr__(self, "_parts", tuple(parts))

    def request_id(self, index: int) -> str:
        """The request id of body `index`: the prefix, then the index zero-padded to fill the slot."""
        return f"{self.id_prefix}-{index:0{ID_WIDTH - len(self.id_prefix) - 1}d}"

    def body(self, index: int) -> bytes:
        """The bytes of request `index` (0 <= index < count)."""
        if not 0 <= index < self.count:
            raise IndexError(index)
        prefix, suffix = self._parts[index % len(self._parts)]  # type: ignore[attr-defined]
        return prefix + self.request_id(index).encode() + suffix

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        return (self.body(i) for i in range(self.count))


def invalid_bodies(request_id: str, *, seed: int = 1) -> dict[str, bytes]:
    """One 1 KB body per validation rule, each broken in exactly the field named by its key.

    Keys are the field the service must name in its 400 answer. `data.request_id` is
    `request_id` wherever `data` is still an object, so a wrongly accepted body shows up
    in Kafka under that id.
    """
    good = json.loads(PayloadSet(1, size_bytes=1_000, seed=seed).body(0))
    good["data"]["request_id"] = request_id
    cases: dict[str, dict] = {
        "event_type": {**good, "event_type": ""},
        "timestamp": {**good, "timestamp": "yesterday"},
        "data": {**good, "data": "not-an-object"},
    }
    return {field: json.dumps(doc, separators=(",", ":")).encode() for field, doc in cases.items()}

