"""The 1.32 schemas: navigation, and the decode errors the apiserver would give."""

from __future__ import annotations

from typing import Any

import pytest

from podnet.api import schema
from podnet.api.schema import (
    check_decode,
    for_kind,
    schemas,
    strict_error,
    strict_unknown,
    type_errors,
    unknown_fields,
)


def svc(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": spec}


def test_loads_once() -> None:
    schemas.cache_clear()
    first = schemas()
    assert schemas() is first


def test_service_ports_carry_list_semantics() -> None:
    node = for_kind("", "v1", "Service")
    assert node is not None
    ports = node.field("spec").field("ports")  # type: ignore[union-attr]
    assert ports is not None
    assert (ports.patch_strategy, ports.patch_merge_key) == ("merge", "port")
    assert (ports.list_type, ports.list_map_keys) == ("map", ("port", "protocol"))
    port = ports.items()
    assert port is not None and port.short_name == "ServicePort"
    assert port.field("targetPort").is_int_or_string  # type: ignore[union-attr]
    assert port.field("port").types == {"integer"}  # type: ignore[union-attr]
    assert port.field("nope") is None


def test_maps_and_atomic_maps() -> None:
    node = for_kind("", "v1", "Service")
    assert node is not None
    selector = node.field("spec").field("selector")  # type: ignore[union-attr]
    assert selector is not None and selector.is_map and selector.map_type == "atomic"
    labels = node.field("metadata").field("labels")  # type: ignore[union-attr]
    assert labels is not None and labels.map_values() is not None and labels.map_type is None


@pytest.mark.parametrize(
    ("group", "version", "kind", "found"),
    [
        ("", "v1", "Pod", True),
        ("apps", "v1", "Deployment", True),
        ("networking.k8s.io", "v1", "NetworkPolicy", True),
        ("gateway.networking.k8s.io", "v1", "Gateway", False),
        ("", "v1", "NoSuchKind", False),
    ],
)
def test_for_kind(group: str, version: str, kind: str, found: bool) -> None:
    assert (for_kind(group, version, kind) is not None) is found


UNKNOWN = [
    # object                                                          unknown field paths
    (svc(ports=[{"port": 80}]), []),
    (svc(foo=1), ["spec.foo"]),
    (svc(ports=[{"port": 80}, {"port": 81, "bar": 1}]), ["spec.ports[1].bar"]),
    ({**svc(), "metadata": {"name": "x", "lables": {}}}, ["metadata.lables"]),
    ({**svc(), "extra": True}, ["extra"]),
    (svc(selector={"any-key": "v"}), []),  # map keys are data, not fields
]


@pytest.mark.parametrize(("obj", "paths"), UNKNOWN)
def test_unknown_fields(obj: dict[str, Any], paths: list[str]) -> None:
    assert unknown_fields(obj, for_kind("", "v1", "Service")) == paths


def test_free_form_content_is_not_checked() -> None:
    # ControllerRevision.data is a RawExtension: anything goes.
    obj = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r"},
           "revision": 1, "data": {"whatever": {"deep": [1]}}}
    assert strict_unknown(obj, "apps", "v1", "ControllerRevision") == []


TYPES = [
    # object                                     Go decode error (first)
    (svc(ports=[{"port": 80, "targetPort": "http"}]), []),
    (svc(ports=[{"port": 80, "targetPort": 8080}]), []),
    (svc(ports=[{"port": "80"}]),
     ["json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port "
      "of type int32"]),
    (svc(ports=[{"port": 1.5}]),
     ["json: cannot unmarshal number 1.5 into Go struct field ServicePort.spec.ports.port "
      "of type int32"]),
    (svc(ports=[{"port": 80, "targetPort": True}]),
     ["json: cannot unmarshal bool into Go struct field ServicePort.spec.ports.targetPort "
      "of type int32"]),
    (svc(ports={"port": 80}),
     ["json: cannot unmarshal object into Go struct field ServiceSpec.spec.ports "
      "of type []v1.ServicePort"]),
    ({**svc(), "metadata": {"name": "x", "labels": {"a": 1}}},
     ["json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels "
      "of type string"]),
    ({**svc(), "spec": "x"},
     ["json: cannot unmarshal string into Go struct field Service.spec of type v1.ServiceSpec"]),
    (svc(ports=None, clusterIP=None), []),  # null is always fine
]


