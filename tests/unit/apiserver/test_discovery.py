"""Discovery documents, checked against what kubectl and the Python client read from them."""

from __future__ import annotations

from typing import Any

import pytest

from podnet.api.resources import Registry, ResourceType
from podnet.apiserver.discovery import (
    AGGREGATED_V2,
    AGGREGATED_V2BETA1,
    aggregated,
    aggregated_api_version,
    aggregated_content_type,
    api_group,
    api_group_list,
    api_resource_list,
    api_versions,
    negotiate_aggregated,
    storage_version_hash,
    wants_aggregated,
)

KUBECTL_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)


@pytest.mark.parametrize(
    ("accept", "answer"),
    [
        (KUBECTL_ACCEPT, AGGREGATED_V2),
        ("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
         "application/json", AGGREGATED_V2BETA1),
        ("application/json", None),
        ("application/json, */*", None),
        (None, None),
        ("", None),
        # A client that prefers plain JSON gets the legacy form.
        ("application/json,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
         None),
        # ... unless it weights the aggregated one higher.
        ("application/json;q=0.5,application/json;g=apidiscovery.k8s.io;v=v2;"
         "as=APIGroupDiscoveryList", AGGREGATED_V2),
        # A version we do not serve is skipped.
        ("application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,"
         "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
         AGGREGATED_V2BETA1),
    ],
)
def test_negotiate(accept: str | None, answer: str | None) -> None:
    assert negotiate_aggregated(accept) == answer


def test_helpers_the_server_calls() -> None:
    assert wants_aggregated(KUBECTL_ACCEPT)
    assert not wants_aggregated("application/json, */*")
    assert aggregated_content_type(KUBECTL_ACCEPT) == AGGREGATED_V2
    beta = aggregated(Registry.builtin(), False, content_type=AGGREGATED_V2BETA1)
    assert beta["apiVersion"] == "apidiscovery.k8s.io/v2beta1"


def test_aggregated_api_version_follows_media_type() -> None:
    assert aggregated_api_version(AGGREGATED_V2) == "apidiscovery.k8s.io/v2"
    assert aggregated_api_version(AGGREGATED_V2BETA1) == "apidiscovery.k8s.io/v2beta1"
    reg = Registry.builtin()
    assert aggregated(reg, True, "v2beta1")["apiVersion"] == "apidiscovery.k8s.io/v2beta1"


def _resource(doc: dict[str, Any], group: str, version: str, plural: str) -> dict[str, Any]:
    for item in doc["items"]:
        if item["metadata"]["name"] != group:
            continue
        for v in item["versions"]:
            if v["version"] == version:
                for r in v["resources"]:
                    if r["resource"] == plural:
                        return dict(r)
    raise KeyError((group, version, plural))


