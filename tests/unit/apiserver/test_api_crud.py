"""CRUD through HTTP as Kubernetes 1.32 answers it: metadata the server sets, errors with
their exact reason and message, optimistic concurrency, generation, the status
subresource, namespace checks, chunked lists, selectors, Tables and field validation."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from podnet.testing.apiserver import InProcessApi, running_api
from tests.unit.apiserver.support import (
    CLUSTERROLES,
    CONFIGMAPS,
    DEPLOYMENTS,
    PODS,
    SERVICES,
    TABLE,
    configmap,
    created,
    deployment,
    list_rv,
    names,
    pod,
    service,
    status_of,
)

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
async def api() -> AsyncIterator[InProcessApi]:
    async with running_api() as a:
        yield a


# ---- create / get / list / update / delete ---------------------------------------------


async def test_configmap_crud_sets_server_metadata(api: InProcessApi) -> None:
    obj = await created(api, CONFIGMAPS, configmap("x", a="1"))
    meta = obj["metadata"]
    assert re.fullmatch(r"[0-9a-f-]{36}", meta["uid"])
    assert RFC3339.match(meta["creationTimestamp"])
    assert int(meta["resourceVersion"]) > 0
    assert meta["namespace"] == "default"
    assert "generation" not in meta  # ConfigMaps have no generation in Kubernetes

    code, got, _ = await api.get(f"{CONFIGMAPS}/x")
    assert code == 200 and got["data"] == {"a": "1"} and got["metadata"]["uid"] == meta["uid"]
    assert got["kind"] == "ConfigMap" and got["apiVersion"] == "v1"

    got["data"] = {"a": "2"}
    code, upd, _ = await api.put(f"{CONFIGMAPS}/x", got)
    assert code == 200, upd
    assert upd["data"] == {"a": "2"}
    assert int(upd["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    assert upd["metadata"]["uid"] == meta["uid"]
    assert upd["metadata"]["creationTimestamp"] == meta["creationTimestamp"]

    code, lst, _ = await api.get(CONFIGMAPS)
    assert code == 200 and lst["kind"] == "ConfigMapList" and lst["apiVersion"] == "v1"
    assert [o["metadata"]["name"] for o in lst["items"]] == ["x"]

    code, gone, _ = await api.delete(f"{CONFIGMAPS}/x")
    assert code == 200
    assert gone["kind"] == "Status" and gone["status"] == "Success"
    assert gone["details"] == {"name": "x", "kind": "configmaps", "uid": meta["uid"]}
    code, _, _ = await api.get(f"{CONFIGMAPS}/x")
    assert code == 404


async def test_system_fields_in_the_request_are_ignored(api: InProcessApi) -> None:
    cm = configmap("sys")
    cm["metadata"].update({"uid": "not-a-uid", "resourceVersion": "999999",
                           "creationTimestamp": "2000-01-01T00:00:00Z"})
    obj = await created(api, CONFIGMAPS, cm)
    assert obj["metadata"]["uid"] != "not-a-uid"
    assert obj["metadata"]["creationTimestamp"] != "2000-01-01T00:00:00Z"
    assert obj["metadata"]["resourceVersion"] != "999999"


async def test_service_crud(api: InProcessApi) -> None:
    obj = await created(api, SERVICES, service("web", 80))
    assert obj["spec"]["clusterIP"]
    obj["spec"]["ports"].append({"name": "b", "port": 81})
    obj["spec"]["ports"][0]["name"] = "a"
    code, upd, _ = await api.put(f"{SERVICES}/web", obj)
    assert code == 200, upd
    assert [p["port"] for p in upd["spec"]["ports"]] == [80, 81]
    assert upd["spec"]["clusterIP"] == obj["spec"]["clusterIP"]
    assert await names(api, SERVICES) == ["web"]
    code, _, _ = await api.delete(f"{SERVICES}/web")
    assert code == 200
    assert await names(api, SERVICES) == []


async def test_deployment_crud_and_generation(api: InProcessApi) -> None:
    obj = await created(api, DEPLOYMENTS, deployment("d"))
    assert obj["metadata"]["generation"] == 1
    # Defaults Kubernetes applies to a Deployment.
    assert obj["spec"]["strategy"]["type"] == "RollingUpdate"
    assert obj["spec"]["revisionHistoryLimit"] == 10
    assert obj["spec"]["progressDeadlineSeconds"] == 600

    # A label change is not a spec change: generation stays.
    obj["metadata"]["labels"] = {"tier": "web"}
    code, upd, _ = await api.put(f"{DEPLOYMENTS}/d", obj)
    assert code == 200, upd
    assert upd["metadata"]["generation"] == 1

    upd["spec"]["replicas"] = 3
    code, upd2, _ = await api.put(f"{DEPLOYMENTS}/d", upd)
    assert code == 200, upd2
    assert upd2["metadata"]["generation"] == 2

    # A status write never bumps generation.
    upd2["status"] = {"replicas": 3, "observedGeneration": 2}
    code, st, _ = await api.put(f"{DEPLOYMENTS}/d/status", upd2)
    assert code == 200, st
    assert st["metadata"]["generation"] == 2
    assert st["status"]["replicas"] == 3

    code, gone, _ = await api.delete(f"{DEPLOYMENTS}/d")
    assert code == 200
    assert gone["kind"] == "Status"
    assert gone["details"]["group"] == "apps" and gone["details"]["kind"] == "deployments"


async def test_clusterrole_is_cluster_scoped(api: InProcessApi) -> None:
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "reader-x"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}
    obj = await created(api, CLUSTERROLES, role)
    assert "namespace" not in obj["metadata"]
    code, got, _ = await api.get(f"{CLUSTERROLES}/reader-x")
    assert code == 200 and got["rules"][0]["resources"] == ["pods"]
    got["rules"][0]["verbs"] = ["get", "list"]
    code, upd, _ = await api.put(f"{CLUSTERROLES}/reader-x", got)
    assert code == 200 and upd["rules"][0]["verbs"] == ["get", "list"]
    assert "reader-x" in await names(api, CLUSTERROLES)
    code, _, _ = await api.delete(f"{CLUSTERROLES}/reader-x")
    assert code == 200
    code, body, _ = await api.get(f"{CLUSTERROLES}/reader-x")
    assert code == 404
    assert status_of(body) == (
        "NotFound", 'clusterroles.rbac.authorization.k8s.io "reader-x" not found')


async def test_generate_name(api: InProcessApi) -> None:
    a = await created(api, CONFIGMAPS, {"metadata": {"generateName": "gen-"}})
    b = await created(api, CONFIGMAPS, {"metadata": {"generateName": "gen-"}})
    for obj in (a, b):
        assert re.fullmatch(r"gen-[a-z0-9]{5}", obj["metadata"]["name"])
        assert obj["metadata"]["generateName"] == "gen-"
    assert a["metadata"]["name"] != b["metadata"]["name"]


async def test_create_without_name_is_invalid(api: InProcessApi) -> None:
    code, body, _ = await api.post(CONFIGMAPS, {"metadata": {}})
    assert code == 422
    assert status_of(body) == (
        "Invalid", 'ConfigMap "" is invalid: metadata.name: Required value: name or '
                   "generateName is required")


# ---- errors with Kubernetes' words ---------------------------------------------------------


async def test_already_exists(api: InProcessApi) -> None:
    await created(api, CONFIGMAPS, configmap("x"))
    code, body, _ = await api.post(CONFIGMAPS, configmap("x"))
    assert code == 409
    assert status_of(body) == ("AlreadyExists", 'configmaps "x" already exists')
    assert body["details"] == {"name": "x", "kind": "configmaps"}


async def test_not_found_core_and_grouped(api: InProcessApi) -> None:
    code, body, _ = await api.get(f"{CONFIGMAPS}/x")
    assert code == 404
    assert status_of(body) == ("NotFound", 'configmaps "x" not found')
    assert body["details"] == {"name": "x", "kind": "configmaps"}
    code, body, _ = await api.get(f"{DEPLOYMENTS}/x")
    assert code == 404
    assert status_of(body) == ("NotFound", 'deployments.apps "x" not found')
    assert body["details"] == {"name": "x", "group": "apps", "kind": "deployments"}
    for method in ("PUT", "DELETE"):
        code, body, _ = await api.call(method, f"{CONFIGMAPS}/x", configmap("x"))
        assert code == 404, method
        assert status_of(body) == ("NotFound", 'configmaps "x" not found')
    code, body, _ = await api.patch(f"{CONFIGMAPS}/x", {"data": {"a": "b"}})
    assert code == 404
    assert status_of(body) == ("NotFound", 'configmaps "x" not found')


async def test_put_with_stale_resource_version_conflicts(api: InProcessApi) -> None:
    obj = await created(api, CONFIGMAPS, configmap("x", a="1"))
    fresh = dict(obj, data={"a": "2"})
    code, _, _ = await api.put(f"{CONFIGMAPS}/x", fresh)
    assert code == 200
    stale = dict(obj, data={"a": "3"})
    code, body, _ = await api.put(f"{CONFIGMAPS}/x", stale)
    assert code == 409
    assert status_of(body) == (
        "Conflict",
        'Operation cannot be fulfilled on configmaps "x": the object has been modified; '
        "please apply your changes to the latest version and try again")
    code, got, _ = await api.get(f"{CONFIGMAPS}/x")
    assert got["data"] == {"a": "2"}


async def test_put_without_resource_version_is_unconditional(api: InProcessApi) -> None:
    # ConfigMaps allow unconditional update (AllowUnconditionalUpdate is true).
    await created(api, CONFIGMAPS, configmap("x", a="1"))
    code, body, _ = await api.put(f"{CONFIGMAPS}/x", configmap("x", a="9"))
    assert code == 200, body
    assert body["data"] == {"a": "9"}


async def test_put_name_mismatch_is_bad_request(api: InProcessApi) -> None:
    await created(api, CONFIGMAPS, configmap("x"))
    code, body, _ = await api.put(f"{CONFIGMAPS}/x", configmap("y"))
    assert code == 400
    assert status_of(body) == (
        "BadRequest", "the name of the object (y) does not match the name on the URL (x)")


async def test_status_subresource_separation(api: InProcessApi) -> None:
    obj = await created(api, DEPLOYMENTS, deployment("d"))
    # PUT on the main resource ignores status.
    obj["status"] = {"replicas": 7}
    obj["spec"]["replicas"] = 2
    code, upd, _ = await api.put(f"{DEPLOYMENTS}/d", obj)
    assert code == 200, upd
    assert upd["spec"]["replicas"] == 2
    assert (upd.get("status") or {}).get("replicas") is None
    # PUT on /status ignores spec.
    upd["status"] = {"replicas": 5}
    upd["spec"]["replicas"] = 9
    code, st, _ = await api.put(f"{DEPLOYMENTS}/d/status", upd)
    assert code == 200, st
    assert st["status"]["replicas"] == 5
    assert st["spec"]["replicas"] == 2
    code, got, _ = await api.get(f"{DEPLOYMENTS}/d/status")
    assert code == 200 and got["kind"] == "Deployment" and got["status"]["replicas"] == 5
    # Merge patch through /status likewise only touches status.
    code, p, _ = await api.patch(f"{DEPLOYMENTS}/d/status",
                                 {"spec": {"replicas": 4}, "status": {"readyReplicas": 1}})
    assert code == 200, p
    assert p["spec"]["replicas"] == 2 and p["status"]["readyReplicas"] == 1


async def test_pod_status_ignored_on_create(api: InProcessApi) -> None:
    obj = await created(api, PODS, pod("p", phase="Running"))
    assert obj["status"]["phase"] == "Pending"


# ---- namespaces ---------------------------------------------------------------------------


async def test_create_in_missing_namespace(api: InProcessApi) -> None:
    code, body, _ = await api.post("/api/v1/namespaces/nope/configmaps", configmap("x"))
    assert code == 404
    assert status_of(body) == ("NotFound", 'namespaces "nope" not found')
    assert body["details"] == {"name": "nope", "kind": "namespaces"}


async def test_namespace_mismatch_between_body_and_url(api: InProcessApi) -> None:
    cm = configmap("x")
    cm["metadata"]["namespace"] = "kube-system"
    before = await list_rv(api, CONFIGMAPS)
    code, body, _ = await api.post(CONFIGMAPS, cm)
    assert code == 400
    assert status_of(body) == (
        "BadRequest",
        "the namespace of the provided object does not match the namespace sent on the "
        "request")
    assert await list_rv(api, CONFIGMAPS) == before


async def test_cross_namespace_list(api: InProcessApi) -> None:
    await created(api, CONFIGMAPS, configmap("a"))
    await created(api, "/api/v1/namespaces/kube-system/configmaps", configmap("b"))
    code, body, _ = await api.get("/api/v1/configmaps")
    assert code == 200
    assert sorted((o["metadata"]["namespace"], o["metadata"]["name"])
                  for o in body["items"]) == [("default", "a"), ("kube-system", "b")]


# ---- list chunking and selectors ------------------------------------------------------------


async def test_list_chunking_returns_everything_once_in_order(api: InProcessApi) -> None:
    for n in ("c", "a", "e", "b", "d"):
        await created(api, CONFIGMAPS, configmap(n))
    seen: list[str] = []
    cont = ""
    pages = 0
    rvs = set()
    while True:
        path = f"{CONFIGMAPS}?limit=2" + (f"&continue={cont}" if cont else "")
        code, body, _ = await api.get(path)
        assert code == 200, body
        pages += 1
        rvs.add(body["metadata"]["resourceVersion"])
        seen += [o["metadata"]["name"] for o in body["items"]]
        cont = body["metadata"].get("continue", "")
        if not cont:
            break
        assert len(body["items"]) == 2
    assert seen == ["a", "b", "c", "d", "e"]
    assert pages == 3
    assert len(rvs) == 1  # every page is a snapshot at the first page's revision


async def test_list_chunks_are_consistent_snapshots(api: InProcessApi) -> None:
    for n in ("a", "b", "c"):
        await created(api, CONFIGMAPS, configmap(n))
    code, body, _ = await api.get(f"{CONFIGMAPS}?limit=2")
    cont = body["metadata"]["continue"]
    await created(api, CONFIGMAPS, configmap("z"))
    await api.delete(f"{CONFIGMAPS}/c")
    code, body, _ = await api.get(f"{CONFIGMAPS}?limit=2&continue={cont}")
    assert code == 200
    assert [o["metadata"]["name"] for o in body["items"]] == ["c"]
    assert "continue" not in body["metadata"]


async def test_bad_continue_token(api: InProcessApi) -> None:
    code, body, _ = await api.get(f"{CONFIGMAPS}?limit=2&continue=garbage!!")
    assert code == 400
    assert body["reason"] == "BadRequest"


async def test_label_selectors(api: InProcessApi) -> None:
    await created(api, CONFIGMAPS, configmap("a", {"app": "web", "tier": "fe"}))
    await created(api, CONFIGMAPS, configmap("b", {"app": "db", "tier": "be"}))
    await created(api, CONFIGMAPS, configmap("c", {"app": "web"}))
    cases = {
        "app=web": ["a", "c"],
        "app==web": ["a", "c"],
        "app!=web": ["b"],
        "app%20in%20(web,db),tier": ["a", "b"],
        "tier%20notin%20(fe)": ["b", "c"],
        "!tier": ["c"],
        "app=web,tier=fe": ["a"],
    }
    for sel, want in cases.items():
        assert await names(api, f"{CONFIGMAPS}?labelSelector={sel}") == want, sel


async def test_field_selectors(api: InProcessApi) -> None:
    await created(api, CONFIGMAPS, configmap("a"))
    await created(api, CONFIGMAPS, configmap("b"))
    assert await names(api, f"{CONFIGMAPS}?fieldSelector=metadata.name%3Db") == ["b"]
    assert await names(api, f"{CONFIGMAPS}?fieldSelector=metadata.name!%3Db") == ["a"]
    assert await names(api, f"{CONFIGMAPS}?fieldSelector=metadata.namespace%3Ddefault") \
        == ["a", "b"]
    await created(api, PODS, pod("p1"))
    await created(api, PODS, pod("p2"))
    code, _, _ = await api.patch(f"{PODS}/p2/status", {"status": {"phase": "Running"}})
    assert code == 200
    assert await names(api, f"{PODS}?fieldSelector=status.phase%3DRunning") == ["p2"]
    assert await names(api, f"{PODS}?fieldSelector=status.phase%3DPending") == ["p1"]
    assert await names(api, f"{PODS}?fieldSelector=spec.nodeName%3D") == ["p1", "p2"]


async def test_field_selector_with_limit(api: InProcessApi) -> None:
    for n in "abcdef":
        await created(api, CONFIGMAPS, configmap(n, {"odd": str(n in "ace").lower()}))
    code, body, _ = await api.get(f"{CONFIGMAPS}?labelSelector=odd%3Dtrue&limit=2")
    assert code == 200
    assert [o["metadata"]["name"] for o in body["items"]] == ["a", "c"]
    cont = body["metadata"]["continue"]
    _, body, _ = await api.get(f"{CONFIGMAPS}?labelSelector=odd%3Dtrue&limit=2"
                                  f"&continue={cont}")
    assert [o["metadata"]["name"] for o in body["items"]] == ["e"]


async def test_bad_selectors(api: InProcessApi) -> None:
    code, body, _ = await api.get(f"{CONFIGMAPS}?labelSelector=a%20in%20b")
    assert code == 400
    assert body["reason"] == "BadRequest"
    code, body, _ = await api.get(f"{CONFIGMAPS}?fieldSelector=spec.foo%3Dbar")
    assert code == 400
    assert status_of(body) == (
        "BadRequest",
        '"spec.foo" is not a known field selector: only "metadata.name", '
        '"metadata.namespace"')
    code, body, _ = await api.get(f"{PODS}?fieldSelector=spec.foo%3Dbar")
    assert code == 400
    assert status_of(body) == ("BadRequest", "field label not supported: spec.foo")


# ---- Tables ---------------------------------------------------------------------------------


async def test_table_list(api: InProcessApi) -> None:
    await created(api, CONFIGMAPS, configmap("a", {"x": "y"}, k="v"))
    code, body, headers = await api.get(CONFIGMAPS, headers={"Accept": TABLE})
    assert code == 200
    assert headers["Content-Type"] == TABLE
    assert body["kind"] == "Table" and body["apiVersion"] == "meta.k8s.io/v1"
    assert body["metadata"]["resourceVersion"]
    assert [c["name"] for c in body["columnDefinitions"]] == ["Name", "Data", "Age"]
    row = body["rows"][0]
    assert row["cells"][:2] == ["a", 1]
    obj = row["object"]
    assert obj["kind"] == "PartialObjectMetadata"
    assert obj["apiVersion"] == "meta.k8s.io/v1"
    assert obj["metadata"]["name"] == "a" and obj["metadata"]["namespace"] == "default"
    assert obj["metadata"]["labels"] == {"x": "y"}
    assert "data" not in obj


async def test_table_single_object_and_services(api: InProcessApi) -> None:
    await created(api, SERVICES, service("web", 80))
    code, body, _ = await api.get(f"{SERVICES}/web", headers={"Accept": TABLE})
    assert code == 200 and body["kind"] == "Table"
    cols = [c["name"] for c in body["columnDefinitions"]]
    assert cols[:6] == ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"]
    cells = body["rows"][0]["cells"]
    assert cells[0] == "web" and cells[1] == "ClusterIP" and cells[3] == "<none>"
    assert cells[4] == "80/TCP"


# ---- field validation and bad bodies --------------------------------------------------------


async def test_strict_unknown_field_on_create(api: InProcessApi) -> None:
    svc = service("s")
    svc["spec"]["foo"] = 1
    before = await list_rv(api, SERVICES)
    code, body, _ = await api.post(f"{SERVICES}?fieldValidation=Strict", svc)
    assert code == 400
    assert status_of(body) == ("BadRequest", 'strict decoding error: unknown field "spec.foo"')
    assert await list_rv(api, SERVICES) == before


async def test_strict_is_not_the_default(api: InProcessApi) -> None:
    # The server-side default (no fieldValidation parameter) is Warn in Kubernetes 1.32;
    # kubectl sends Strict explicitly.
    svc = service("s")
    svc["spec"]["foo"] = 1
    code, body, headers = await api.post(SERVICES, svc)
    assert code == 201, body
    assert "foo" not in body["spec"]
    assert headers.get("Warning") == '299 - "unknown field \\"spec.foo\\""'


async def test_warn_unknown_field(api: InProcessApi) -> None:
    cm = configmap("x")
    cm["bogus"] = True
    code, body, headers = await api.post(f"{CONFIGMAPS}?fieldValidation=Warn", cm)
    assert code == 201, body
    assert "bogus" not in body
    assert headers["Warning"] == '299 - "unknown field \\"bogus\\""'


async def test_ignore_unknown_field(api: InProcessApi) -> None:
    svc = service("s")
    svc["spec"]["foo"] = 1
    code, body, headers = await api.post(f"{SERVICES}?fieldValidation=Ignore", svc)
    assert code == 201, body
    assert "foo" not in body["spec"]
    assert "Warning" not in headers
    code, got, _ = await api.get(f"{SERVICES}/s")
    assert "foo" not in got["spec"]


async def test_bad_field_validation_value(api: InProcessApi) -> None:
    code, body, _ = await api.post(f"{CONFIGMAPS}?fieldValidation=Loose", configmap("x"))
    assert code == 400
    assert status_of(body) == (
        "BadRequest",
        "fieldValidation parameter unsupported: Loose. Valid values are Strict, Warn, Ignore")


async def test_type_error_is_bad_request(api: InProcessApi) -> None:
    svc = service("s")
    svc["spec"]["ports"][0]["port"] = "eighty"
    before = await list_rv(api, SERVICES)
    code, body, _ = await api.post(SERVICES, svc)
    assert code == 400
    reason, message = status_of(body)
    assert reason == "BadRequest"
    assert message.startswith('Service in version "v1" cannot be handled as a Service:')
    assert "spec.ports" in message and "string" in message
    assert await list_rv(api, SERVICES) == before


async def test_body_not_json(api: InProcessApi) -> None:
    before = await list_rv(api, CONFIGMAPS)
    code, body, _ = await api.call("POST", CONFIGMAPS, raw=b"{not json")
    assert code == 400
    assert status_of(body)[0] == "BadRequest"
    assert await list_rv(api, CONFIGMAPS) == before


async def test_body_too_large(api: InProcessApi) -> None:
    before = await list_rv(api, CONFIGMAPS)
    big = configmap("big", a="x" * (3 * 1024 * 1024 + 10))
    code, body, _ = await api.post(CONFIGMAPS, big)
    assert code == 413
    assert status_of(body)[0] == "RequestEntityTooLarge"
    assert await list_rv(api, CONFIGMAPS) == before


async def test_large_body_is_read_whole(api: InProcessApi) -> None:
    value = "x" * (512 * 1024)
    code, body, _ = await api.post(CONFIGMAPS, configmap("big", a=value))
    assert code == 201, body
    code, got, _ = await api.get(f"{CONFIGMAPS}/big")
    assert got["data"]["a"] == value


async def test_configmap_over_one_mebibyte_is_invalid(api: InProcessApi) -> None:
    code, body, _ = await api.post(CONFIGMAPS, configmap("big", a="x" * (1024 * 1024 + 1)))
    assert code == 422, body
    reason, message = status_of(body)
    assert reason == "Invalid"
    assert message.startswith('ConfigMap "big" is invalid: ')
    assert "1048576" in message


async def test_wrong_kind_for_url(api: InProcessApi) -> None:
    before = await list_rv(api, CONFIGMAPS)
    code, body, _ = await api.post(CONFIGMAPS, {"apiVersion": "v1", "kind": "Secret",
                                                "metadata": {"name": "x"}})
    assert code == 400
    assert status_of(body) == (
        "BadRequest",
        'Secret in version "v1" cannot be handled as a ConfigMap: no kind "Secret" is '
        'registered for version "v1"')
    assert await list_rv(api, CONFIGMAPS) == before


async def test_wrong_api_version_for_url(api: InProcessApi) -> None:
    dep = deployment("d")
    dep["apiVersion"] = "apps/v1beta1"
    code, body, _ = await api.post(DEPLOYMENTS, dep)
    assert code == 400
    assert status_of(body)[0] == "BadRequest"


async def test_unknown_resource_and_method(api: InProcessApi) -> None:
    code, body, _ = await api.get("/api/v1/namespaces/default/widgets")
    assert code == 404
    assert status_of(body) == ("NotFound", "the server could not find the requested resource")
    code, body, _ = await api.post(f"{CONFIGMAPS}/x", configmap("x"))
    assert code == 405
    assert status_of(body)[0] == "MethodNotAllowed"


async def test_dry_run_writes_nothing(api: InProcessApi) -> None:
    before = await list_rv(api, CONFIGMAPS)
    code, body, _ = await api.post(f"{CONFIGMAPS}?dryRun=All", configmap("x"))
    assert code == 201 and body["metadata"]["name"] == "x"
    assert await list_rv(api, CONFIGMAPS) == before
    assert await names(api, CONFIGMAPS) == []


async def test_delete_collection_with_label_selector(api: InProcessApi) -> None:
    await created(api, CONFIGMAPS, configmap("a", {"app": "web"}))
    await created(api, CONFIGMAPS, configmap("b", {"app": "db"}))
    await created(api, CONFIGMAPS, configmap("c", {"app": "web"}))
    code, body, _ = await api.delete(f"{CONFIGMAPS}?labelSelector=app%3Dweb")
    assert code == 200, body
    assert body["kind"] == "ConfigMapList"
    assert sorted(o["metadata"]["name"] for o in body["items"]) == ["a", "c"]
    assert await names(api, CONFIGMAPS) == ["b"]


async def test_status_put_with_stale_resource_version(api: InProcessApi) -> None:
    obj = await created(api, DEPLOYMENTS, deployment("d"))
    await api.patch(f"{DEPLOYMENTS}/d", {"metadata": {"labels": {"a": "b"}}})
    obj["status"] = {"replicas": 1}
    code, body, _ = await api.put(f"{DEPLOYMENTS}/d/status", obj)
    assert code == 409
    assert status_of(body) == (
        "Conflict",
        'Operation cannot be fulfilled on deployments.apps "d": the object has been '
        "modified; please apply your changes to the latest version and try again")