@pytest.mark.parametrize(("obj", "errors"), TYPES)
def test_type_errors(obj: dict[str, Any], errors: list[str]) -> None:
    assert type_errors(obj, for_kind("", "v1", "Service")) == errors


def test_check_decode_is_the_apiserver_400() -> None:
    err = check_decode(svc(ports=[{"port": "80"}]), "", "v1", "Service")
    assert err is not None
    assert (err.code, err.reason) == (400, "BadRequest")
    assert err.message == (
        'Service in version "v1" cannot be handled as a Service: json: cannot unmarshal '
        "string into Go struct field ServicePort.spec.ports.port of type int32"
    )
    assert check_decode(svc(ports=[{"port": 80}]), "", "v1", "Service") is None
    assert check_decode({"spec": {"x": "y"}}, "example.com", "v1", "Widget") is None


def test_strict_error_lists_every_unknown_field() -> None:
    obj = svc(foo=1, ports=[{"port": 80, "bar": 2}])
    err = strict_error(obj, "", "v1", "Service")
    assert err is not None and err.code == 400
    assert err.message == (
        'Service in version "v1" cannot be handled as a Service: strict decoding error: '
        'unknown field "spec.foo", unknown field "spec.ports[0].bar"'
    )
    assert schema.unknown_field_warnings(["spec.foo"]) == ['unknown field "spec.foo"']
    assert strict_error(svc(), "", "v1", "Service") is None


def _bare(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _bare(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_bare(v) for v in value]
    return value


_BASES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("", "v1", "Pod", {
        "metadata": {"name": "p", "labels": {"a": "b"}, "annotations": {"x": "y"}},
        "spec": {"containers": [{"name": "c", "image": "i", "ports": [
            {"containerPort": 80, "protocol": "TCP"}],
            "resources": {"limits": {"cpu": "1", "memory": 5}},
            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}}}],
            "nodeName": "n", "terminationGracePeriodSeconds": 30},
        "status": {"phase": "Running", "podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}],
                   "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": None}],
                   "containerStatuses": [{"name": "c", "ready": True, "restartCount": 0,
                                          "state": {"running": {"startedAt": "t"}}}]}}),
    ("", "v1", "Service", {"spec": {"ports": [{"port": 80, "targetPort": 8080}],
                                    "selector": {"app": "a"}, "type": "ClusterIP"}}),
    ("apps", "v1", "Deployment", {"spec": {"replicas": 3, "selector": {"matchLabels": {}},
                                           "template": {"spec": {"containers": []}}}}),
]
_ODD: list[Any] = [None, True, 3, 2.5, 2**40, "s", [], {}, [1], {"k": "v"}]


def _mutate(value: Any, rnd: Any) -> Any:
    """`value` with one random change somewhere: a wrong-typed value, an unknown key, a
    null, or a `$` directive."""
    if isinstance(value, dict) and value and rnd.random() < 0.7:
        key = rnd.choice(list(value))
        return {**value, key: _mutate(value[key], rnd)}
    if isinstance(value, list) and value and rnd.random() < 0.7:
        i = rnd.randrange(len(value))
        return [*value[:i], _mutate(value[i], rnd), *value[i + 1:]]
    if isinstance(value, dict) and rnd.random() < 0.5:
        return {**value, rnd.choice(["bogus", "$patch", "$setElementOrder/x"]): rnd.choice(_ODD)}
    return rnd.choice(_ODD)


def test_patch_clean_agrees_with_both_decode_checks() -> None:
    # One walk, the same verdict as type_errors and unknown_fields on the body without
    # its directives, over thousands of bodies with one thing wrong (or nothing).
    import random

    rnd = random.Random(1732)
    checked = {True: 0, False: 0}
    for group, version, kind, base in _BASES:
        node = for_kind(group, version, kind)
        assert node is not None
        for _ in range(1500):
            body = _mutate(base, rnd) if rnd.random() < 0.9 else base
            bare = _bare(body)
            expected = isinstance(body, dict) and not type_errors(bare, node) and not (
                unknown_fields(bare, node))
            got = isinstance(body, dict) and schema.patch_clean(body, node)
            assert got == expected, body
            checked[expected] += 1
    assert min(checked.values()) > 500  # both verdicts well covered