def test_api_is_core_only_and_pods_are_complete() -> None:
    doc = aggregated(Registry.builtin(), core=True)
    assert doc["kind"] == "APIGroupDiscoveryList"
    assert doc["apiVersion"] == "apidiscovery.k8s.io/v2"
    assert [i["metadata"]["name"] for i in doc["items"]] == [""]
    pods = _resource(doc, "", "v1", "pods")
    assert pods["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert pods["scope"] == "Namespaced"
    assert pods["singularResource"] == "pod"
    assert pods["shortNames"] == ["po"]
    assert pods["categories"] == ["all"]
    assert pods["verbs"] == ["create", "delete", "deletecollection", "get", "list", "patch",
                             "update", "watch"]
    subs = {s["subresource"]: s for s in pods["subresources"]}
    assert subs["exec"]["responseKind"] == {"group": "", "version": "v1",
                                            "kind": "PodExecOptions"}
    assert subs["eviction"]["responseKind"] == {"group": "policy", "version": "v1",
                                                "kind": "Eviction"}
    assert subs["log"]["verbs"] == ["get"]
    assert _resource(doc, "", "v1", "nodes")["scope"] == "Cluster"


def test_apis_lists_named_groups_preferred_version_first() -> None:
    doc = aggregated(Registry.builtin(), core=False)
    names = [i["metadata"]["name"] for i in doc["items"]]
    assert "" not in names
    assert names[:3] == ["apps", "discovery.k8s.io", "networking.k8s.io"]
    istio = next(i for i in doc["items"] if i["metadata"]["name"] == "networking.istio.io")
    assert [v["version"] for v in istio["versions"]] == ["v1", "v1beta1", "v1alpha3"]
    ing = _resource(doc, "networking.k8s.io", "v1", "ingresses")
    assert ing["shortNames"] == ["ing"]
    assert ing["subresources"] == [{
        "subresource": "status",
        "responseKind": {"group": "networking.k8s.io", "version": "v1", "kind": "Ingress"},
        "verbs": ["get", "patch", "update"],
    }]
    scale = _resource(doc, "apps", "v1", "deployments")["subresources"][0]
    assert scale["subresource"] == "scale"
    assert scale["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    # every resource has the four fields kubectl needs, or it is silently dropped
    for item in doc["items"]:
        for v in item["versions"]:
            for r in v["resources"]:
                assert {"resource", "responseKind", "scope", "verbs"} <= r.keys()


def test_custom_resources_appear_after_add() -> None:
    reg = Registry.builtin()
    reg.add(ResourceType("example.com", "v1", "Widget", "widgets", True,
                         short_names=("wd",), categories=("all",), structured=False))
    doc = aggregated(reg, core=False)
    assert doc["items"][-1]["metadata"]["name"] == "example.com"
    assert _resource(doc, "example.com", "v1", "widgets")["categories"] == ["all"]
    groups = api_group_list(reg)["groups"]
    assert groups[-1] == {
        "name": "example.com",
        "versions": [{"groupVersion": "example.com/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "example.com/v1", "version": "v1"},
    }


def test_legacy_api_versions() -> None:
    assert api_versions("127.0.0.1:6443") == {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                        "serverAddress": "127.0.0.1:6443"}],
    }


def test_legacy_group_list_and_group() -> None:
    reg = Registry.builtin()
    doc = api_group_list(reg)
    assert doc["kind"] == "APIGroupList" and doc["apiVersion"] == "v1"
    gw = next(g for g in doc["groups"] if g["name"] == "gateway.networking.k8s.io")
    assert gw["preferredVersion"] == {"groupVersion": "gateway.networking.k8s.io/v1",
                                      "version": "v1"}
    assert [v["version"] for v in gw["versions"]] == ["v1", "v1beta1"]
    group = api_group(reg, "networking.k8s.io")
    assert group is not None
    assert group["kind"] == "APIGroup" and group["name"] == "networking.k8s.io"
    assert api_group(reg, "nope.example.com") is None
    assert api_group(reg, "") is None


def test_legacy_resource_list_core() -> None:
    doc = api_resource_list(Registry.builtin(), "", "v1")
    assert doc is not None
    assert doc["kind"] == "APIResourceList" and doc["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in doc["resources"]}
    assert by_name["pods"] == {
        "name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
        "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update",
                  "watch"],
        "shortNames": ["po"], "categories": ["all"],
        "storageVersionHash": storage_version_hash("", "v1", "Pod"),
    }
    assert by_name["pods/log"] == {"name": "pods/log", "singularName": "", "namespaced": True,
                                   "kind": "Pod", "verbs": ["get"]}
    assert by_name["pods/eviction"]["group"] == "policy"
    assert by_name["serviceaccounts/token"]["kind"] == "TokenRequest"
    assert by_name["nodes"]["namespaced"] is False


def test_legacy_resource_list_groups() -> None:
    reg = Registry.builtin()
    apps = api_resource_list(reg, "apps", "v1")
    assert apps is not None and apps["groupVersion"] == "apps/v1"
    by_name = {r["name"]: r for r in apps["resources"]}
    assert by_name["deployments/scale"] == {
        "name": "deployments/scale", "singularName": "", "namespaced": True, "kind": "Scale",
        "verbs": ["get", "patch", "update"], "group": "autoscaling", "version": "v1",
    }
    authz = api_resource_list(reg, "authorization.k8s.io", "v1")
    assert authz is not None
    ssar = next(r for r in authz["resources"] if r["name"] == "selfsubjectaccessreviews")
    assert ssar["verbs"] == ["create"] and "storageVersionHash" not in ssar
    assert api_resource_list(reg, "apps", "v2") is None
    assert api_resource_list(reg, "nope.example.com", "v1") is None


def test_storage_version_hash_is_stable_and_short() -> None:
    h = storage_version_hash("", "v1", "Pod")
    assert h == storage_version_hash("", "v1", "Pod")
    assert len(h) == 12 and h != storage_version_hash("", "v1", "Service")
