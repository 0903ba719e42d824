"""CustomResourceDefinitions end to end over HTTP, and the built-in unstructured kinds
(Istio, Kong) that podnet serves without a CRD."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from podnet.testing.apiserver import InProcessApi, running_api
from tests.unit.apiserver.support import TABLE, created, list_rv, status_of

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"
AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


@pytest.fixture
async def api() -> AsyncIterator[InProcessApi]:
    async with running_api() as a:
        yield a


def widget_crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget",
                      "shortNames": ["wd"]},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {
                    "type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
            }],
        },
    }


def widget(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name},
            "spec": spec}


async def established(api: InProcessApi) -> dict[str, Any]:
    for _ in range(50):
        _, crd, _ = await api.get(f"{CRDS}/widgets.example.com")
        conds = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions")
                 or []}
        if conds.get("Established") == "True":
            out: dict[str, Any] = crd
            return out
        await asyncio.sleep(0.02)
    raise AssertionError(f"CRD never became Established: {crd}")


@pytest.fixture
async def crd_api(api: InProcessApi) -> InProcessApi:
    await created(api, CRDS, widget_crd())
    await established(api)
    return api


async def test_crd_becomes_established_and_discoverable(api: InProcessApi) -> None:
    obj = await created(api, CRDS, widget_crd())
    assert obj["metadata"]["generation"] == 1
    crd = await established(api)
    conds = {c["type"]: c for c in crd["status"]["conditions"]}
    assert conds["NamesAccepted"]["status"] == "True"
    assert crd["status"]["acceptedNames"]["kind"] == "Widget"
    assert crd["status"]["acceptedNames"]["listKind"] == "WidgetList"
    assert crd["status"]["storedVersions"] == ["v1"]

    code, groups, _ = await api.get("/apis")
    assert code == 200
    entry = [g for g in groups["groups"] if g["name"] == "example.com"]
    assert entry and entry[0]["preferredVersion"]["groupVersion"] == "example.com/v1"
    code, resources, _ = await api.get("/apis/example.com/v1")
    assert code == 200
    res = {r["name"]: r for r in resources["resources"]}
    assert res["widgets"]["kind"] == "Widget" and res["widgets"]["namespaced"] is True
    assert res["widgets"]["shortNames"] == ["wd"]
    assert "widgets/status" in res
    code, agg, _ = await api.get("/apis", headers={"Accept": AGGREGATED})
    assert code == 200
    assert any(g["metadata"]["name"] == "example.com" for g in agg["items"])


async def test_widget_crud_keeps_unknown_fields(crd_api: InProcessApi) -> None:
    api = crd_api
    w = widget("w1", size=3, color="red", nested={"deep": [1, {"x": None}]})
    w["extra"] = {"top": "level"}
    obj = await created(api, WIDGETS, w)
    assert obj["spec"] == {"size": 3, "color": "red", "nested": {"deep": [1, {"x": None}]}}
    assert obj["extra"] == {"top": "level"}
    assert obj["metadata"]["generation"] == 1
    code, got, _ = await api.get(f"{WIDGETS}/w1")
    assert code == 200 and got["extra"] == {"top": "level"}
    code, lst, _ = await api.get(WIDGETS)
    assert lst["kind"] == "WidgetList" and lst["apiVersion"] == "example.com/v1"
    assert [o["metadata"]["name"] for o in lst["items"]] == ["w1"]
    got["spec"]["size"] = 4
    code, upd, _ = await api.put(f"{WIDGETS}/w1", got)
    assert code == 200, upd
    assert upd["spec"]["size"] == 4 and upd["metadata"]["generation"] == 2
    code, body, _ = await api.post(WIDGETS, widget("w1"))
    assert code == 409
    assert status_of(body) == ("AlreadyExists", 'widgets.example.com "w1" already exists')
    code, _, _ = await api.delete(f"{WIDGETS}/w1")
    assert code == 200
    code, body, _ = await api.get(f"{WIDGETS}/w1")
    assert code == 404
    assert status_of(body) == ("NotFound", 'widgets.example.com "w1" not found')


async def test_widget_status_dropped_on_create(crd_api: InProcessApi) -> None:
    w = widget("w", size=1)
    w["status"] = {"ready": True}
    obj = await created(crd_api, WIDGETS, w)
    assert "status" not in obj


async def test_widget_status_subresource(crd_api: InProcessApi) -> None:
    api = crd_api
    await created(api, WIDGETS, widget("w", size=1))
    code, st, _ = await api.patch(f"{WIDGETS}/w/status", {"status": {"ready": True},
                                                          "spec": {"size": 9}})
    assert code == 200, st
    assert st["status"] == {"ready": True} and st["spec"]["size"] == 1
    assert st["metadata"]["generation"] == 1
    code, main, _ = await api.patch(f"{WIDGETS}/w", {"status": {"ready": False},
                                                     "spec": {"size": 2}})
    assert main["status"] == {"ready": True} and main["spec"]["size"] == 2


async def test_widget_merge_patch_and_no_strategic(crd_api: InProcessApi) -> None:
    api = crd_api
    await created(api, WIDGETS, widget("w", size=1, color="red"))
    code, body, _ = await api.patch(f"{WIDGETS}/w", {"spec": {"color": None, "shape": "x"}})
    assert code == 200, body
    assert body["spec"] == {"size": 1, "shape": "x"}
    code, body, _ = await api.patch(f"{WIDGETS}/w", [{"op": "replace", "path": "/spec/size",
                                                      "value": 5}], patch_type="json")
    assert code == 200 and body["spec"]["size"] == 5
    before = await list_rv(api, WIDGETS)
    code, body, _ = await api.patch(f"{WIDGETS}/w", {"spec": {"size": 6}},
                                    patch_type="strategic")
    assert code == 415
    assert status_of(body) == (
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, "
        "application/apply-patch+yaml")
    assert await list_rv(api, WIDGETS) == before


async def test_widget_server_side_apply(crd_api: InProcessApi) -> None:
    api = crd_api
    code, body, _ = await api.patch(f"{WIDGETS}/w?fieldManager=me", widget("w", size=1),
                                    patch_type="apply")
    assert code == 201, body
    code, body, _ = await api.patch(f"{WIDGETS}/w?fieldManager=me", widget("w", size=2),
                                    patch_type="apply")
    assert code == 200 and body["spec"] == {"size": 2}


async def test_widget_table_uses_printer_columns(crd_api: InProcessApi) -> None:
    api = crd_api
    await created(api, WIDGETS, widget("w", size=3, color="blue"))
    code, body, _ = await api.get(WIDGETS, headers={"Accept": TABLE})
    assert code == 200
    assert [c["name"] for c in body["columnDefinitions"]] == ["Name", "Size", "Color", "Age"]
    cells = body["rows"][0]["cells"]
    assert cells[:3] == ["w", 3, "blue"]
    assert body["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


async def test_widget_wrong_kind(crd_api: InProcessApi) -> None:
    code, body, _ = await crd_api.post(WIDGETS, {"apiVersion": "example.com/v1",
                                                 "kind": "Gadget", "metadata": {"name": "g"}})
    assert code == 400
    assert body["reason"] == "BadRequest"


async def test_deleting_the_crd_removes_the_resource(crd_api: InProcessApi) -> None:
    api = crd_api
    await created(api, WIDGETS, widget("w"))
    code, _, _ = await api.delete(f"{CRDS}/widgets.example.com")
    assert code == 200
    for _ in range(50):
        code, groups, _ = await api.get("/apis")
        if not any(g["name"] == "example.com" for g in groups["groups"]):
            break
        await asyncio.sleep(0.02)
    assert not any(g["name"] == "example.com" for g in groups["groups"])
    code, _, _ = await api.get("/apis/example.com/v1")
    assert code == 404
    code, _, _ = await api.get(WIDGETS)
    assert code == 404


async def test_recreated_crd_does_not_resurrect_old_objects(crd_api: InProcessApi) -> None:
    # Kubernetes deletes every custom resource before the CRD goes away.
    api = crd_api
    await created(api, WIDGETS, widget("old"))
    await api.delete(f"{CRDS}/widgets.example.com")
    for _ in range(50):
        code, _, _ = await api.get(f"{CRDS}/widgets.example.com")
        if code == 404:
            break
        await asyncio.sleep(0.02)
    await created(api, CRDS, widget_crd())
    await established(api)
    code, lst, _ = await api.get(WIDGETS)
    assert code == 200
    assert lst["items"] == []


# ---- built-in unstructured kinds --------------------------------------------------------------


async def test_virtual_service_served_at_several_versions(api: InProcessApi) -> None:
    vs = {"apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
          "metadata": {"name": "reviews"},
          "spec": {"hosts": ["reviews"], "http": [{"route": [
              {"destination": {"host": "reviews", "subset": "v1"}, "weight": 100}]}],
              "futureField": {"kept": True}}}
    path = "/apis/networking.istio.io/{}/namespaces/default/virtualservices"
    obj = await created(api, path.format("v1alpha3"), vs)
    assert obj["apiVersion"] == "networking.istio.io/v1alpha3"
    code, got, _ = await api.get(path.format("v1") + "/reviews")
    assert code == 200
    assert got["apiVersion"] == "networking.istio.io/v1"
    assert got["metadata"]["uid"] == obj["metadata"]["uid"]
    assert got["spec"] == vs["spec"]
    code, lst, _ = await api.get(path.format("v1beta1"))
    assert [o["apiVersion"] for o in lst["items"]] == ["networking.istio.io/v1beta1"]


async def test_kong_ingress_top_level_fields_kept(api: InProcessApi) -> None:
    ki = {"apiVersion": "configuration.konghq.com/v1", "kind": "KongIngress",
          "metadata": {"name": "retry"},
          "proxy": {"retries": 10, "connect_timeout": 5000},
          "route": {"strip_path": True}}
    path = "/apis/configuration.konghq.com/v1/namespaces/default/kongingresses"
    obj = await created(api, path, ki)
    assert obj["proxy"] == {"retries": 10, "connect_timeout": 5000}
    assert obj["route"] == {"strip_path": True}
    assert "spec" not in obj
    _, got, _ = await api.get(f"{path}/retry")
    assert got["proxy"] == ki["proxy"] and got["route"] == ki["route"]
