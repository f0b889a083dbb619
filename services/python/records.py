"""The input rules of services/README.md ("Promises"), as pure functions: from a request's
headers and body bytes to the record to publish, or `Refused(status, message)`.

Standard library only, so the rules are tested without a server (tests/unit). Where Python's
`json` differs from the other two programs' parsers the difference is closed here: `NaN` and
`Infinity` are refused, numbers beyond a double are refused (Python would keep a 400-digit
integer exactly), a lone surrogate (`"\\ud800"`, which `json` decodes) is refused when the
record is encoded, and nesting is counted (127 levels, serde_json's limit).

The record is the three fields in the article's order, re-serialized compactly with raw UTF-8
(extra top-level fields are dropped, as Rust's typed struct drops them; a whole-number
timestamp written `1.0` or `1e3` is published as an integer). `__proto__`, `constructor` and
`prototype` keys are accepted: a dict has no prototype to pollute (as in Rust).
"""

from __future__ import annotations

import json
import math

TOPIC = "data-ingestion"
# The article's 1 MiB body limit, 1,048,576 bytes; a record may be no larger.
BODY_LIMIT_BYTES = 1_048_576
RECORD_LIMIT_BYTES = BODY_LIMIT_BYTES
# librdkafka counts a record as its value plus at most 36 bytes of framing against
# message.max.bytes (the broker adds its 61-byte batch header to its own limit).
PRODUCER_MESSAGE_MAX_BYTES = RECORD_LIMIT_BYTES + 36
MAX_EVENT_TYPE_CHARS = 100  # Unicode code points: what len() counts
MAX_TIMESTAMP = 2**53 - 1
MAX_DEPTH = 127  # the top-level object is level 1
# A double's largest finite value has 309 digits; a longer integer literal is out of range.
_MAX_DOUBLE_DIGITS = 309

EVENT_TYPE_ERROR = "Invalid parameter: 'event_type' must be a non-empty string under 100 characters."
TIMESTAMP_ERROR = "Invalid parameter: 'timestamp' must be a valid positive integer."
DATA_ERROR = "Invalid parameter: 'data' must be a structural JSON object."
INVALID_JSON = "Invalid JSON body."
TOO_DEEP = f"Invalid JSON body: nested deeper than {MAX_DEPTH} levels."
OUT_OF_RANGE = "Invalid JSON body: a number is out of range."
LONE_SURROGATE = "Invalid JSON body: a string holds a lone surrogate."
BODY_TOO_LARGE = f"Payload too large: the limit is {BODY_LIMIT_BYTES} bytes."
RECORD_TOO_LARGE = f"Payload too large: the record would exceed {RECORD_LIMIT_BYTES} bytes."
_BOM = b"\xef\xbb\xbf"
_JSON_WHITESPACE = b" \t\r\n"


class Refused(Exception):
    """A request the service answers with a 4xx: `status` and the client-facing `message`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def media_type_problem(content_type: str | None, content_encoding: str | None) -> str | None:
    """415's message unless the body is declared `application/json` (a charset, if named,
    utf-8) and sent uncompressed (no Content-Encoding, or `identity`); else None."""
    media_type, *params = (content_type or "").split(";")
    if media_type.strip().lower() != "application/json":
        return "Unsupported Content-Type: send 'application/json'."
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() != "utf-8":
            return "Unsupported charset: send UTF-8."
    if content_encoding is not None and content_encoding.strip().lower() != "identity":
        return "Unsupported Content-Encoding: send the body uncompressed."
    return None


def _refuse_constant(name: str) -> object:
    raise Refused(400, INVALID_JSON)  # NaN, Infinity, -Infinity: not JSON


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise Refused(400, OUT_OF_RANGE)
    return value


def _finite_int(text: str) -> int:
    # Checked on the text: int() of a very long literal is slow (and refused past 4,300 digits).
    if len(text.lstrip("-")) >= _MAX_DOUBLE_DIGITS and math.isinf(float(text)):
        raise Refused(400, OUT_OF_RANGE)
    return int(text)


_DECODER = json.JSONDecoder(parse_float=_finite_float, parse_int=_finite_int, parse_constant=_refuse_constant)


def _too_deep(root: object) -> bool:
    """True if `root` nests containers more than MAX_DEPTH levels (iterative: no recursion)."""
    stack: list[tuple[object, int]] = [(root, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))  # type: ignore[union-attr]
    return False


def parse_document(body: bytes) -> dict:
    """The body as a JSON object, or `Refused(400, ...)` saying what is wrong with it."""
    if not body:
        raise Refused(400, "Invalid JSON body: the body is empty.")
    if body.startswith(_BOM):
        raise Refused(400, "Invalid JSON body: a byte order mark is not allowed.")
    if not body.lstrip(_JSON_WHITESPACE).startswith(b"{"):
        raise Refused(400, "Invalid JSON body: the body must be a JSON object.")
    try:
        text = body.decode("utf-8")  # strict: overlong forms, encoded surrogates refused
    except UnicodeDecodeError:
        raise Refused(400, "Invalid JSON body: not valid UTF-8.") from None
    try:
        doc = _DECODER.decode(text)
    except RecursionError:  # far deeper than MAX_DEPTH: the C scanner ran out of stack
        raise Refused(400, TOO_DEEP) from None
    except ValueError:
        raise Refused(400, INVALID_JSON) from None
    # A container per level needs a bracket per level: fewer brackets, no walk.
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and _too_deep(doc):
        raise Refused(400, TOO_DEEP)
    return doc


def _timestamp(value: object) -> int | None:
    """`value` as an integer timestamp in 1..2^53-1 (a whole float counts), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and 1 <= value <= MAX_TIMESTAMP:
        return value
    return None


def encode_record(body: bytes) -> bytes:
    """The record to publish for `body` (UTF-8 JSON, at most RECORD_LIMIT_BYTES), or
    `Refused`: 400 naming what is wrong, 413 if the record would be too large."""
    doc = parse_document(body)
    event_type = doc.get("event_type")
    if not isinstance(event_type, str) or not 1 <= len(event_type) <= MAX_EVENT_TYPE_CHARS:
        raise Refused(400, EVENT_TYPE_ERROR)
    timestamp = _timestamp(doc.get("timestamp"))
    if timestamp is None:
        raise Refused(400, TIMESTAMP_ERROR)
    data = doc.get("data")
    if not isinstance(data, dict):
        raise Refused(400, DATA_ERROR)
    record = {"event_type": event_type, "timestamp": timestamp, "data": data}
    try:
        encoded = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    except UnicodeEncodeError:  # a lone surrogate in a string or a key
        raise Refused(400, LONE_SURROGATE) from None
    if len(encoded) > RECORD_LIMIT_BYTES:
        raise Refused(413, RECORD_TOO_LARGE)
    return encoded
