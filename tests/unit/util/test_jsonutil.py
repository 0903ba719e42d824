"""jsonutil: orjson where it can, the standard library where orjson refuses, so that
whatever encoded or decoded before still does."""

from __future__ import annotations

import json

import pytest

from podnet.util import jsonutil


def test_compact_utf8_round_trip() -> None:
    obj = {"metadata": {"name": "web", "labels": {"app": "ü"}}, "n": [1, 2.5, None, True]}
    data = jsonutil.dumps(obj)
    assert data == json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    assert jsonutil.loads(data) == obj
    assert jsonutil.loads(data.decode()) == obj


def test_what_orjson_refuses_falls_back_to_the_standard_library() -> None:
    big = 2**70
    assert jsonutil.dumps({"x": big}) == b'{"x":1180591620717411303424}'
    assert jsonutil.loads(b'{"x":1180591620717411303424}') == {"x": big}
    assert jsonutil.dumps({1: "a"}) == b'{"1":"a"}'  # keys become strings, as json does


def test_invalid_json_is_a_json_decode_error() -> None:
    with pytest.raises(json.JSONDecodeError):
        jsonutil.loads(b'{"a": ')
    with pytest.raises(ValueError):
        jsonutil.loads("")


def test_deepcopy_shares_nothing() -> None:
    obj = {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80}]}]}}
    out = jsonutil.deepcopy(obj)
    assert out == obj
    out["spec"]["containers"][0]["ports"][0]["containerPort"] = 81
    assert obj["spec"]["containers"][0]["ports"][0]["containerPort"] == 80


def test_deepcopy_of_what_is_not_plain_json() -> None:
    marker = object()
    obj = {"big": 2**70, "other": marker}
    out = jsonutil.deepcopy(obj)
    assert out["big"] == 2**70 and out is not obj
