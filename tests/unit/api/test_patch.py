"""Strategic merge patch, JSON merge patch and JSON patch: before / patch / after."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from podnet.api.errors import StatusError
from podnet.api.patch import (
    REJECTED,
    PatchFailure,
    json_merge_patch,
    json_patch,
    strategic_merge_patch,
)
from podnet.api.schema import for_kind

SERVICE = ("", "v1", "Service")
POD = ("", "v1", "Pod")
DEPLOYMENT = ("apps", "v1", "Deployment")


def ctr(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, **fields}


SMP = [
    # id, kind, before, patch, after
    (
        "kubectl-wire §3: client-side apply moves port 80 to 81",
        SERVICE,
        {"metadata": {"name": "x", "labels": {"tier": "be"}},
         "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80},
                            {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443}],
                  "selector": {"tier": "be"}, "type": "ClusterIP"}},
        {"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"},
                      "labels": {"tier": "fe"}},
         "spec": {"$setElementOrder/ports": [{"port": 81}, {"port": 443}],
                  "ports": [{"name": "http", "port": 81, "targetPort": 8080},
                            {"name": "https", "port": 443},
                            {"$patch": "delete", "port": 80}],
                  "selector": {"tier": "fe"}}},
        {"metadata": {"name": "x", "labels": {"tier": "fe"},
                      "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"}},
         "spec": {"ports": [{"name": "http", "port": 81, "targetPort": 8080},
                            {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443}],
                  "selector": {"tier": "fe"}, "type": "ClusterIP"}},
    ),
    (
        "$setElementOrder reorders without changing content",
        POD,
        {"spec": {"containers": [ctr("a", image="x"), ctr("b", image="y")]}},
        {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}},
        {"spec": {"containers": [ctr("b", image="y"), ctr("a", image="x")]}},
    ),
    (
        "$patch: delete removes one container",
        POD,
        {"spec": {"containers": [ctr("a"), ctr("b"), ctr("c")]}},
        {"spec": {"containers": [{"$patch": "delete", "name": "b"}]}},
        {"spec": {"containers": [ctr("a"), ctr("c")]}},
    ),
    (
        "containers merge by name, other fields kept",
        POD,
        {"spec": {"containers": [ctr("web", image="nginx:1", ports=[{"containerPort": 80}]),
                                 ctr("side", image="busybox")]}},
        {"spec": {"containers": [ctr("web", image="nginx:2")]}},
        {"spec": {"containers": [ctr("web", image="nginx:2", ports=[{"containerPort": 80}]),
                                 ctr("side", image="busybox")]}},
    ),
    (
        "a new container goes first (kubectl patch docs)",
        POD,
        {"spec": {"containers": [ctr("patch-demo-ctr", image="nginx")]}},
        {"spec": {"containers": [ctr("patch-demo-ctr-2", image="redis")]}},
        {"spec": {"containers": [ctr("patch-demo-ctr-2", image="redis"),
                                 ctr("patch-demo-ctr", image="nginx")]}},
    ),
    (
        "env merges by name inside a container",
        POD,
        {"spec": {"containers": [ctr("a", env=[{"name": "A", "value": "1"},
                                               {"name": "B", "value": "2"}])]}},
        {"spec": {"containers": [ctr("a", env=[{"name": "B", "value": "3"},
                                               {"$patch": "delete", "name": "A"}])]}},
        {"spec": {"containers": [ctr("a", env=[{"name": "B", "value": "3"}])]}},
    ),
    (
        "volumeMounts merge by mountPath",
        POD,
        {"spec": {"containers": [ctr("a", volumeMounts=[{"name": "v", "mountPath": "/d"}])]}},
        {"spec": {"containers": [ctr("a", volumeMounts=[{"mountPath": "/d", "readOnly": True}])]}},
        {"spec": {"containers": [ctr("a", volumeMounts=[
            {"name": "v", "mountPath": "/d", "readOnly": True}])]}},
    ),
    (
        "ownerReferences merge by uid",
        POD,
        {"metadata": {"ownerReferences": [{"uid": "1", "kind": "ReplicaSet", "name": "a"}]}},
        {"metadata": {"ownerReferences": [{"uid": "1", "controller": True}]}},
        {"metadata": {"ownerReferences": [
            {"uid": "1", "kind": "ReplicaSet", "name": "a", "controller": True}]}},
    ),
    (
        "finalizers (merge list of strings) are a union, new first",
        POD,
        {"metadata": {"finalizers": ["a", "b"]}},
        {"metadata": {"finalizers": ["c", "a"]}},
        {"metadata": {"finalizers": ["c", "a", "b"]}},
    ),
    (
        "$deleteFromPrimitiveList removes strings",
        POD,
        {"metadata": {"finalizers": ["a", "b", "c"]}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}},
        {"metadata": {"finalizers": ["a", "c"]}},
    ),
    (
        "$setElementOrder on a primitive list",
        POD,
        {"metadata": {"finalizers": ["a", "b"]}},
        {"metadata": {"$setElementOrder/finalizers": ["b", "a", "c"], "finalizers": ["c"]}},
        {"metadata": {"finalizers": ["b", "a", "c"]}},
    ),
    (
        "$retainKeys drops rollingUpdate when switching to Recreate",
        DEPLOYMENT,
        {"spec": {"replicas": 1, "strategy": {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxSurge": 1}}}},
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
        {"spec": {"replicas": 1, "strategy": {"type": "Recreate"}}},
    ),
    (
        "null deletes a key",
        POD,
        {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"nodeName": "n"}},
        {"metadata": {"labels": {"a": None}}, "spec": {"nodeName": None, "missing": None}},
        {"metadata": {"labels": {"b": "2"}}, "spec": {}},
    ),
    (
        "lists without a merge strategy are replaced",
        POD,
        {"spec": {"containers": [ctr("a", args=["x", "y"], command=["sh"])]}},
        {"spec": {"containers": [ctr("a", args=["z"])]}},
        {"spec": {"containers": [ctr("a", args=["z"], command=["sh"])]}},
    ),
    (
        "$patch: replace on a map",
        POD,
        {"metadata": {"labels": {"a": "1", "b": "2"}}},
        {"metadata": {"labels": {"$patch": "replace", "c": "3"}}},
        {"metadata": {"labels": {"c": "3"}}},
    ),
    (
        "$patch: replace in a merge list",
        POD,
        {"spec": {"containers": [ctr("a"), ctr("b")]}},
        {"spec": {"containers": [ctr("c"), {"$patch": "replace"}]}},
        {"spec": {"containers": [ctr("c")]}},
    ),
    (
        "$patch: delete on a map empties it",
        DEPLOYMENT,
        {"spec": {"strategy": {"type": "RollingUpdate"}}},
        {"spec": {"strategy": {"$patch": "delete"}}},
        {"spec": {"strategy": {}}},
    ),
    (
        "directives in a value new to the object are not stored",
        SERVICE,
        {"spec": {}},
        {"spec": {"$setElementOrder/ports": [{"port": 80}],
                  "ports": [{"port": 80}, {"$patch": "delete", "port": 81}]}},
        {"spec": {"ports": [{"port": 80}]}},
    ),
]


@pytest.mark.parametrize(("kind", "before", "patch", "after"),
                         [c[1:] for c in SMP], ids=[c[0] for c in SMP])
def test_strategic_merge_patch(
    kind: tuple[str, str, str], before: dict[str, Any], patch: dict[str, Any],
    after: dict[str, Any],
) -> None:
    kept, sent = copy.deepcopy(before), copy.deepcopy(patch)
    assert strategic_merge_patch(before, patch, for_kind(*kind)) == after
    assert before == kept and patch == sent  # inputs untouched


def test_without_schema_smp_is_a_merge_patch() -> None:
    before = {"spec": {"items": [1, 2], "m": {"a": 1}}}
    patch = {"spec": {"items": [3], "m": {"a": None, "b": 2}}}
    assert strategic_merge_patch(before, patch, None) == {"spec": {"items": [3], "m": {"b": 2}}}


@pytest.mark.parametrize(
    ("patch", "code", "message"),
    [
        ({"spec": {"containers": [{"$patch": "delete"}]}}, 400,
         "map: map[$patch:delete] does not contain declared merge key: name"),
        ({"spec": {"containers": [{"image": "x"}]}}, 400,
         "map: map[image:x] does not contain declared merge key: name"),
        ({"spec": {"containers": [{"$patch": "merge"}]}}, 400,
         "merging lists cannot yet be specified in the patch"),
        ({"metadata": {"labels": {"$patch": "bogus"}}}, 400,
         "unknown patch type: bogus in map: map[$patch:bogus]"),
        ({"metadata": {"$retainKeys": "labels"}}, 400, "invalid patch format of retainKeys"),
        ({"metadata": {"$retainKeys": ["name"], "labels": {"a": "b"}}}, 422, REJECTED),
    ],
)
def test_strategic_merge_patch_errors(patch: dict[str, Any], code: int, message: str) -> None:
    before = {"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [ctr("a")]}}
    with pytest.raises(StatusError) as err:
        strategic_merge_patch(before, patch, for_kind(*POD))
    assert (err.value.code, err.value.message) == (code, message)


MERGE = [
    # before, patch, after (RFC 7386 examples)
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("before", "patch", "after"), MERGE)
def test_json_merge_patch(before: dict[str, Any], patch: dict[str, Any],
                          after: dict[str, Any]) -> None:
    kept = copy.deepcopy(before)
    assert json_merge_patch(before, patch) == after
    assert before == kept


DOC = {"metadata": {"labels": {"a/b": "1", "x~y": "2"}}, "spec": {"list": [1, 2, 3]}}

JSON_PATCH = [
    # ops, after
    ([{"op": "add", "path": "/spec/new", "value": {"k": 1}}],
     {**DOC, "spec": {"list": [1, 2, 3], "new": {"k": 1}}}),
    ([{"op": "add", "path": "/spec/list/-", "value": 4}],
     {**DOC, "spec": {"list": [1, 2, 3, 4]}}),
    ([{"op": "add", "path": "/spec/list/0", "value": 0}],
     {**DOC, "spec": {"list": [0, 1, 2, 3]}}),
    ([{"op": "remove", "path": "/spec/list/1"}], {**DOC, "spec": {"list": [1, 3]}}),
    ([{"op": "remove", "path": "/metadata/labels/a~1b"}],
     {**DOC, "metadata": {"labels": {"x~y": "2"}}}),
    ([{"op": "replace", "path": "/metadata/labels/x~0y", "value": "3"}],
     {**DOC, "metadata": {"labels": {"a/b": "1", "x~y": "3"}}}),
    ([{"op": "move", "from": "/spec/list", "path": "/spec/moved"}],
     {**DOC, "spec": {"moved": [1, 2, 3]}}),
    ([{"op": "copy", "from": "/spec/list/2", "path": "/spec/list/0"}],
     {**DOC, "spec": {"list": [3, 1, 2, 3]}}),
    ([{"op": "test", "path": "/spec/list", "value": [1, 2, 3]},
      {"op": "replace", "path": "/spec/list/-1", "value": 9}],
     {**DOC, "spec": {"list": [1, 2, 9]}}),
]


@pytest.mark.parametrize(("ops", "after"), JSON_PATCH)
def test_json_patch(ops: list[Any], after: dict[str, Any]) -> None:
    kept = copy.deepcopy(DOC)
    assert json_patch(DOC, ops) == after
    assert kept == DOC


@pytest.mark.parametrize(
    ("ops", "why"),
    [
        ([{"op": "test", "path": "/spec/list/0", "value": 2}], "testing value /spec/list/0 failed"),
        ([{"op": "test", "path": "/spec/list/0", "value": True}], "failed"),
        ([{"op": "remove", "path": "/spec/nope"}], "nonexistent key"),
        ([{"op": "replace", "path": "/spec/nope", "value": 1}], "missing key"),
        ([{"op": "add", "path": "/nope/deeper", "value": 1}], "missing path"),
        ([{"op": "add", "path": "/spec/list/7", "value": 1}], "invalid index"),
        ([{"op": "remove", "path": "/spec/list/x"}], "proper array index"),
        ([{"op": "frobnicate", "path": "/spec"}], "Unexpected kind"),
        ([{"op": "add", "path": "spec", "value": 1}], "must start with '/'"),
        # all or nothing: the first op's change is not kept
        ([{"op": "add", "path": "/a", "value": 1}, {"op": "remove", "path": "/b"}],
         "nonexistent key"),
    ],
)
def test_json_patch_failures_are_422(ops: list[Any], why: str) -> None:
    kept = copy.deepcopy(DOC)
    with pytest.raises(StatusError) as err:
        json_patch(DOC, ops)
    assert (err.value.code, err.value.reason, err.value.message) == (422, "Invalid", REJECTED)
    assert isinstance(err.value.__cause__, PatchFailure) and why in str(err.value.__cause__)
    assert kept == DOC


@pytest.mark.parametrize("body", [{"op": "add"}, ["add"]])
def test_json_patch_malformed_body_is_400(body: Any) -> None:
    with pytest.raises(StatusError) as err:
        json_patch(DOC, body)
    assert err.value.code == 400 and "jsonpatch" in err.value.message
