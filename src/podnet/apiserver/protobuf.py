"""Decode the Kubernetes protobuf envelope for the kinds typed-client writes send.

client-go 1.32 typed clients send protobuf when kubectl leaves the content type unset
(`auth can-i`, `create token`, `auth whoami`, `drain`), and a 415 does not make them
fall back to JSON. Those bodies are small, so a hand-written wire-format reader plus a
field table per kind turns them into the same JSON dict a JSON client would have sent;
the answer then goes back as JSON, which client-go accepts.

Envelope: the magic `k8s\\x00`, then `runtime.Unknown{1: typeMeta{1: apiVersion,
2: kind}, 2: raw, 3: contentEncoding, 4: contentType}`; `raw` is the object's message.
Field numbers come from the upstream `generated.proto` files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from podnet.api import errors

MAGIC = b"k8s\x00"
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"

_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = 0, 1, 2, 3, 4, 5


class WireError(ValueError):
    """The bytes are not valid protobuf wire format."""


# ---------------------------------------------------------------------------------------
# Wire format


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise WireError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint too long")


def fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) for each field; varints as ints, the rest as bytes.

    Groups (wire types 3/4, unused by Kubernetes) are rejected rather than skipped.
    """
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wtype = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        value: int | bytes
        if wtype == _VARINT:
            value, pos = _varint(buf, pos)
        elif wtype == _LEN:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise WireError("truncated length-delimited field")
            value, pos = buf[pos : pos + size], pos + size
        elif wtype == _I64:
            if pos + 8 > len(buf):
                raise WireError("truncated fixed64")
            value, pos = buf[pos : pos + 8], pos + 8
        elif wtype == _I32:
            if pos + 4 > len(buf):
                raise WireError("truncated fixed32")
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise WireError(f"unsupported wire type {wtype}")
        yield number, wtype, value


def _int64(v: int) -> int:
    """Varints carry int64 as two's complement in 64 bits."""
    return v - (1 << 64) if v >= 1 << 63 else v


# ---------------------------------------------------------------------------------------
# A tiny schema: message = {field number: (json name, decoder, repeated)}

Decoder = Callable[[int | bytes], Any]


@dataclass(frozen=True, slots=True)
class F:
    """One field: its JSON name, how to decode one occurrence, and how occurrences add up.

    `repeated` collects a list; `is_map` merges map-entry messages into one dict.
    gogo-protobuf writes every non-pointer scalar, empty or not, where Go's JSON would
    omit it (`omitempty`); so zero scalars are dropped unless `keep_zero` marks a
    pointer field, where 0 or false was set on purpose (`gracePeriodSeconds: 0`).
    """

    name: str
    decode: Decoder
    repeated: bool = False
    is_map: bool = False
    keep_zero: bool = False


Message = dict[int, F]


def _string(v: int | bytes) -> str:
    if not isinstance(v, bytes):
        raise WireError("expected a string")
    try:
        return v.decode("utf-8")
    except UnicodeDecodeError as e:
        raise WireError("invalid UTF-8 in a string field") from e


def _i64(v: int | bytes) -> int:
    if not isinstance(v, int):
        raise WireError("expected a varint")
    return _int64(v)


def _bool(v: int | bytes) -> bool:
    if not isinstance(v, int):
        raise WireError("expected a varint")
    return v != 0


def _msg(schema: Message) -> Decoder:
    def decode(v: int | bytes) -> dict[str, Any]:
        if not isinstance(v, bytes):
            raise WireError("expected an embedded message")
        return decode_message(v, schema)

    return decode


def _map_of(value: Decoder) -> Decoder:
    """A map entry message {1: key, 2: value}; merged into one dict by decode_message."""

    def decode(v: int | bytes) -> tuple[str, Any]:
        key = ""
        val: Any = None
        if not isinstance(v, bytes):
            raise WireError("expected a map entry")
        for number, _, raw in fields(v):
            if number == 1:
                key = _string(raw)
            elif number == 2:
                val = value(raw)
        return key, val

    return decode


# Go's zero time.Time (0001-01-01) in Unix seconds: what an unset metav1.Time becomes.
_GO_ZERO_TIME = -62135596800


def _time(v: int | bytes) -> str | None:
    """`metav1.Time` {1: seconds, 2: nanos} as RFC 3339; None (left out) when unset."""
    if not isinstance(v, bytes):
        raise WireError("expected a Time message")
    seconds: int | None = None
    for number, _, raw in fields(v):
        if number == 1 and isinstance(raw, int):
            seconds = _int64(raw)
    # metav1.Time marshals the zero time as an empty message (seen from kubectl 1.32);
    # older encoders wrote Go's zero time in seconds. Both mean "unset".
    if seconds is None or seconds <= _GO_ZERO_TIME:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError) as e:
        raise WireError(f"timestamp out of range: {seconds}") from e


