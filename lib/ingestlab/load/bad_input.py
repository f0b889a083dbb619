"""The bad-input corpus: what a client may send to `POST /api/ingest`, and what it must get back.

Each case is data (`BadInputCase`): the bytes and headers of one request, how they are framed
and paced, and the class of answer both services promise (services/README.md, "Promises"):
"accept" (202, and the record in Kafka) or "reject" (a 4xx with a JSON error naming the
problem). Where the programs keep a deliberate difference (only Node refuses
`__proto__`/`constructor`/`prototype` keys) a case names it per program
(`ingestlab.variants.program_of`), so every variant of a program expects what it does.

The malformed-JSON cases are our own, modelled on the categories of a JSON parsing conformance
suite (its n_ cases must be refused, its y_ cases accepted). Every case that may be accepted,
and every rejected one whose `data` is still an object, carries a unique `data.request_id`, so
a record in Kafka is matched to the case that sent it (`stack.topic.request_id_of`).

Not in the corpus: malformed HTTP framing (both Content-Length and Transfer-Encoding, a
non-numeric Content-Length, an unknown transfer coding). actix answers those itself, with a
400 and an empty body, before any handler runs (a known limit, README.md).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Literal

from ingestlab.config import ServiceName
from ingestlab.load.raw_http import RawRequest, request_head
from ingestlab.stack.services import BODY_LIMIT_BYTES, INGEST_PATH
from ingestlab.variants import Program, program_of

Expected = Literal["accept", "reject"]
Framing = Literal["length", "chunked", "chunked-raw", "none"]

# The article's rules, as both services now apply them (services/README.md).
MAX_EVENT_TYPE_CHARS = 100
MAX_TIMESTAMP = 2**53 - 1
MAX_DEPTH = 127  # serde_json's recursion limit admits 127 levels; the top-level object is 1
# A slow upload takes about this long; the services give a body 5 s before answering 408.
SLOW_UPLOAD_S = 2.0

CATEGORIES = (
    "json-syntax", "json-valid", "content-type", "empty", "event_type", "timestamp", "data",
    "size", "nesting", "numbers", "duplicate-keys", "prototype", "unicode", "slow", "framing",
    "method",
)

_EVENT_TYPE = "bad-input"
_TIMESTAMP = 1_730_000_000_000


@dataclass(frozen=True)
class BadInputCase:
    """One request of the corpus and the answer it must get.

    `body` is the bytes, or a function making them (the large cases). `content_type` None
    sends no Content-Type header. `framing`: Content-Length ("length"; `declared_length`
    overrides the true length), chunked ("chunked", in `chunk_bytes` pieces; "chunked-raw",
    `body` already framed), or no length header at all ("none"). A slow case sends its framed
    body in `pieces` over `upload_s` seconds; `stall_after_bytes` stops the upload after that
    many framed bytes, never finishing it.
    """

    case_id: str
    category: str
    description: str
    expected: Expected
    body: bytes | Callable[[], bytes]
    request_id: str | None = None
    content_type: str | None = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    framing: Framing = "length"
    declared_length: int | None = None
    chunk_bytes: int = 65_536
    method: str = "POST"
    target: str = INGEST_PATH
    pieces: int = 1
    upload_s: float = 0.0
    stall_after_bytes: int | None = None
    expected_by_program: tuple[tuple[Program, Expected], ...] = ()

    def expected_for(self, service: ServiceName) -> Expected:
        """The answer class `service` promises: its program's documented difference, else
        `expected`."""
        return dict(self.expected_by_program).get(program_of(service), self.expected)

    def body_bytes(self) -> bytes:
        return self.body() if callable(self.body) else self.body

    @property
    def slow(self) -> bool:
        """Takes seconds by design (paced or stalled upload)."""
        return self.upload_s > 0 or self.stall_after_bytes is not None


def _chunked(body: bytes, chunk_bytes: int) -> bytes:
    chunks = [body[i:i + chunk_bytes] for i in range(0, len(body), chunk_bytes)]
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


def wire_request(case: BadInputCase, *, port: int) -> RawRequest:
    """The bytes `case` sends to 127.0.0.1:`port`, framed and paced as it says."""
    body = case.body_bytes()
    headers = [("Content-Type", case.content_type)] if case.content_type is not None else []
    if case.framing == "length":
        length = len(body) if case.declared_length is None else case.declared_length
        headers.append(("Content-Length", str(length)))
    elif case.framing in ("chunked", "chunked-raw"):
        headers.append(("Transfer-Encoding", "chunked"))
        body = _chunked(body, case.chunk_bytes) if case.framing == "chunked" else body
    head = request_head(case.method, case.target, port=port, headers=[*headers, *case.headers])
    if case.stall_after_bytes is not None:
        body = body[:case.stall_after_bytes]
    size = -(-len(body) // case.pieces)  # ceiling: `pieces` pieces at most
    pieces = tuple(body[i:i + size] for i in range(0, len(body), size)) if body else ()
    gap_s = case.upload_s / (len(pieces) - 1) if len(pieces) > 1 else 0.0
    return RawRequest(head=head, pieces=pieces, gap_s=gap_s)


# --- document builders -------------------------------------------------------------------------
def _dumps(doc: object, *, ascii_only: bool = True) -> bytes:
    """Compact JSON; non-ASCII as \\u escapes unless `ascii_only` is False (raw UTF-8)."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=ascii_only).encode()


