"""Server-side apply and managedFields, written as a user's sequence of writes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from podnet.api.apply import fields_of, path_string, record_update, server_side_apply
from podnet.api.errors import StatusError
from podnet.api.schema import for_kind

SVC = for_kind("", "v1", "Service")
DEPLOY = for_kind("apps", "v1", "Deployment")
PORT80 = 'k:{"port":80,"protocol":"TCP"}'


def service(labels: dict[str, str] | None = None, ports: list[dict[str, Any]] | None = None,
            **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web", "namespace": "default"}
    if labels is not None:
        meta["labels"] = labels
    body: dict[str, Any] = {"selector": {"app": "web"}, **spec}
    if ports is not None:
        body["ports"] = ports
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": body}


def managed(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """manager/operation -> entry, for readable assertions."""
    return {f'{e["manager"]}/{e["operation"]}': e for e in obj["metadata"]["managedFields"]}


def without_managed(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"].pop("managedFields", None)
    return out


def test_fields_of_uses_list_map_keys_and_leaves_atomic_maps() -> None:
    cfg = service(labels={"app": "web"}, ports=[{"port": 80, "targetPort": 8080}])
    assert fields_of(cfg, SVC) == {
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {"f:ports": {PORT80: {".": {}, "f:port": {}, "f:targetPort": {}}},
                   "f:selector": {}},
    }


def test_fields_of_sets_and_schemaless() -> None:
    pod = {"metadata": {"finalizers": ["a", "b"]}}
    assert fields_of(pod, for_kind("", "v1", "Pod")) == {
        "f:metadata": {"f:finalizers": {'v:"a"': {}, 'v:"b"': {}}}}
    widget = {"spec": {"size": 1, "tags": ["x"], "nested": {"a": 1}}}
    assert fields_of(widget, None) == {"f:spec": {".": {}, "f:nested": {".": {}, "f:a": {}},
                                                  "f:size": {}, "f:tags": {}}}


def test_path_string() -> None:
    assert path_string(("f:spec", "f:ports", PORT80, "f:targetPort")) == (
        '.spec.ports[port=80,protocol="TCP"].targetPort')
    assert path_string(("f:metadata", "f:finalizers", 'v:"a"')) == '.metadata.finalizers[="a"]'


def test_apply_creates() -> None:
    cfg = service(labels={"app": "web"}, ports=[{"port": 80, "targetPort": 8080}])
    obj = server_side_apply(None, cfg, "kubectl", False, SVC, "2025-01-01T00:00:00Z")
    assert without_managed(obj) == cfg
    assert obj["metadata"]["managedFields"] == [{
        "manager": "kubectl", "operation": "Apply", "apiVersion": "v1",
        "time": "2025-01-01T00:00:00Z", "fieldsType": "FieldsV1",
        "fieldsV1": fields_of(cfg, SVC),
    }]
    assert cfg == service(labels={"app": "web"}, ports=[{"port": 80, "targetPort": 8080}])


def test_reapply_unchanged_changes_nothing() -> None:
    cfg = service(ports=[{"port": 80}])
    first = server_side_apply(None, cfg, "kubectl", False, SVC, "T1")
    again = server_side_apply(first, cfg, "kubectl", False, SVC, "T2")
    assert again == first  # not even the time


def test_leaving_a_field_out_removes_it() -> None:
    first = server_side_apply(
        None, service(labels={"app": "web", "tier": "fe"}, ports=[{"port": 80}, {"port": 81}]),
        "kubectl", False, SVC, "T1")
    second = server_side_apply(
        first, service(labels={"app": "web"}, ports=[{"port": 81}]), "kubectl", False, SVC, "T2")
    assert without_managed(second) == service(labels={"app": "web"}, ports=[{"port": 81}])
    third = server_side_apply(second, service(ports=[{"port": 81}]), "kubectl", False, SVC, "T3")
    assert "labels" not in third["metadata"]  # emptied map goes, as Go's omitempty does
    assert managed(third)["kubectl/Apply"]["time"] == "T3"


def test_fields_set_by_others_survive_pruning() -> None:
    first = server_side_apply(None, service(ports=[{"port": 80}]), "kubectl", False, SVC, "T1")
    # A controller fills in clusterIP with an ordinary update.
    live = copy.deepcopy(first)
    live["spec"]["clusterIP"] = "10.96.0.10"
    live = record_update(first, live, "controller", SVC, "T2")
    again = server_side_apply(live, service(ports=[{"port": 80}]), "kubectl", False, SVC, "T3")
    assert again["spec"]["clusterIP"] == "10.96.0.10"


def client_side_created() -> dict[str, Any]:
    """What `kubectl apply` (client-side) leaves: targetPort 9090 owned by its Update."""
    live = service(ports=[{"port": 80, "protocol": "TCP", "targetPort": 9090}], type="ClusterIP")
    return record_update(None, live, "kubectl-client-side-apply", SVC, "T0")


def test_update_records_what_it_set() -> None:
    entry = managed(client_side_created())["kubectl-client-side-apply/Update"]
    assert entry["time"] == "T0" and entry["apiVersion"] == "v1"
    assert entry["fieldsV1"] == {"f:spec": {
        "f:ports": {".": {}, PORT80: {".": {}, "f:port": {}, "f:protocol": {},
                                      "f:targetPort": {}}},
        "f:selector": {}, "f:type": {}}}


def test_conflict_with_an_updater() -> None:
    cfg = service(ports=[{"port": 80, "targetPort": 8080}])
    with pytest.raises(StatusError) as err:
        server_side_apply(client_side_created(), cfg, "kubectl", False, SVC, "T1")
    status = err.value.to_status()
    assert (status["code"], status["reason"]) == (409, "Conflict")
    assert status["message"] == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: '
        '.spec.ports[port=80,protocol="TCP"].targetPort')
    assert status["details"]["causes"] == [{
        "reason": "FieldManagerConflict",
        "message": 'conflict with "kubectl-client-side-apply" using v1',
        "field": '.spec.ports[port=80,protocol="TCP"].targetPort',
    }]


def test_several_conflicts_are_listed() -> None:
    cfg = service(ports=[{"port": 80, "targetPort": 8080}], type="NodePort")
    cfg["spec"]["selector"] = {"app": "other"}
    with pytest.raises(StatusError) as err:
        server_side_apply(client_side_created(), cfg, "kubectl", False, SVC, "T1")
    assert err.value.message == (
        'Apply failed with 3 conflicts: conflicts with "kubectl-client-side-apply" using v1:\n'
        "- .spec.selector\n"
        "- .spec.type\n"
        '- .spec.ports[port=80,protocol="TCP"].targetPort')


def test_force_takes_the_fields() -> None:
    cfg = service(ports=[{"port": 80, "targetPort": 8080}])
    obj = server_side_apply(client_side_created(), cfg, "kubectl", True, SVC, "T1")
    assert obj["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 8080}]
    entries = managed(obj)
    assert list(entries) == ["kubectl/Apply", "kubectl-client-side-apply/Update"]
    old = entries["kubectl-client-side-apply/Update"]["fieldsV1"]["f:spec"]["f:ports"][PORT80]
    assert "f:targetPort" not in old and "f:port" in old  # same value: shared, not taken


def test_same_value_is_shared_without_conflict() -> None:
    a = server_side_apply(None, service(labels={"team": "x"}), "alice", False, SVC, "T1")
    b = server_side_apply(a, service(labels={"team": "x", "b": "1"}), "bob", False, SVC, "T2")
    assert b["metadata"]["labels"] == {"team": "x", "b": "1"}
    assert "f:team" in managed(b)["alice/Apply"]["fieldsV1"]["f:metadata"]["f:labels"]
    assert "f:team" in managed(b)["bob/Apply"]["fieldsV1"]["f:metadata"]["f:labels"]
    # alice drops the label from her config: bob still owns it, so it stays
    c = server_side_apply(b, service(), "alice", False, SVC, "T3")
    assert c["metadata"]["labels"] == {"team": "x", "b": "1"}
    # bob drops it too: now nobody owns it and it goes
    d = server_side_apply(c, service(labels={"b": "1"}), "bob", False, SVC, "T4")
    assert d["metadata"]["labels"] == {"b": "1"}
    with pytest.raises(StatusError):  # and a differing value is a conflict
        server_side_apply(d, service(labels={"b": "2"}), "alice", False, SVC, "T5")


def test_update_takes_fields_from_an_applier() -> None:
    applied = server_side_apply(None, service(labels={"a": "1"}), "kubectl", False, SVC, "T1")
    edited = copy.deepcopy(applied)
    edited["metadata"]["labels"]["a"] = "2"
    after = record_update(applied, edited, "kubectl-edit", SVC, "T2")
    entries = managed(after)
    assert entries["kubectl/Apply"]["fieldsV1"] == {"f:spec": {"f:selector": {}}}  # label moved
    assert entries["kubectl-edit/Update"]["fieldsV1"] == {"f:metadata": {"f:labels": {"f:a": {}}}}
    with pytest.raises(StatusError, match='conflict with "kubectl-edit" using v1'):
        server_side_apply(after, service(labels={"a": "1"}), "kubectl", False, SVC, "T3")


def test_apply_on_an_unowned_object_sees_before_first_apply() -> None:
    live = service(type="ClusterIP")
    with pytest.raises(StatusError, match=r'"before-first-apply" using v1: \.spec\.type'):
        server_side_apply(live, service(type="NodePort"), "kubectl", False, SVC, "T1")


def test_associative_list_order_follows_the_config() -> None:
    live = server_side_apply(None, service(ports=[{"port": 80}, {"port": 81}]),
                             "a", False, SVC, "T1")
    obj = server_side_apply(live, service(ports=[{"port": 82}, {"port": 81}, {"port": 80}]),
                            "a", False, SVC, "T2")
    assert [p["port"] for p in obj["spec"]["ports"]] == [82, 81, 80]


def test_deployment_containers_by_name() -> None:
    def deploy(image: str, env: list[dict[str, str]]) -> dict[str, Any]:
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                "spec": {"template": {"spec": {"containers": [
                    {"name": "app", "image": image, "env": env}]}}}}

    first = server_side_apply(None, deploy("v1", [{"name": "A", "value": "1"}]),
                              "kubectl", False, DEPLOY, "T1")
    second = server_side_apply(first, deploy("v2", [{"name": "B", "value": "2"}]),
                               "kubectl", False, DEPLOY, "T2")
    assert second["spec"]["template"]["spec"]["containers"] == [
        {"name": "app", "image": "v2", "env": [{"name": "B", "value": "2"}]}]
    fields = managed(second)["kubectl/Apply"]["fieldsV1"]
    assert fields["f:spec"]["f:template"]["f:spec"]["f:containers"] == {'k:{"name":"app"}': {
        ".": {}, "f:env": {'k:{"name":"B"}': {".": {}, "f:name": {}, "f:value": {}}},
        "f:image": {}, "f:name": {}}}


def test_schemaless_maps_granular_lists_atomic() -> None:
    def widget(**spec: Any) -> dict[str, Any]:
        return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
                "spec": spec}

    a = server_side_apply(None, widget(size=1, tags=["x"]), "a", False, None, "T1")
    b = server_side_apply(a, widget(color="red"), "b", False, None, "T2")
    assert b["spec"] == {"size": 1, "tags": ["x"], "color": "red"}
    with pytest.raises(StatusError, match=r'conflict with "a": \.spec\.tags'):
        server_side_apply(b, widget(tags=["y"]), "b", False, None, "T3")


def test_status_is_not_owned_through_the_main_resource() -> None:
    obj = service()
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
    created = record_update(None, obj, "kubectl-create", SVC, "T1")
    assert "f:status" not in managed(created)["kubectl-create/Update"]["fieldsV1"]
    status = record_update(created, created, "kubelet", SVC, "T2", subresource="status")
    assert [e["manager"] for e in status["metadata"]["managedFields"]] == ["kubectl-create"]


@pytest.mark.parametrize(
    ("sent", "managers"),
    [
        (None, ["kubectl-create", "kubectl-edit"]),   # absent: stored ones kept
        ([], ["kubectl-edit"]),                          # empty list resets
        ([{}], ["kubectl-edit"]),                        # one empty entry resets
    ],
)
def test_client_sent_managed_fields(sent: Any, managers: list[str]) -> None:
    created = record_update(None, service(), "kubectl-create", SVC, "T1")
    new = copy.deepcopy(created)
    new["spec"]["type"] = "NodePort"
    if sent is None:
        new["metadata"].pop("managedFields")
    else:
        new["metadata"]["managedFields"] = sent
    after = record_update(created, new, "kubectl-edit", SVC, "T2")
    assert [e["manager"] for e in after["metadata"]["managedFields"]] == managers
