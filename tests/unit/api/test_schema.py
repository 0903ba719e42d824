"""The 1.32 schemas: navigation, and the decode errors the apiserver would give."""

from __future__ import annotations

import time
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


def test_loads_fast_and_once() -> None:
    schemas.cache_clear()
    start = time.perf_counter()
    first = schemas()
    assert time.perf_counter() - start < 1.0
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
