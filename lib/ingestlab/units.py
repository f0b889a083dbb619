"""Units: the constants every module converts with, and the rule for naming quantities.

A quantity's name ends in its unit, and each suffix means one thing everywhere:

- `_bytes`: bytes; `_mib`: 2**20 bytes (memory as the kernel and V8 report it: RSS, USS,
  heap); `_mb`: 10**6 bytes (sizes on disk and of images, as registries report them);
- `_ns`, `_us`, `_ms`, `_s`, `_h`: durations; `_rps`: requests per second; `_pct`: percent
  (CPU: of one core).
"""

from __future__ import annotations

MIB = 1 << 20
MB = 1_000_000
NS_PER_US = 1_000
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
MS_PER_S = 1_000
