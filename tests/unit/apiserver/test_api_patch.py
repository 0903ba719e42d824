"""PATCH in its four flavours through HTTP: strategic merge (kubectl apply's wire format),
JSON merge, JSON patch and server-side apply, with their failure modes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from podnet.testing.apiserver import InProcessApi, running_api
from tests.unit.apiserver.support import (
    CONFIGMAPS,
    DEPLOYMENTS,
    SERVICES,
    configmap,
    created,
    list_rv,
    service,
    status_of,
)


@pytest.fixture
async def api() -> AsyncIterator[InProcessApi]:
    async with running_api() as a:
        yield a


async def test_strategic_merge_kubectl_apply_example(api: InProcessApi) -> None:
    # kubectl-wire.md §3: the patch client-side apply sends for a changed Service.
    svc = service("x", 80, 443)
    svc["spec"]["ports"] = [{"name": "http", "port": 80, "targetPort": 8080},
                            {"name": "https", "port": 443}]
    svc["spec"]["selector"] = {"tier": "be"}
    await created(api, SERVICES, svc)
    patch = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration":
                                     '{"x":1}\n'}, "labels": {"tier": "fe"}},
        "spec": {"$setElementOrder/ports": [{"port": 81}, {"port": 443}],
                 "ports": [{"name": "http", "port": 81, "targetPort": 8080},
                           {"name": "https", "port": 443},
                           {"$patch": "delete", "port": 80}],
                 "selector": {"tier": "fe"}},
    }
    code, body, _ = await api.patch(f"{SERVICES}/x?fieldManager=kubectl-client-side-apply"
                                    "&fieldValidation=Strict", patch, patch_type="strategic")
    assert code == 200, body
    assert body["spec"]["ports"] == [
        {"name": "http", "port": 81, "protocol": "TCP", "targetPort": 8080},
        {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443},
    ]
    assert body["spec"]["selector"] == {"tier": "fe"}
    assert body["metadata"]["labels"] == {"tier": "fe"}
    assert body["metadata"]["annotations"][
        "kubectl.kubernetes.io/last-applied-configuration"] == '{"x":1}\n'


async def test_strategic_merge_containers_by_name(api: InProcessApi) -> None:
    dep = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [
                     {"name": "one", "image": "busybox", "env": [{"name": "A", "value": "1"}]},
                     {"name": "two", "image": "nginx"}]}}},
    }
    await created(api, DEPLOYMENTS, dep)
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "one", "env": [{"name": "B", "value": "2"}]}]}}}}
    code, body, _ = await api.patch(f"{DEPLOYMENTS}/d", patch, patch_type="strategic")
    assert code == 200, body
    containers = body["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["one", "two"]
    assert containers[0]["image"] == "busybox"
    assert containers[0]["env"] == [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]


async def test_json_merge_patch(api: InProcessApi) -> None:
    await created(api, CONFIGMAPS, configmap("x", a="1", b="2"))
    code, body, _ = await api.patch(f"{CONFIGMAPS}/x", {"data": {"a": None, "c": "3"},
                                                       "metadata": {"labels": {"l": "v"}}})
    assert code == 200, body
    assert body["data"] == {"b": "2", "c": "3"}
    assert body["metadata"]["labels"] == {"l": "v"}


async def test_merge_patch_that_deletes_metadata_keeps_the_object_s_own(
        api: InProcessApi) -> None:
    obj = await created(api, CONFIGMAPS, configmap("x", a="1"))
    code, body, _ = await api.patch(f"{CONFIGMAPS}/x", {"metadata": None, "data": {"a": "2"}})
    assert code == 200, body
    assert body["data"] == {"a": "2"}
    assert body["metadata"]["uid"] == obj["metadata"]["uid"]
    assert body["metadata"]["name"] == "x"


async def test_merge_patch_replaces_lists(api: InProcessApi) -> None:
    svc = service("x", 80, 81)
    svc["spec"]["ports"][0]["name"] = "a"
    svc["spec"]["ports"][1]["name"] = "b"
    await created(api, SERVICES, svc)
    code, body, _ = await api.patch(f"{SERVICES}/x", {"spec": {"ports": [{"port": 90}]}})
    assert code == 200, body
    assert body["spec"]["ports"] == [{"port": 90, "protocol": "TCP", "targetPort": 90}]


async def test_merge_patch_with_stale_resource_version(api: InProcessApi) -> None:
    obj = await created(api, CONFIGMAPS, configmap("x"))
    await api.patch(f"{CONFIGMAPS}/x", {"data": {"a": "1"}})
    code, body, _ = await api.patch(f"{CONFIGMAPS}/x", {"metadata": {
        "resourceVersion": obj["metadata"]["resourceVersion"]}, "data": {"a": "2"}})
    assert code == 409
    assert status_of(body)[0] == "Conflict"


async def test_json_patch(api: InProcessApi) -> None:
    await created(api, CONFIGMAPS, configmap("x", a="1"))
    ops = [{"op": "add", "path": "/data/b", "value": "2"},
           {"op": "replace", "path": "/data/a", "value": "9"},
           {"op": "test", "path": "/data/b", "value": "2"}]
    code, body, _ = await api.patch(f"{CONFIGMAPS}/x", ops, patch_type="json")
    assert code == 200, body
    assert body["data"] == {"a": "9", "b": "2"}


async def test_json_patch_failing_test_op(api: InProcessApi) -> None:
    await created(api, CONFIGMAPS, configmap("x", a="1"))
    before = await list_rv(api, CONFIGMAPS)
    ops = [{"op": "test", "path": "/data/a", "value": "2"},
           {"op": "replace", "path": "/data/a", "value": "3"}]
    code, body, _ = await api.patch(f"{CONFIGMAPS}/x", ops, patch_type="json")
    assert code == 422
    assert status_of(body) == ("Invalid", "the server rejected our request due to an error in "
                                          "our request")
    assert await list_rv(api, CONFIGMAPS) == before


async def test_json_patch_missing_path(api: InProcessApi) -> None:
    await created(api, CONFIGMAPS, configmap("x", a="1"))
    code, body, _ = await api.patch(f"{CONFIGMAPS}/x",
                                    [{"op": "remove", "path": "/data/nope"}], patch_type="json")
    assert code == 422
    assert body["reason"] == "Invalid"


async def test_json_patch_body_must_be_a_list(api: InProcessApi) -> None:
    await created(api, CONFIGMAPS, configmap("x"))
    code, body, _ = await api.patch(f"{CONFIGMAPS}/x", {"op": "add"}, patch_type="json")
    assert code == 400
    assert body["reason"] == "BadRequest"


async def test_unknown_patch_content_type(api: InProcessApi) -> None:
    await created(api, CONFIGMAPS, configmap("x"))
    code, body, _ = await api.call("PATCH", f"{CONFIGMAPS}/x", {"data": {}},
                                   content_type="text/plain")
    assert code == 415
    assert body["reason"] == "UnsupportedMediaType"


async def test_patch_with_strict_unknown_field(api: InProcessApi) -> None:
    await created(api, SERVICES, service("x"))
    before = await list_rv(api, SERVICES)
    code, body, _ = await api.patch(f"{SERVICES}/x?fieldValidation=Strict",
                                    {"spec": {"foo": 1}})
    assert code == 400
    assert status_of(body) == ("BadRequest", 'strict decoding error: unknown field "spec.foo"')
    assert await list_rv(api, SERVICES) == before


async def test_patch_with_ignore_drops_unknown_field(api: InProcessApi) -> None:
    await created(api, SERVICES, service("x"))
    code, body, _ = await api.patch(f"{SERVICES}/x?fieldValidation=Ignore",
                                    {"spec": {"foo": 1}, "metadata": {"labels": {"a": "b"}}},
                                    patch_type="strategic")
    assert code == 200, body
    assert "foo" not in body["spec"]
    assert body["metadata"]["labels"] == {"a": "b"}


async def test_patch_reapplies_defaults(api: InProcessApi) -> None:
    await created(api, SERVICES, service("x"))
    code, body, _ = await api.patch(f"{SERVICES}/x", {"spec": {"ports": [
        {"port": 80}, {"port": 81, "name": "b"}]}}, patch_type="merge")
    assert code == 422  # two ports need names
    code, body, _ = await api.patch(f"{SERVICES}/x", {"spec": {"ports": [
        {"name": "a", "port": 80}, {"port": 81, "name": "b"}]}}, patch_type="merge")
    assert code == 200, body
    assert [p["protocol"] for p in body["spec"]["ports"]] == ["TCP", "TCP"]
    assert body["spec"]["ports"][1]["targetPort"] == 81


# ---- server-side apply -----------------------------------------------------------------------


def applied_cm(**data: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},
            "data": dict(data)}


async def test_apply_creates_then_updates(api: InProcessApi) -> None:
    code, body, _ = await api.patch(f"{CONFIGMAPS}/x?fieldManager=alice",
                                    applied_cm(a="1"), patch_type="apply")
    assert code == 201, body
    assert body["data"] == {"a": "1"}
    managers = body["metadata"]["managedFields"]
    assert [(m["manager"], m["operation"]) for m in managers] == [("alice", "Apply")]
    assert managers[0]["fieldsV1"] == {"f:data": {"f:a": {}}}
    code, body, _ = await api.patch(f"{CONFIGMAPS}/x?fieldManager=alice",
                                    applied_cm(a="2", b="3"), patch_type="apply")
    assert code == 200, body
    assert body["data"] == {"a": "2", "b": "3"}
    # Fields alice no longer applies are removed.
    code, body, _ = await api.patch(f"{CONFIGMAPS}/x?fieldManager=alice",
                                    applied_cm(b="3"), patch_type="apply")
    assert code == 200
    assert body["data"] == {"b": "3"}


async def test_apply_conflict_between_managers(api: InProcessApi) -> None:
    code, _, _ = await api.patch(f"{CONFIGMAPS}/x?fieldManager=alice", applied_cm(a="1"),
                                 patch_type="apply")
    assert code == 201
    code, body, _ = await api.patch(f"{CONFIGMAPS}/x?fieldManager=bob", applied_cm(a="2"),
                                    patch_type="apply")
    assert code == 409
    reason, message = status_of(body)
    assert reason == "Conflict"
    assert message == 'Apply failed with 1 conflict: conflict with "alice": .data.a'
    assert body["details"]["causes"] == [{"reason": "FieldManagerConflict",
                                          "message": 'conflict with "alice"',
                                          "field": ".data.a"}]
    # Same value is shared, not a conflict.
    code, body, _ = await api.patch(f"{CONFIGMAPS}/x?fieldManager=bob", applied_cm(a="1"),
                                    patch_type="apply")
    assert code == 200, body
    # force=true takes the field.
    code, body, _ = await api.patch(f"{CONFIGMAPS}/x?fieldManager=bob&force=true",
                                    applied_cm(a="2"), patch_type="apply")
    assert code == 200, body
    assert body["data"] == {"a": "2"}


async def test_apply_needs_field_manager(api: InProcessApi) -> None:
    code, body, _ = await api.patch(f"{CONFIGMAPS}/x", applied_cm(a="1"), patch_type="apply")
    assert code == 400
    assert status_of(body) == (
        "BadRequest", "PATCH, application/apply-patch+yaml requests must have a fieldManager "
                      "query parameter")


async def test_apply_strict_unknown_field(api: InProcessApi) -> None:
    obj = applied_cm(a="1")
    obj["bogus"] = 1
    code, body, _ = await api.patch(f"{CONFIGMAPS}/x?fieldManager=a&fieldValidation=Strict",
                                    obj, patch_type="apply")
    assert code == 400
    assert status_of(body) == ("BadRequest", 'strict decoding error: unknown field "bogus"')
    code, _, _ = await api.get(f"{CONFIGMAPS}/x")
    assert code == 404


async def test_apply_yaml_body(api: InProcessApi) -> None:
    yaml_body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  k: v\n"
    code, body, _ = await api.call("PATCH", f"{CONFIGMAPS}/x?fieldManager=y", raw=yaml_body,
                                   content_type="application/apply-patch+yaml")
    assert code == 201, body
    assert body["data"] == {"k": "v"}


# ---- a clean patch is checked instead of its result -------------------------------------


@pytest.mark.parametrize("patch_type", ["merge", "strategic"])
async def test_patch_with_a_wrong_type_gets_gos_message_and_changes_nothing(
        api: InProcessApi, patch_type: str) -> None:
    await created(api, SERVICES, service("x"))
    before = await list_rv(api, SERVICES)
    code, body, _ = await api.patch(f"{SERVICES}/x", {"spec": {"ports": [{"port": "eighty"}]}},
                                    patch_type=patch_type)
    assert code == 400
    assert status_of(body) == (
        "BadRequest", 'Service in version "v1" cannot be handled as a Service: json: cannot '
        "unmarshal string into Go struct field ServicePort.spec.ports.port of type int32")
    assert await list_rv(api, SERVICES) == before


def test_patch_is_clean_only_for_known_fields_of_the_right_type() -> None:
    from podnet.api.resources import Registry
    from podnet.apiserver.semantics import patch_is_clean

    reg = Registry.builtin()
    pods = reg.get("", "v1", "pods")
    assert pods is not None
    status = {"status": {"phase": "Running", "podIP": "10.244.0.5",
                         "conditions": [{"type": "Ready", "status": "True",
                                         "lastProbeTime": None}]}}
    assert patch_is_clean(pods, status)
    # Directives are not fields; null deletes and is always accepted.
    assert patch_is_clean(pods, {"spec": {"$setElementOrder/containers": [{"name": "a"}],
                                          "containers": [{"name": "a", "$patch": "delete"}]},
                                 "metadata": {"labels": {"a": None}}})
    assert not patch_is_clean(pods, {"status": {"podIP": 5}})
    assert not patch_is_clean(pods, {"status": {"bogus": "x"}})
    assert not patch_is_clean(pods, {"spec": {"bogus": None}})  # checked as a result
    crd_like = reg.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    assert crd_like is not None and patch_is_clean(crd_like, {"metadata": {"labels": {}}})
