"""Notebook 00: one record as the service was sent it and as Kafka stored it, and how the two
differ (byte for byte, as JSON, in key order). Sizes in bytes."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl


def _shorten(value: Any, limit: int) -> Any:
    """`value` with every string longer than `limit` cut, saying how long it was."""
    if isinstance(value, dict):
        return {k: _shorten(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_shorten(v, limit) for v in value]
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]}… ({len(value)} characters)"
    return value


def _key_paths(value: Any, prefix: str = "") -> list[str]:
    """Every object key, depth first in document order, as a dotted path."""
    paths: list[str] = []
    if isinstance(value, dict):
        for key, child in value.items():
            path = f"{prefix}{key}"
            paths.append(path)
            paths += _key_paths(child, path + ".")
    elif isinstance(value, list):
        for i, child in enumerate(value):
            paths += _key_paths(child, f"{prefix}{i}.")
    return paths


def _object_keys(value: Any, path: str = "") -> dict[str, list[str]]:
    """Each object's keys in document order, by the object's dotted path (the root is "")."""
    found: dict[str, list[str]] = {}
    if isinstance(value, dict):
        found[path] = list(value)
        for key, child in value.items():
            found |= _object_keys(child, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found |= _object_keys(child, f"{path}.{i}" if path else str(i))
    return found


def compare_record(sent: bytes, stored: bytes | None) -> dict[str, Any]:
    """How a record stored in Kafka differs from the body that was POSTed.

    `byte_identical`; `equal_as_json` (same values, key order ignored); `same_key_order`
    (every object's keys in the same order); `reordered_objects`: dotted paths of the
    objects whose keys come in another order (the document root is ""); `missing_keys` /
    `extra_keys`: key paths only in the body sent / only in the record; and both sizes in
    bytes. With `stored` None (no record found) only `found` (False) and `sent_bytes`.
    """
    if stored is None:
        return {"found": False, "sent_bytes": len(sent)}
    a, b = json.loads(sent), json.loads(stored)
    paths_a, paths_b = _key_paths(a), _key_paths(b)
    keys_a, keys_b = _object_keys(a), _object_keys(b)
    reordered = [
        path for path, keys in keys_a.items()
        if path in keys_b and keys != keys_b[path] and sorted(keys) == sorted(keys_b[path])
    ]
    return {
        "found": True,
        "byte_identical": sent == stored,
        "equal_as_json": a == b,
        "same_key_order": paths_a == paths_b,
        "reordered_objects": reordered,
        "missing_keys": sorted(set(paths_a) - set(paths_b)),
        "extra_keys": sorted(set(paths_b) - set(paths_a)),
        "sent_bytes": len(sent),
        "stored_bytes": len(stored),
    }


@dataclass(frozen=True)
class SentVsStored:
    """Per service: the JSON body sent beside the record read back from Kafka, and how
    they differ (`compare_record`). Long strings are cut in the display only."""

    documents: tuple[tuple[str, str, bytes, bytes | None], ...]  # service, request id, sent, stored
    comparisons: dict[str, dict[str, Any]]
    shorten_at: int = 48  # characters

    def _pretty(self, raw: bytes | None) -> str:
        if raw is None:
            return "(no record with this request id in the topic)"
        return json.dumps(_shorten(json.loads(raw), self.shorten_at), indent=2, ensure_ascii=False)

    def _facts(self, service: str) -> str:
        c = self.comparisons[service]
        if not c["found"]:
            return "no record found"
        facts = [
            "byte for byte identical" if c["byte_identical"] else "not byte for byte identical",
            "equal as JSON" if c["equal_as_json"] else "NOT equal as JSON",
            "keys in the same order" if c["same_key_order"] else "keys reordered in: "
            + ", ".join(p or "(root)" for p in c["reordered_objects"]),
            f"{c['sent_bytes']:,} bytes sent, {c['stored_bytes']:,} stored",
        ]
        if c["missing_keys"]:
            facts.append("dropped: " + ", ".join(c["missing_keys"]))
        if c["extra_keys"]:
            facts.append("added: " + ", ".join(c["extra_keys"]))
        return "; ".join(facts)

    def _repr_html_(self) -> str:
        e = html.escape
        parts = []
        cell = "vertical-align:top;text-align:left;padding:.3em .8em;font-size:.8em"
        for service, request_id, sent, stored in self.documents:
            parts.append(
                f"<h4>{e(service)}: request <code>{e(request_id)}</code></h4>"
                f"<p>{e(self._facts(service))}</p>"
                f"<table><tr><th style='{cell}'>sent (POST body)</th>"
                f"<th style='{cell}'>stored (record in Kafka)</th></tr>"
                f"<tr><td style='{cell}'><pre>{e(self._pretty(sent))}</pre></td>"
                f"<td style='{cell}'><pre>{e(self._pretty(stored))}</pre></td></tr></table>"
            )
        return "".join(parts)

    def __repr__(self) -> str:
        lines = []
        for service, request_id, sent, stored in self.documents:
            lines += [f"== {service}: {request_id}: {self._facts(service)}", "-- sent", self._pretty(sent),
                      "-- stored", self._pretty(stored)]
        return "\n".join(lines)


def sent_vs_stored(sent: Mapping[str, tuple[str, bytes]], records: pl.DataFrame) -> SentVsStored:
    """`sent`: service -> (request id, body POSTed); `records`: the topic read back with
    values (`Stack.read_topic(keep_values=True)`: request_id, value). Each body is matched to
    the first record carrying its request id."""
    documents = []
    comparisons = {}
    for service, (request_id, body) in sent.items():
        found = records.filter(pl.col("request_id") == request_id)
        stored = found["value"][0] if found.height else None
        documents.append((service, request_id, body, stored))
        comparisons[service] = compare_record(body, stored)
    return SentVsStored(tuple(documents), comparisons)