def decode_message(buf: bytes, schema: Message) -> dict[str, Any]:
    """Decode one message by its schema; unknown fields are skipped (forward compatible)."""
    out: dict[str, Any] = {}
    for number, _, raw in fields(buf):
        f = schema.get(number)
        if f is None:
            continue
        value = f.decode(raw)
        if value is None:
            continue
        if f.is_map:
            key, val = value
            out.setdefault(f.name, {})[key] = val
        elif f.repeated:
            out.setdefault(f.name, []).append(value)
        elif value in ("", 0, False) and not f.keep_zero and not isinstance(value, dict):
            out.pop(f.name, None)
        else:
            out[f.name] = value
    return out


def _map_field(name: str, value: Decoder) -> F:
    return F(name, _map_of(value), is_map=True)


# k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto
OWNER_REFERENCE: Message = {
    5: F("apiVersion", _string),
    1: F("kind", _string),
    3: F("name", _string),
    4: F("uid", _string),
    6: F("controller", _bool, keep_zero=True),
    7: F("blockOwnerDeletion", _bool, keep_zero=True),
}
OBJECT_META: Message = {
    1: F("name", _string),
    2: F("generateName", _string),
    3: F("namespace", _string),
    4: F("selfLink", _string),
    5: F("uid", _string),
    6: F("resourceVersion", _string),
    7: F("generation", _i64),
    8: F("creationTimestamp", _time),
    9: F("deletionTimestamp", _time),
    10: F("deletionGracePeriodSeconds", _i64, keep_zero=True),
    11: _map_field("labels", _string),
    12: _map_field("annotations", _string),
    13: F("ownerReferences", _msg(OWNER_REFERENCE), True),
    14: F("finalizers", _string, True),
}
PRECONDITIONS: Message = {1: F("uid", _string), 2: F("resourceVersion", _string)}
DELETE_OPTIONS: Message = {
    1: F("gracePeriodSeconds", _i64, keep_zero=True),
    2: F("preconditions", _msg(PRECONDITIONS)),
    3: F("orphanDependents", _bool, keep_zero=True),
    4: F("propagationPolicy", _string),
    5: F("dryRun", _string, True),
}
FIELD_SELECTOR_REQUIREMENT: Message = {
    1: F("key", _string),
    2: F("operator", _string),
    3: F("values", _string, True),
}
LABEL_SELECTOR_REQUIREMENT = FIELD_SELECTOR_REQUIREMENT  # same numbers and names

# k8s.io/api/authorization/v1/generated.proto
FIELD_SELECTOR_ATTRIBUTES: Message = {
    1: F("rawSelector", _string),
    2: F("requirements", _msg(FIELD_SELECTOR_REQUIREMENT), True),
}
LABEL_SELECTOR_ATTRIBUTES: Message = {
    1: F("rawSelector", _string),
    2: F("requirements", _msg(LABEL_SELECTOR_REQUIREMENT), True),
}
RESOURCE_ATTRIBUTES: Message = {
    1: F("namespace", _string),
    2: F("verb", _string),
    3: F("group", _string),
    4: F("version", _string),
    5: F("resource", _string),
    6: F("subresource", _string),
    7: F("name", _string),
    8: F("fieldSelector", _msg(FIELD_SELECTOR_ATTRIBUTES)),
    9: F("labelSelector", _msg(LABEL_SELECTOR_ATTRIBUTES)),
}
NON_RESOURCE_ATTRIBUTES: Message = {1: F("path", _string), 2: F("verb", _string)}
SELF_SUBJECT_ACCESS_REVIEW_SPEC: Message = {
    1: F("resourceAttributes", _msg(RESOURCE_ATTRIBUTES)),
    2: F("nonResourceAttributes", _msg(NON_RESOURCE_ATTRIBUTES)),
}
SELF_SUBJECT_RULES_REVIEW_SPEC: Message = {1: F("namespace", _string)}
EXTRA_VALUE: Message = {1: F("items", _string, True)}
SUBJECT_ACCESS_REVIEW_SPEC: Message = {
    1: F("resourceAttributes", _msg(RESOURCE_ATTRIBUTES)),
    2: F("nonResourceAttributes", _msg(NON_RESOURCE_ATTRIBUTES)),
    3: F("user", _string),
    4: F("groups", _string, True),
    # map<string, ExtraValue>; ExtraValue is a list of strings in JSON.
    5: _map_field("extra", lambda v: _msg(EXTRA_VALUE)(v).get("items", [])),
    6: F("uid", _string),
}

