"""OpenAPI v3 documents, checked with the rules kubectl 1.32 applies to them."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import pytest

from podnet.api.resources import Registry, ResourceType
from podnet.apiserver.openapi import (
    build,
    group_version_doc,
    gv_path,
    hash_of,
    root,
)


def supports_field_validation(doc: dict[str, Any], gvk: dict[str, str]) -> bool:
    """cli-runtime's `supportsQueryParamV3`: the first PATCH op for the GVK decides."""
    for item in doc["paths"].values():
        op = item.get("patch")
        if op is None or op.get("x-kubernetes-group-version-kind") != gvk:
            continue
        return any(p["name"] == "fieldValidation" and p["in"] == "query"
                   for p in op.get("parameters", []))
    return False


@functools.cache
def k8s_definitions() -> dict[str, Any]:
    path = resources.files("kubernetes_validate").joinpath(
        "kubernetes-json-schema/v1.32.0-local/_definitions.json")
    return dict(json.loads(path.read_text())["$defs"])


def test_root_points_at_every_group_version_with_hashes() -> None:
    reg = Registry.builtin()
    doc = root(reg)
    assert list(doc) == ["paths"]
    assert doc["paths"]["api/v1"]["serverRelativeURL"].startswith("/openapi/v3/api/v1?hash=")
    assert "apis/networking.k8s.io/v1" in doc["paths"]
    assert "apis/networking.istio.io/v1alpha3" in doc["paths"]
    assert len(doc["paths"]) == sum(len(vs) for _, vs in reg.groups())
    # stable: the same registry gives the same URLs (so clients may cache)
    assert root(Registry.builtin()) == doc


def test_every_patchable_kind_gets_server_side_validation() -> None:
    reg = Registry.builtin()
    docs = build(reg)
    checked = 0
    for rt in reg:
        if "patch" not in rt.verbs:
            continue
        doc = docs.document(gv_path(rt.group, rt.version))
        assert doc is not None
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        assert supports_field_validation(doc, gvk), gvk
        checked += 1
    assert checked > 30


def test_patch_bodies_leave_out_strategic_merge_patch() -> None:
    doc = group_version_doc(Registry.builtin(), "", "v1")
    patches = [item["patch"] for item in doc["paths"].values() if "patch" in item]
    assert patches
    for op in patches:
        content = op["requestBody"]["content"]
        assert "application/strategic-merge-patch+json" not in content
        assert "application/merge-patch+json" in content
        assert isinstance(op["x-kubernetes-group-version-kind"], dict)


def test_service_paths() -> None:
    doc = group_version_doc(Registry.builtin(), "", "v1")
    assert doc["openapi"] == "3.0.0" and doc["info"]["title"]
    item = doc["paths"]["/api/v1/namespaces/{namespace}/services/{name}"]
    assert set(item) == {"get", "put", "patch", "delete", "parameters"}
    assert item["patch"]["x-kubernetes-group-version-kind"] == {
        "group": "", "version": "v1", "kind": "Service"}
    assert item["patch"]["operationId"] == "patchCoreV1NamespacedService"
    assert "/api/v1/services" in doc["paths"]  # list across namespaces
    assert "/api/v1/nodes/{name}" in doc["paths"]  # cluster scoped
    status = doc["paths"]["/api/v1/namespaces/{namespace}/services/{name}/status"]
    assert status["patch"]["x-kubernetes-group-version-kind"]["kind"] == "Service"
    # exec/log etc. have no typed operations
    assert "/api/v1/namespaces/{namespace}/pods/{name}/exec" not in doc["paths"]


def test_create_only_reviews_have_only_post() -> None:
    doc = group_version_doc(Registry.builtin(), "authorization.k8s.io", "v1")
    item = doc["paths"]["/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"]
    assert set(item) == {"post", "parameters"}
    assert not [p for p in doc["paths"] if p.endswith("{name}")]


def test_scale_subresource_carries_autoscaling_gvk() -> None:
    doc = group_version_doc(Registry.builtin(), "apps", "v1")
    scale = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert scale["patch"]["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling", "version": "v1", "kind": "Scale"}


def test_hash_changes_with_the_registry() -> None:
    reg = Registry.builtin()
    before = build(reg)
    reg.add(ResourceType("example.com", "v1", "Widget", "widgets", True, structured=False))
    after = build(reg)
    assert before.hashes["api/v1"] == after.hashes["api/v1"]
    assert "apis/example.com/v1" in after.root["paths"]
    assert "apis/example.com/v1" not in before.root["paths"]
    widget = after.document("/openapi/v3/apis/example.com/v1")
    assert widget is not None
    assert supports_field_validation(
        widget, {"group": "example.com", "version": "v1", "kind": "Widget"})
    url = after.root["paths"]["apis/example.com/v1"]["serverRelativeURL"]
    assert after.is_current("apis/example.com/v1", url.split("hash=")[1])
    assert not after.is_current("apis/example.com/v1", "stale")
    assert not after.is_current("apis/example.com/v1", None)
    assert after.document("apis/nope/v1") is None


def test_hash_of_ignores_key_order() -> None:
    assert hash_of({"a": 1, "b": [1, 2]}) == hash_of({"b": [1, 2], "a": 1})
    assert hash_of({"a": 1}) != hash_of({"a": 2})
    assert len(hash_of({})) == 128


@pytest.mark.parametrize(("group", "version"), [("", "v1"), ("networking.k8s.io", "v1")])
def test_schemas_from_kubernetes_definitions(group: str, version: str) -> None:
    doc = group_version_doc(Registry.builtin(), group, version, definitions=k8s_definitions())
    schemas = doc["components"]["schemas"]
    # every reference resolves inside the document
    text = json.dumps(doc)
    for ref in {part.split('"')[0] for part in text.split('"#/components/schemas/')[1:]}:
        assert ref in schemas, ref
    # OpenAPI 3.0: no type lists, no $defs references left
    assert '"#/$defs/' not in text
    assert all(not isinstance(s.get("type"), list) for s in schemas.values())


def test_service_schema_keeps_patch_metadata() -> None:
    doc = group_version_doc(Registry.builtin(), "", "v1", definitions=k8s_definitions())
    schemas = doc["components"]["schemas"]
    svc = schemas["io.k8s.api.core.v1.Service"]
    assert svc["x-kubernetes-group-version-kind"] == [
        {"group": "", "kind": "Service", "version": "v1"}]
    assert svc["properties"]["spec"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.api.core.v1.ServiceSpec"}]
    ports = schemas["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"]
    assert ports["type"] == "array"
    assert ports["x-kubernetes-patch-merge-key"] == "port"
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string"
    item = doc["paths"]["/api/v1/namespaces/{namespace}/services/{name}"]
    assert item["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/io.k8s.api.core.v1.Service"}
