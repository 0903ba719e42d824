"""Compact, fast JSON for the wire and the store.

orjson (C) instead of the standard library: every request, watch event and stored
object is encoded or decoded here, and a 100-pod burst spent about a fifth of the API
server's and the agent's CPU in the stdlib's json and in copying JSON trees. With orjson
both used about 20% less CPU per burst, and create → Running p99 fell from a median of
676 to 554 ms in three interleaved pairs of runs (docs/benchmarks.md). What orjson
refuses and the stdlib takes (integers beyond 64 bits, non-string keys it cannot
stringify) falls back to the stdlib, so nothing that encoded before fails now.
Decoding errors are orjson.JSONDecodeError, a json.JSONDecodeError (so a ValueError).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson

_OPTS = orjson.OPT_NON_STR_KEYS


def dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj, option=_OPTS)
    except TypeError:  # e.g. an integer beyond 64 bits
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def loads(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        # Valid JSON orjson will not take (an integer beyond 64 bits) still decodes;
        # anything else raises the stdlib's JSONDecodeError, as before.
        return json.loads(data)


def deepcopy(obj: Any) -> Any:
    """A deep copy of plain JSON data: an orjson round trip, several times faster than
    walking the tree in Python. Anything that is not plain JSON is copied as it is."""
    try:
        return orjson.loads(orjson.dumps(obj))
    except TypeError:
        return _walk_copy(obj)


def _walk_copy(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _walk_copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_walk_copy(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return copy.deepcopy(obj)