# k8s.io/api/authentication/v1/generated.proto
TOKEN_REVIEW_SPEC: Message = {1: F("token", _string), 2: F("audiences", _string, True)}
BOUND_OBJECT_REFERENCE: Message = {
    1: F("kind", _string),
    2: F("apiVersion", _string),
    3: F("name", _string),
    4: F("uid", _string),
}
TOKEN_REQUEST_SPEC: Message = {
    1: F("audiences", _string, True),
    3: F("boundObjectRef", _msg(BOUND_OBJECT_REFERENCE)),
    4: F("expirationSeconds", _i64, keep_zero=True),
}


def _object(spec: Message | None, extra: Message | None = None) -> Message:
    schema: Message = {1: F("metadata", _msg(OBJECT_META))}
    if spec is not None:
        schema[2] = F("spec", _msg(spec))
    schema.update(extra or {})
    return schema


# (apiVersion, kind) -> top-level message. Status fields are ignored: clients do not
# set them and the server computes them.
KINDS: dict[tuple[str, str], Message] = {
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"):
        _object(SELF_SUBJECT_ACCESS_REVIEW_SPEC),
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): _object(SELF_SUBJECT_RULES_REVIEW_SPEC),
    ("authorization.k8s.io/v1", "SubjectAccessReview"): _object(SUBJECT_ACCESS_REVIEW_SPEC),
    ("authorization.k8s.io/v1", "LocalSubjectAccessReview"): _object(SUBJECT_ACCESS_REVIEW_SPEC),
    ("authentication.k8s.io/v1", "TokenReview"): _object(TOKEN_REVIEW_SPEC),
    ("authentication.k8s.io/v1", "TokenRequest"): _object(TOKEN_REQUEST_SPEC),
    ("authentication.k8s.io/v1", "SelfSubjectReview"): _object(None),
    # `kubectl drain` evicts through the typed policy client.
    ("policy/v1", "Eviction"): _object(None, {2: F("deleteOptions", _msg(DELETE_OPTIONS))}),
}

# Fields Go marshals without omitempty, so a JSON client would always send them.
_ALWAYS: dict[str, dict[str, Any]] = {
    "TokenRequest": {"audiences": []},
}


@dataclass(frozen=True, slots=True)
class Envelope:
    api_version: str
    kind: str
    raw: bytes
    content_encoding: str
    content_type: str


def unwrap(body: bytes) -> Envelope:
    """Split the `k8s\\0` + runtime.Unknown envelope; raises BadRequest when malformed."""
    if not body.startswith(MAGIC):
        raise errors.bad_request("the body is not a Kubernetes protobuf object (no k8s magic)")
    api_version = kind = content_encoding = content_type = ""
    raw = b""
    try:
        for number, _, value in fields(body[len(MAGIC) :]):
            if number == 1 and isinstance(value, bytes):
                for n, _, v in fields(value):
                    if n == 1:
                        api_version = _string(v)
                    elif n == 2:
                        kind = _string(v)
            elif number == 2 and isinstance(value, bytes):
                raw = value
            elif number == 3 and isinstance(value, bytes):
                content_encoding = _string(value)
            elif number == 4 and isinstance(value, bytes):
                content_type = _string(value)
    except WireError as e:
        raise errors.bad_request(f"unable to decode protobuf envelope: {e}") from e
    return Envelope(api_version, kind, raw, content_encoding, content_type)


def decode(body: bytes) -> dict[str, Any]:
    """The JSON dict equivalent of a protobuf request body.

    Raises `UnsupportedMediaType` for kinds we have no field table for (the client then
    sees a clear 415 instead of a wrongly decoded object) and `BadRequest` for bytes
    that are not valid protobuf.
    """
    env = unwrap(body)
    if env.content_encoding:
        raise errors.unsupported_media_type(
            f"unsupported protobuf content encoding {env.content_encoding!r}"
        )
    schema = KINDS.get((env.api_version, env.kind))
    if schema is None:
        raise errors.unsupported_media_type(
            f"the protobuf body for {env.kind or '<no kind>'} ({env.api_version or '<none>'}) "
            f"is not supported; send application/json"
        )
    try:
        obj = decode_message(env.raw, schema)
    except WireError as e:
        raise errors.bad_request(f"unable to decode {env.kind} from protobuf: {e}") from e
    obj.setdefault("metadata", {})
    if 2 in schema and schema[2].name == "spec":
        obj["spec"] = {**_ALWAYS.get(env.kind, {}), **obj.get("spec", {})}
    return {"kind": env.kind, "apiVersion": env.api_version, **obj}