def _doc(rid: str, **fields: object) -> dict:
    """A valid document carrying `rid`, with `fields` replacing or adding top-level fields."""
    return {"event_type": _EVENT_TYPE, "timestamp": _TIMESTAMP, "data": {"request_id": rid}, **fields}


def _data_text(rid: str, members: str) -> bytes:
    """A document whose `data` object holds the request id and the raw JSON text `members`."""
    return (f'{{"event_type":"{_EVENT_TYPE}","timestamp":{_TIMESTAMP},'
            f'"data":{{"request_id":"{rid}",{members}}}}}').encode()


def _top_text(rid: str, event_type: str = f'"{_EVENT_TYPE}"', timestamp: str = str(_TIMESTAMP)) -> bytes:
    """A document with the raw JSON texts `event_type` and `timestamp` as those fields."""
    return (f'{{"event_type":{event_type},"timestamp":{timestamp},'
            f'"data":{{"request_id":"{rid}"}}}}').encode()


def _padded(rid: str, size_bytes: int) -> bytes:
    """A valid ASCII document of exactly `size_bytes` bytes; both services republish it
    byte for byte in length (compact, no escapes, no floats)."""
    empty = _data_text(rid, '"pad":""')
    return _data_text(rid, '"pad":"' + "x" * (size_bytes - len(empty)) + '"')


def _nested(rid: str, depth: int, *, opener: str = "[", closer: str = "]") -> bytes:
    """A document nested `depth` levels deep in all (the top-level object is level 1,
    `data` level 2, then `depth - 2` containers inside `data.deep`)."""
    inner = depth - 2
    return _data_text(rid, '"deep":' + opener * inner + closer * inner)


def _growing_numbers(rid: str) -> bytes:
    """Just under the body limit, in numbers that serialize longer than they are written:
    `1e21` becomes `1e+21` in JavaScript; the record would exceed the limit."""
    empty = _data_text(rid, '"n":[]')
    count = (BODY_LIMIT_BYTES - 16 - len(empty)) // len("1e21,")
    return _data_text(rid, '"n":[' + ",".join(["1e21"] * count) + "]")


# --- the corpus --------------------------------------------------------------------------------
def corpus(id_prefix: str) -> tuple[BadInputCase, ...]:
    """Every case, with request ids `<id_prefix>-<nnn>` (at most 64 characters in all, no
    quotes or backslashes: the read-back's pattern)."""
    cases = tuple(_cases(id_prefix))
    ids = [c.case_id for c in cases]
    if len(set(ids)) != len(ids):
        raise ValueError("case ids must be unique")
    return cases


