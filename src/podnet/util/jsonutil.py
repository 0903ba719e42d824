"""Compact, fast JSON for the wire and the store."""

from __future__ import annotations

import copy
import json
from typing import Any


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def loads(data: bytes | str) -> Any:
    return json.loads(data)


def deepcopy(obj: Any) -> Any:
    """A deep copy of plain JSON data (faster than copy.deepcopy for dict/list trees)."""
    if isinstance(obj, dict):
        return {k: deepcopy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [deepcopy(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return copy.deepcopy(obj)