def _cases(id_prefix: str) -> Iterator[BadInputCase]:
    serials = iter(range(1000))

    def rid() -> str:
        return f"{id_prefix}-{next(serials):03d}"

    def case(case_id: str, category: str, expected: Expected, description: str,
             make: Callable[[str], bytes | Callable[[], bytes]], **options: object) -> BadInputCase:
        """A case whose body `make` builds around its request id (large bodies: a `partial`,
        built when sent rather than when the corpus is listed)."""
        request_id = rid()
        return BadInputCase(case_id=case_id, category=category, description=description,
                            expected=expected, body=make(request_id), request_id=request_id,
                            **options)  # type: ignore[arg-type]

    # --- malformed JSON: each must be refused (400) ---------------------------------------
    syntax = [
        ("trailing-comma-object", "a comma after the last member of the top-level object",
         lambda r: _top_text(r)[:-1] + b",}"),
        ("trailing-comma-array", "a comma after the last element of an array in data",
         lambda r: _data_text(r, '"list":[1,2,]')),
        ("single-quotes", "strings in single quotes",
         lambda r: _top_text(r).replace(b'"', b"'")),
        ("nan", "NaN as a value", lambda r: _data_text(r, '"x":NaN')),
        ("infinity", "Infinity as a value", lambda r: _data_text(r, '"x":Infinity')),
        ("minus-infinity", "-Infinity as a value", lambda r: _data_text(r, '"x":-Infinity')),
        ("unclosed-object", "the top-level object is never closed", lambda r: _top_text(r)[:-1]),
        ("unclosed-array", "an array in data is never closed", lambda r: _data_text(r, '"list":[1,2')),
        ("unclosed-string", "a string runs to the end of the body", lambda r: _top_text(r)[:-5]),
        ("missing-colon", "a member without its colon",
         lambda r: _top_text(r).replace(b'"event_type":', b'"event_type" ')),
        ("missing-comma", "two members without a comma between them",
         lambda r: _top_text(r).replace(b',"timestamp"', b' "timestamp"')),
        ("leading-comma", "a comma before the first member",
         lambda r: b"{," + _top_text(r)[1:]),
        ("double-comma", "two commas between members",
         lambda r: _top_text(r).replace(b',"timestamp"', b',,"timestamp"')),
        ("block-comment", "a /* comment */ between members",
         lambda r: _top_text(r).replace(b',"timestamp"', b',/* c */"timestamp"')),
        ("line-comment", "a // comment before the first member",
         lambda r: b"{// c\n" + _top_text(r)[1:]),
        ("leading-zero", "a number with a leading zero", lambda r: _data_text(r, '"x":01')),
        ("leading-plus", "a number with a leading plus", lambda r: _data_text(r, '"x":+1')),
        ("leading-dot", "a number starting with a dot", lambda r: _data_text(r, '"x":.5')),
        ("trailing-dot", "a number ending with a dot", lambda r: _data_text(r, '"x":1.')),
        ("hex-number", "a hexadecimal number", lambda r: _data_text(r, '"x":0x1F')),
        ("bare-exponent", "an exponent without digits", lambda r: _data_text(r, '"x":1e')),
        ("minus-space", "a minus sign apart from its digits", lambda r: _data_text(r, '"x":- 1')),
        ("unquoted-key", "a key without quotes",
         lambda r: _top_text(r).replace(b'"event_type"', b"event_type")),
        ("unquoted-string", "a string value without quotes",
         lambda r: _top_text(r, event_type="bad_input")),
        ("invalid-escape", "the escape \\a, which JSON does not have",
         lambda r: _top_text(r, event_type='"a\\ab"')),
        ("hex-escape", "a \\x41 escape", lambda r: _top_text(r, event_type='"\\x41"')),
        ("octal-escape", "a \\0 escape", lambda r: _top_text(r, event_type='"\\0"')),
        ("short-unicode-escape", "a \\u escape with two hex digits",
         lambda r: _top_text(r, event_type='"\\u12"')),
        ("raw-tab", "a raw tab inside a string", lambda r: _top_text(r, event_type='"a\tb"')),
        ("raw-newline", "a raw newline inside a string", lambda r: _top_text(r, event_type='"a\nb"')),
        ("raw-nul", "a raw NUL byte inside a string", lambda r: _top_text(r, event_type='"a\x00b"')),
        ("trailing-garbage", "a character after the top-level object", lambda r: _top_text(r) + b"x"),
        ("trailing-nul", "a NUL byte after the top-level object", lambda r: _top_text(r) + b"\x00"),
        ("two-documents", "two objects one after the other", lambda r: _top_text(r) * 2),
        ("capitalised-true", "True instead of true", lambda r: _data_text(r, '"x":True')),
        ("undefined", "undefined as a value", lambda r: _data_text(r, '"x":undefined')),
        ("mismatched-brackets", "an array closed by a brace", lambda r: _data_text(r, '"list":[1}')),
        ("closing-bracket", "the top-level object closed by a bracket",
         lambda r: _top_text(r)[:-1] + b"]"),
        ("utf16-body", "the document in UTF-16 with its byte order mark",
         lambda r: _top_text(r).decode().encode("utf-16")),
        ("utf8-bom", "a valid document after a UTF-8 byte order mark (refused by both: RFC 8259 "
         "forbids sending one)", lambda r: b"\xef\xbb\xbf" + _top_text(r)),
        ("only-whitespace", "a body of spaces and newlines", lambda r: b"  \n\t \r\n"),
        ("empty-key-colon", "a member with no key", lambda r: _data_text(r, ':1')),
    ]
    for name, description, make in syntax:
        yield case(f"json-{name}", "json-syntax", "reject", description, make)

    # --- valid JSON of unusual form: each must be accepted (202) ---------------------------
    valid = [
        ("whitespace-everywhere", "spaces, tabs, CR and LF around every token",
         lambda r: json.dumps(_doc(r), indent="\t", separators=(" ,\r\n", " :\t ")).encode()),
        ("trailing-newline", "a newline after the document", lambda r: _top_text(r) + b"\r\n"),
        ("escaped-slash", "a \\/ escape in data", lambda r: _data_text(r, '"path":"a\\/b"')),
        ("all-escapes", "every short escape in one string",
         lambda r: _data_text(r, '"s":"\\b\\f\\n\\r\\t\\"\\\\"')),
        ("escaped-nul", "a \\u0000 escape in data", lambda r: _data_text(r, '"s":"a\\u0000b"')),
        ("surrogate-pair-escape", "an emoji as a \\ud83d\\ude00 surrogate-pair escape",
         lambda r: _data_text(r, '"s":"\\ud83d\\ude00"')),
        ("raw-utf8", "raw UTF-8 in data: accents, CJK, emoji",
         lambda r: _dumps(_doc(r, data={"request_id": r, "s": "caf\u00e9 \u6f22\u5b57 \U0001f600"}),
                          ascii_only=False)),
        ("line-separators", "raw U+2028 and U+2029 in a string",
         lambda r: _dumps(_doc(r, data={"request_id": r, "s": "a\u2028b\u2029c"}), ascii_only=False)),
        ("noncharacter", "U+FFFF, a noncharacter but valid JSON", lambda r: _data_text(r, '"s":"\\uffff"')),
        ("literals", "true, false and null in data", lambda r: _data_text(r, '"t":true,"f":false,"n":null')),
        ("number-forms", "negative, fraction and exponent forms in data",
         lambda r: _data_text(r, '"a":-1.5e-3,"b":1E+2,"c":0,"d":-0,"e":0.0,"f":1e308')),
        ("empty-key", "an empty string as a key in data", lambda r: _data_text(r, '"":1')),
        ("unicode-key", "a non-ASCII key in data",
         lambda r: _dumps(_doc(r, data={"request_id": r, "cl\u00e9": 1}), ascii_only=False)),
        ("nested-shallow", "objects and arrays ten levels deep", lambda r: _nested(r, 12, opener="[")),
        ("many-keys", "1,000 members in data",
         lambda r: _dumps(_doc(r, data={"request_id": r, **{f"k{i}": i for i in range(1000)}}))),
        ("extra-top-level-field", "a field beside the three (Node keeps it, Rust drops it)",
         lambda r: _dumps(_doc(r, extra={"a": 1}))),
        ("fields-reordered", "data first, event_type last",
         lambda r: _dumps({"data": {"request_id": r}, "timestamp": _TIMESTAMP, "event_type": _EVENT_TYPE})),
        ("string-value-proto", "the word __proto__ as a value, not a key",
         lambda r: _data_text(r, '"s":"__proto__"')),
        ("query-string", "the ingest path with a query string", lambda r: _top_text(r)),
    ]
    for name, description, make in valid:
        options = {"target": INGEST_PATH + "?source=test"} if name == "query-string" else {}
        yield case(f"valid-{name}", "json-valid", "accept", description, make, **options)

    # --- content types and encodings -----------------------------------------------------
    content_types: list[tuple[str, str | None, Expected, str]] = [
        ("missing", None, "reject", "no Content-Type header"),
        ("empty", "", "reject", "an empty Content-Type"),
        ("text-plain", "text/plain", "reject", "text/plain"),
        ("form", "application/x-www-form-urlencoded", "reject", "a form encoding"),
        ("multipart", "multipart/form-data; boundary=x", "reject", "multipart/form-data"),
        ("json-suffix", "application/vnd.api+json", "reject", "a +json media type (not application/json)"),
        ("jsonx", "application/jsonx", "reject", "application/jsonx"),
        ("list", "application/json, text/plain", "reject", "two media types in one header"),
        ("utf16-charset", "application/json; charset=utf-16", "reject", "a UTF-16 charset on UTF-8 bytes"),
        ("latin1-charset", "application/json; charset=latin1", "reject", "a latin1 charset"),
        ("charset-no-value", "application/json; charset", "reject", "a charset parameter without a value"),
        ("utf8-charset", "application/json; charset=utf-8", "accept", "application/json; charset=utf-8"),
        ("upper-case", "APPLICATION/JSON;CHARSET=UTF-8", "accept", "the media type in capitals"),
        ("quoted-charset", 'application/json; charset="utf-8"', "accept", "a quoted charset"),
        ("other-parameter", "application/json; foo=bar", "accept", "an unknown parameter"),
    ]
    for name, content_type, expected, description in content_types:
        yield case(f"ctype-{name}", "content-type", expected, description, _top_text,
                   content_type=content_type)
    yield case("ctype-gzip", "content-type", "reject",
               "a gzip-compressed body (Content-Encoding: gzip): refused, not inflated",
               lambda r: gzip.compress(_top_text(r)), headers=(("Content-Encoding", "gzip"),))
    yield case("ctype-identity", "content-type", "accept", "Content-Encoding: identity",
               _top_text, headers=(("Content-Encoding", "identity"),))

    # --- empty and non-object bodies -----------------------------------------------------
    shapes: list[tuple[str, bytes, str, Framing]] = [
        ("empty-length-0", b"", "an empty body, Content-Length: 0", "length"),
        ("no-length", b"", "no body and neither Content-Length nor Transfer-Encoding", "none"),
        ("empty-chunked", b"", "an empty chunked body", "chunked"),
        ("empty-object", b"{}", "an empty object", "length"),
        ("null", b"null", "the literal null", "length"),
        ("array", b"[]", "an empty array", "length"),
        ("string", b'"x"', "a JSON string", "length"),
        ("number", b"0", "a JSON number", "length"),
        ("true", b"true", "the literal true", "length"),
    ]
    for name, body, description, framing in shapes:
        yield BadInputCase(case_id=f"empty-{name}", category="empty", description=description,
                           expected="reject", body=body, framing=framing)
    yield case("empty-array-of-fields", "empty", "reject",
               "the three fields as an array in the struct's order (serde would take it as the struct)",
               lambda r: _dumps([_EVENT_TYPE, _TIMESTAMP, {"request_id": r}]))

    # --- event_type ----------------------------------------------------------------------
    wrong_event_types = [
        ("missing", None), ("null", "null"), ("number", "1"), ("boolean", "true"),
        ("array", '["a"]'), ("object", '{"a":1}'), ("empty", '""'),
    ]
    for name, text in wrong_event_types:
        def make(r: str, text: str | None = text) -> bytes:
            return (_dumps({"timestamp": _TIMESTAMP, "data": {"request_id": r}}) if text is None
                    else _top_text(r, event_type=text))
        yield case(f"event_type-{name}", "event_type", "reject", f"event_type {name}", make)
    # "characters" are Unicode code points: UTF-16 units and UTF-8 bytes may be more
    lengths: list[tuple[str, str, Expected, str]] = [
        ("ascii-100", "a" * 100, "accept", "100 ASCII characters"),
        ("ascii-101", "a" * 101, "reject", "101 ASCII characters"),
        ("2byte-100", "\u00e9" * 100, "accept", "100 x e-acute: 100 characters, 200 UTF-8 bytes"),
        ("2byte-101", "\u00e9" * 101, "reject", "101 x e-acute"),
        ("3byte-100", "\u6f22" * 100, "accept", "100 CJK characters, 300 UTF-8 bytes"),
        ("3byte-101", "\u6f22" * 101, "reject", "101 CJK characters"),
        ("emoji-100", "\U0001f600" * 100, "accept", "100 emoji: 200 UTF-16 units, 400 UTF-8 bytes"),
        ("emoji-101", "\U0001f600" * 101, "reject", "101 emoji"),
        ("mixed-100", "a" * 99 + "\U0001f600", "accept",
         "99 ASCII + 1 emoji: 100 characters, 101 UTF-16 units"),
        ("combining-100", "e\u0301" * 50, "accept", "50 x e + combining accent: 100 code points"),
        ("combining-102", "e\u0301" * 51, "reject", "51 x e + combining accent: 102 code points"),
        ("whitespace", " ", "accept", "a single space (not empty; no trimming)"),
    ]
    for name, text, expected, description in lengths:
        yield case(f"event_type-{name}-raw", "event_type", expected, f"{description}, raw UTF-8",
                   lambda r, t=text: _dumps(_doc(r, event_type=t), ascii_only=False))
    for name, text, expected, description in lengths[2:9]:
        yield case(f"event_type-{name}-escaped", "event_type", expected, f"{description}, as \\u escapes",
                   lambda r, t=text: _dumps(_doc(r, event_type=t)))

    # --- timestamp -----------------------------------------------------------------------
    timestamps: list[tuple[str, str | None, Expected, str]] = [
        ("missing", None, "reject", "no timestamp"),
        ("null", "null", "reject", "null"),
        ("string", '"1730000000000"', "reject", "a number in a string"),
        ("boolean", "true", "reject", "true"),
        ("array", "[1]", "reject", "an array"),
        ("object", '{"ms":1}', "reject", "an object"),
        ("negative", "-1", "reject", "-1"),
        ("zero", "0", "reject", "0 (the article: a positive integer)"),
        ("minus-zero", "-0", "reject", "-0"),
        ("one", "1", "accept", "1, the smallest"),
        ("fraction", "1.5", "reject", "1.5"),
        ("whole-float", "1.0", "accept", "1.0: a whole number (JSON.parse cannot tell it from 1)"),
        ("exponent", "1e3", "accept", "1e3"),
        ("capital-exponent", "1.73E12", "accept", "1.73E12"),
        ("max-safe", str(MAX_TIMESTAMP), "accept", "2^53 - 1, the largest"),
        ("2pow53", str(2**53), "reject", "2^53"),
        ("2pow53-plus-1", str(2**53 + 1), "reject", "2^53 + 1 (JavaScript would round it to 2^53)"),
        ("i64-max", str(2**63 - 1), "reject", "2^63 - 1"),
        ("u64-max", str(2**64 - 1), "reject", "2^64 - 1"),
        ("beyond-u64", str(2**64), "reject", "2^64, beyond u64"),
        ("huge-exponent", "1e400", "reject", "1e400, beyond a double"),
        ("underflow", "1e-400", "reject", "1e-400, which reads as 0"),
        ("long-literal", "1" + "0" * 1000, "reject", "a 1,001-digit integer"),
    ]
    for name, text, expected, description in timestamps:
        def make_ts(r: str, text: str | None = text) -> bytes:
            return (_dumps({"event_type": _EVENT_TYPE, "data": {"request_id": r}}) if text is None
                    else _top_text(r, timestamp=text))
        yield case(f"timestamp-{name}", "timestamp", expected, f"timestamp {description}", make_ts)

    # --- data ----------------------------------------------------------------------------
    wrong_data = [
        ("null", "null"), ("string", '"request_id"'), ("number", "1"), ("boolean", "false"),
        ("empty-array", "[]"),
    ]
    for name, text in wrong_data:
        yield BadInputCase(case_id=f"data-{name}", category="data", description=f"data {name}",
                           expected="reject",
                           body=f'{{"event_type":"{_EVENT_TYPE}","timestamp":{_TIMESTAMP},"data":{text}}}'
                           .encode())
    yield BadInputCase(case_id="data-missing", category="data", description="no data field",
                       expected="reject", body=_dumps({"event_type": _EVENT_TYPE, "timestamp": _TIMESTAMP}))
    yield case("data-array-of-objects", "data", "reject",
               "data an array of objects (the article's message: an object)",
               lambda r: _dumps(_doc(r, data=[{"request_id": r}])))
    yield case("data-nested-objects", "data", "accept", "objects inside data",
               lambda r: _dumps(_doc(r, data={"request_id": r, "a": {"b": {"c": [1, {"d": None}]}}})))

    # --- sizes: the 1 MiB limit and one byte either side ---------------------------------
    yield case("size-limit-minus-1", "size", "accept", "a valid body of 1 MiB - 1 byte",
               lambda r: partial(_padded, r, BODY_LIMIT_BYTES - 1))
    yield case("size-limit-exact", "size", "accept",
               "a valid body of exactly 1 MiB (1,048,576 bytes): must reach Kafka",
               lambda r: partial(_padded, r, BODY_LIMIT_BYTES))
    yield case("size-limit-plus-1", "size", "reject", "a valid body of 1 MiB + 1 byte: 413",
               lambda r: partial(_padded, r, BODY_LIMIT_BYTES + 1))
    yield case("size-chunked-limit-exact", "size", "accept", "exactly 1 MiB, chunked (no Content-Length)",
               lambda r: partial(_padded, r, BODY_LIMIT_BYTES), framing="chunked")
    yield case("size-chunked-limit-plus-1", "size", "reject", "1 MiB + 1 byte, chunked: 413",
               lambda r: partial(_padded, r, BODY_LIMIT_BYTES + 1), framing="chunked")
    yield case("size-declared-too-large", "size", "reject",
               "Content-Length: 2 MiB declared, the body never sent: 413 (Rust, at once) or 408 "
               "(Node waits for the body it would discard)",
               lambda r: b"", declared_length=2 * BODY_LIMIT_BYTES, stall_after_bytes=0)
    yield case("size-declared-shorter", "size", "reject",
               "Content-Length shorter than the body: a truncated document (the rest is not a request)",
               _top_text, declared_length=10)
    yield case("size-record-grows", "size", "reject",
               "1 MiB - 16 bytes of 1e21 numbers, which serialize longer: the record would exceed "
               "1 MiB (413)",
               lambda r: partial(_growing_numbers, r))

    # --- nesting ---------------------------------------------------------------------------
    yield case(f"nesting-{MAX_DEPTH}", "nesting", "accept", f"{MAX_DEPTH} levels of arrays in all, the most",
               lambda r: _nested(r, MAX_DEPTH))
    yield case(f"nesting-{MAX_DEPTH + 1}", "nesting", "reject", f"{MAX_DEPTH + 1} levels",
               lambda r: _nested(r, MAX_DEPTH + 1))
    yield case(f"nesting-objects-{MAX_DEPTH + 1}", "nesting", "reject", f"{MAX_DEPTH + 1} levels of objects",
               lambda r: _data_text(r, '"deep":' + '{"a":' * (MAX_DEPTH - 1) + "1" + "}" * (MAX_DEPTH - 1)))
    yield case("nesting-1000", "nesting", "reject", "1,000 levels of arrays", lambda r: _nested(r, 1000))
    yield case("nesting-100000-arrays", "nesting", "reject", "100,000 levels of arrays",
               lambda r: partial(_nested, r, 100_000))
    yield case("nesting-100000-objects", "nesting", "reject", "100,000 levels of objects",
               lambda r: partial(_data_text, r, '"deep":' + '{"a":' * 100_000 + "1" + "}" * 100_000))
    yield case("nesting-100000-unclosed", "nesting", "reject", "100,000 opening brackets, never closed",
               lambda r: partial(_data_text, r, '"deep":' + "[" * 100_000))
    yield case("nesting-event_type", "nesting", "reject", "event_type nested 200 levels deep",
               lambda r: _top_text(r, event_type="[" * 200 + '"a"' + "]" * 200))

    # --- numbers -------------------------------------------------------------------------
    numbers_cases: list[tuple[str, str, Expected, str]] = [
        ("300-digits", "9" * 300, "accept", "a 300-digit integer in data (fits a double)"),
        ("400-digits", "9" * 400, "reject", "a 400-digit integer in data (beyond a double)"),
        ("10000-digits", "1" + "0" * 10_000, "reject", "a 10,001-digit integer in data"),
        ("1e400", "1e400", "reject", "1e400 in data (JSON.parse: Infinity, published as null)"),
        ("minus-1e400", "-1e400", "reject", "-1e400 in data"),
        ("huge-exponent", "1e99999999999", "reject", "an exponent of 11 digits"),
        ("long-fraction", "0." + "1" * 1000, "accept", "a fraction of 1,000 digits"),
        ("beyond-2pow64", str(2**64), "accept", "2^64 in data (carried as a double in both)"),
        ("underflow", "1e-400", "accept", "1e-400 in data (reads as 0 in both)"),
    ]
    for name, text, expected, description in numbers_cases:
        yield case(f"numbers-{name}", "numbers", expected, description,
                   lambda r, t=text: _data_text(r, f'"n":{t}'))

    # --- duplicate keys: the last one wins, as JSON.parse does ---------------------------
    yield case("dup-event_type", "duplicate-keys", "accept", "event_type twice, both valid: the last wins",
               lambda r: _top_text(r).replace(b'{"event_type"', b'{"event_type":"first","event_type"', 1))
    yield case("dup-event_type-last-invalid", "duplicate-keys", "reject",
               "event_type twice, the last empty: refused as the last wins",
               lambda r: _top_text(r).replace(b',"timestamp"', b',"event_type":"","timestamp"', 1))
    yield case("dup-timestamp", "duplicate-keys", "accept", "timestamp twice, both valid",
               lambda r: _top_text(r).replace(b',"data"', b',"timestamp":2,"data"', 1))
    yield case("dup-in-data", "duplicate-keys", "accept", "a key twice inside data",
               lambda r: _data_text(r, '"k":1,"k":2'))

    # --- prototype keys: Node refuses them anywhere (the article); Rust and Python have no
    # prototype to pollute and accept them ------------------------------------------------
    positions = [
        ("top", lambda r, key: _dumps({**_doc(r), key: {"admin": True}})),
        ("data", lambda r, key: _dumps(_doc(r, data={"request_id": r, key: {"admin": True}}))),
        ("nested", lambda r, key: _dumps(_doc(r, data={"request_id": r, "a": {"b": {key: 1}}}))),
        ("array", lambda r, key: _dumps(_doc(r, data={"request_id": r, "list": [{key: 1}]}))),
    ]
    for key in ("__proto__", "constructor", "prototype"):
        for where, make_key in positions:
            yield case(f"proto-{key.strip('_')}-{where}", "prototype", "reject",
                       f"a {key} key ({where}): Node refuses it, Rust and Python accept (services/README.md)",
                       lambda r, m=make_key, k=key: m(r, k),
                       expected_by_program=(("rust", "accept"), ("python", "accept")))

    # --- unicode: invalid UTF-8 and lone surrogates must be refused ------------------------
    bad_utf8 = [
        ("invalid-byte-ff", b"\xff", "the byte 0xFF"),
        ("lone-continuation", b"\x80", "a continuation byte alone"),
        ("truncated-2byte", b"\xc3", "a 2-byte sequence cut short"),
        ("overlong-slash", b"\xc0\xaf", "an overlong encoding of /"),
        ("utf8-surrogate", b"\xed\xa0\x80", "a surrogate (U+D800) encoded in UTF-8"),
        ("truncated-4byte", b"\xf0\x9f\x98", "a 4-byte sequence cut short"),
        ("beyond-u10ffff", b"\xf4\x90\x80\x80", "a code point beyond U+10FFFF"),
    ]
    for name, raw, description in bad_utf8:
        yield case(f"unicode-{name}", "unicode", "reject", f"{description} in a data string",
                   lambda r, b=raw: _data_text(r, '"s":"a#b"').replace(b"#", b))
    lone = [
        ("lone-high", '"\\ud800"', "a lone high surrogate escape in data"),
        ("lone-low", '"\\udc00"', "a lone low surrogate escape in data"),
        ("reversed-pair", '"\\udc00\\ud800"', "a low then a high surrogate"),
        ("high-then-letter", '"\\ud800x"', "a high surrogate followed by a letter"),
        ("two-highs", '"\\ud800\\ud800"', "two high surrogates"),
    ]
    for name, text, description in lone:
        yield case(f"unicode-{name}", "unicode", "reject", description,
                   lambda r, t=text: _data_text(r, f'"s":{t}'))
    yield case("unicode-lone-in-key", "unicode", "reject", "a lone surrogate in a key of data",
               lambda r: _data_text(r, '"\\ud800":1'))
    yield case("unicode-lone-in-event_type", "unicode", "reject", "event_type a lone surrogate",
               lambda r: _top_text(r, event_type='"\\ud800"'))

    # --- slow uploads: bounded; a finished one is accepted, a stalled one answered 408 -----
    yield case("slow-trickle", "slow", "accept", f"a valid body in 10 pieces over {SLOW_UPLOAD_S} s",
               _top_text, pieces=10, upload_s=SLOW_UPLOAD_S)
    yield case("slow-trickle-chunked", "slow", "accept",
               f"a valid body in 8-byte chunks, sent in 10 pieces over {SLOW_UPLOAD_S} s",
               _top_text, framing="chunked", chunk_bytes=8, pieces=10, upload_s=SLOW_UPLOAD_S)
    yield case("slow-stall-after-head", "slow", "reject",
               "the head declares a body that never comes: 408 within the services' 5 s",
               _top_text, stall_after_bytes=0)
    yield case("slow-stall-mid-body", "slow", "reject", "half the declared body, then nothing: 408",
               lambda r: _padded(r, 10_000), stall_after_bytes=5_000)
    yield case("slow-stall-chunked", "slow", "reject", "a chunked body without its last chunk: 408",
               _top_text, framing="chunked", chunk_bytes=16, stall_after_bytes=48)

    # --- framing the services parse themselves ---------------------------------------------
    yield case("framing-chunked", "framing", "accept", "a valid body, chunked", _top_text, framing="chunked")
    yield case("framing-one-byte-chunks", "framing", "accept", "a valid body in 1-byte chunks",
               _top_text, framing="chunked", chunk_bytes=1)
    yield case("framing-bad-chunk-size", "framing", "reject", "a chunk size that is not hexadecimal",
               lambda r: b"zz\r\n" + _top_text(r) + b"\r\n0\r\n\r\n", framing="chunked-raw")

    # --- methods and paths: JSON 404s, never an HTML page --------------------------------
    yield case("method-get", "method", "reject", "GET /api/ingest", _top_text, method="GET")
    yield case("method-put", "method", "reject", "PUT /api/ingest", _top_text, method="PUT")
    yield case("method-other-path", "method", "reject", "POST to a path that does not exist",
               _top_text, target="/api/ingest/extra")
