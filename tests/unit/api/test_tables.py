"""Server-built Tables, checked as the terminal output `kubectl get` prints from them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from podnet.api.errors import StatusError
from podnet.api.resources import Registry, ResourceType
from podnet.api.tables import build_table, human_duration, json_path, table_event

NOW = datetime(2025, 1, 10, 12, 0, 0, tzinfo=UTC)
REG = Registry.builtin()


def ago(**kw: float) -> str:
    return (NOW - timedelta(**kw)).strftime("%Y-%m-%dT%H:%M:%SZ")


def rt(group: str, kind: str) -> ResourceType:
    for r in REG:
        if r.group == group and r.kind == kind:
            return r
    raise KeyError(kind)


def kubectl_get(table: dict[str, Any], wide: bool = False) -> str:
    """Render a Table the way kubectl's printer does (tabwriter, padding 3, nil = <none>)."""
    cols = [i for i, c in enumerate(table["columnDefinitions"]) if wide or c["priority"] == 0]
    lines = [[table["columnDefinitions"][i]["name"].upper() for i in cols]]
    for row in table["rows"]:
        lines.append(["<none>" if row["cells"][i] is None else str(row["cells"][i]) for i in cols])
    widths = [max(len(line[j]) for line in lines) for j in range(len(cols))]
    out = []
    for line in lines:
        cells = [c.ljust(widths[j] + 3) if j < len(cols) - 1 else c for j, c in enumerate(line)]
        out.append("".join(cells))
    return "\n".join(out)


def meta(name: str, created: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "creationTimestamp": created, **extra}


def running(name: str, restarts: int = 0, finished: str | None = None) -> dict[str, Any]:
    cs: dict[str, Any] = {"name": name, "ready": True, "restartCount": restarts,
                          "state": {"running": {"startedAt": ago(minutes=1)}}}
    if finished:
        cs["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": finished}}
    return cs


POD_BASE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "spec": {"containers": [{"name": "app", "image": "agnhost"}], "nodeName": "node1"},
}


def pod(name: str, created: str, status: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {**POD_BASE, "metadata": meta(name, created),
            "spec": {**POD_BASE["spec"], **spec}, "status": status}


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (5, "5s"),
        (119, "119s"),
        (150, "2m30s"),
        (180, "3m"),
        (600, "10m"),
        (179 * 60, "179m"),
        (3 * 3600 + 5 * 60, "3h5m"),
        (5 * 3600, "5h"),
        (20 * 3600, "20h"),
        (2 * 86400 + 3 * 3600, "2d3h"),
        (3 * 86400, "3d"),
        (45 * 86400, "45d"),
        (2 * 365 * 86400 + 10 * 86400, "2y10d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(timedelta(seconds=seconds)) == text


# --------------------------------------------------------------------------- pods


def test_pods_as_kubectl_prints_them() -> None:
    pods = [
        pod("web", ago(seconds=10), {"phase": "Running", "podIP": "10.244.0.5",
            "podIPs": [{"ip": "10.244.0.5"}], "containerStatuses": [running("app")]}),
        pod("crashy", ago(minutes=5), {"phase": "Running", "containerStatuses": [
            {"name": "app", "ready": False, "restartCount": 2,
             "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(seconds=5)}}}]}),
        pod("new", ago(seconds=2), {"phase": "Pending", "containerStatuses": [
            {"name": "app", "ready": False, "restartCount": 0,
             "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
        pod("job", ago(hours=3, minutes=5), {"phase": "Succeeded", "containerStatuses": [
            {"name": "app", "ready": False, "restartCount": 0,
             "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
        pod("failed", ago(days=2, hours=3), {"phase": "Failed", "containerStatuses": [
            {"name": "app", "ready": False, "restartCount": 0,
             "state": {"terminated": {"exitCode": 3, "reason": "Error"}}}]}),
        pod("unscheduled", ago(days=45), {"phase": "Pending"}, nodeName=None),
    ]
    table = build_table(rt("", "Pod"), pods, NOW)
    assert kubectl_get(table) == "\n".join([
        "NAME          READY   STATUS              RESTARTS     AGE",
        "web           1/1     Running             0            10s",
        "crashy        0/1     CrashLoopBackOff    2 (5s ago)   5m",
        "new           0/1     ContainerCreating   0            2s",
        "job           0/1     Completed           0            3h5m",
        "failed        0/1     Error               0            2d3h",
        "unscheduled   0/1     Pending             0            45d",
    ])
    assert kubectl_get(table, wide=True).splitlines()[:2] == [
        "NAME          READY   STATUS              RESTARTS     AGE    IP           NODE     "
        "NOMINATED NODE   READINESS GATES",
        "web           1/1     Running             0            10s    10.244.0.5   node1    "
        "<none>           <none>",
    ]
    # Finished pods carry the row condition kubectl uses to tell them apart.
    assert table["rows"][3]["conditions"][0]["reason"] == "Succeeded"
    assert "conditions" not in table["rows"][0]


def test_pod_status_init_terminating_and_exit_codes() -> None:
    init = {"initContainers": [{"name": "setup", "image": "busybox"}]}
    rows = [
        pod("init-wait", ago(seconds=3), {"phase": "Pending", "initContainerStatuses": [
            {"name": "setup", "ready": False, "restartCount": 0,
             "state": {"running": {}}}]}, **init),
        pod("init-crash", ago(seconds=3), {"phase": "Pending", "initContainerStatuses": [
            {"name": "setup", "ready": False, "restartCount": 4,
             "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}, **init),
        pod("init-exit", ago(seconds=3), {"phase": "Pending", "initContainerStatuses": [
            {"name": "setup", "ready": False, "restartCount": 0,
             "state": {"terminated": {"exitCode": 2}}}]}, **init),
        pod("killed", ago(seconds=3), {"phase": "Running", "containerStatuses": [
            {"name": "app", "ready": False, "restartCount": 0,
             "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}),
        {**pod("going", ago(seconds=30), {"phase": "Running",
                                          "containerStatuses": [running("app")]}),
         "metadata": meta("going", ago(seconds=30), deletionTimestamp=ago(seconds=-30))},
    ]
    table = build_table(rt("", "Pod"), rows, NOW)
    assert [r["cells"][:4] for r in table["rows"]] == [
        ["init-wait", "0/1", "Init:0/1", "0"],
        ["init-crash", "0/1", "Init:CrashLoopBackOff", "4"],
        ["init-exit", "0/1", "Init:ExitCode:2", "0"],
        ["killed", "0/1", "Signal:9", "0"],
        ["going", "1/1", "Terminating", "0"],
    ]


def test_pod_sidecar_counts_and_restart_age() -> None:
    p = pod("side", ago(minutes=20), {
        "phase": "Running",
        "conditions": [{"type": "Initialized", "status": "True"},
                       {"type": "Ready", "status": "True"}],
        "initContainerStatuses": [{"name": "proxy", "ready": True, "started": True,
                                   "restartCount": 1, "state": {"running": {}},
                                   "lastState": {"terminated": {"exitCode": 1,
                                                                "finishedAt": ago(minutes=12)}}}],
        "containerStatuses": [running("app", restarts=2, finished=ago(minutes=2, seconds=30))],
    }, initContainers=[{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}],
        readinessGates=[{"conditionType": "example.com/gate"}])
    cells = build_table(rt("", "Pod"), [p], NOW)["rows"][0]["cells"]
    assert cells[:5] == ["side", "2/2", "Running", "3 (2m30s ago)", "20m"]
    assert cells[8] == "0/1"


# --------------------------------------------------------------------------- services


def svc(name: str, spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(name, ago(minutes=10)),
            "spec": spec, "status": status or {}}


def test_services() -> None:
    services = [
        svc("kubernetes", {"type": "ClusterIP", "clusterIP": "10.96.0.1",
                           "clusterIPs": ["10.96.0.1"],
                           "ports": [{"port": 443, "protocol": "TCP"}]}),
        svc("web", {"type": "NodePort", "clusterIP": "10.96.0.20", "selector": {"app": "web"},
                    "ports": [{"port": 80, "nodePort": 30007, "protocol": "TCP"},
                              {"port": 53, "nodePort": 30053, "protocol": "UDP"}]}),
        svc("lb", {"type": "LoadBalancer", "clusterIP": "10.96.0.30",
                   "ports": [{"port": 80, "nodePort": 31000, "protocol": "TCP"}]},
            {"loadBalancer": {"ingress": [{"ip": "172.18.255.1"}]}}),
        svc("lb-pending", {"type": "LoadBalancer", "clusterIP": "10.96.0.31",
                           "ports": [{"port": 80, "nodePort": 31001, "protocol": "TCP"}]}),
        svc("db", {"type": "ExternalName", "externalName": "db.example.com"}),
        svc("headless", {"type": "ClusterIP", "clusterIP": "None",
                         "selector": {"tier": "be", "app": "x"}}),
    ]
    assert kubectl_get(build_table(rt("", "Service"), services, NOW), wide=True) == "\n".join([
        "NAME         TYPE           CLUSTER-IP   EXTERNAL-IP      PORT(S)                     "
        "AGE   SELECTOR",
        "kubernetes   ClusterIP      10.96.0.1    <none>           443/TCP                     "
        "10m   <none>",
        "web          NodePort       10.96.0.20   <none>           80:30007/TCP,53:30053/UDP   "
        "10m   app=web",
        "lb           LoadBalancer   10.96.0.30   172.18.255.1     80:31000/TCP                "
        "10m   <none>",
        "lb-pending   LoadBalancer   10.96.0.31   <pending>        80:31001/TCP                "
        "10m   <none>",
        "db           ExternalName   <none>       db.example.com   <none>                      "
        "10m   <none>",
        "headless     ClusterIP      None         <none>           <none>                      "
        "10m   app=x,tier=be",
    ])


def test_endpoints_and_endpointslices() -> None:
    ep = {"metadata": meta("web", ago(seconds=40)), "subsets": [{
        "addresses": [{"ip": f"10.244.0.{i}"} for i in range(5, 10)],
        "ports": [{"port": 9376}]}]}
    empty = {"metadata": meta("none", ago(seconds=40))}
    assert kubectl_get(build_table(rt("", "Endpoints"), [ep, empty], NOW)) == "\n".join([
        "NAME   ENDPOINTS                                                     AGE",
        "web    10.244.0.5:9376,10.244.0.6:9376,10.244.0.7:9376 + 2 more...   40s",
        "none   <none>                                                        40s",
    ])
    es = {"metadata": meta("web-abc12", ago(seconds=40)), "addressType": "IPv4",
          "ports": [{"name": "http", "port": 9376, "protocol": "TCP"}],
          "endpoints": [{"addresses": ["10.244.0.5"]}, {"addresses": ["10.244.0.6"]}]}
    bare = {"metadata": meta("web-xyz98", ago(seconds=40)), "addressType": "IPv4"}
    table = build_table(rt("discovery.k8s.io", "EndpointSlice"), [es, bare], NOW)
    assert kubectl_get(table) == "\n".join([
        "NAME        ADDRESSTYPE   PORTS     ENDPOINTS               AGE",
        "web-abc12   IPv4          9376      10.244.0.5,10.244.0.6   40s",
        "web-xyz98   IPv4          <unset>   <unset>                 40s",
    ])


# --------------------------------------------------------------------------- apps


def test_deployments_and_replicasets() -> None:
    template = {"spec": {"containers": [{"name": "web", "image": "agnhost:2.39"},
                                        {"name": "log", "image": "busybox"}]}}
    deploy = {"metadata": meta("web", ago(minutes=3)), "spec": {
        "replicas": 3, "template": template,
        "selector": {"matchLabels": {"app": "web"},
                     "matchExpressions": [{"key": "env", "operator": "In",
                                           "values": ["prod", "dev"]}]}},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    assert kubectl_get(build_table(rt("apps", "Deployment"), [deploy], NOW), wide=True) == (
        "NAME   READY   UP-TO-DATE   AVAILABLE   AGE   CONTAINERS   IMAGES                 "
        "SELECTOR\n"
        "web    2/3     3            2           3m    web,log      agnhost:2.39,busybox   "
        "app=web,env in (dev,prod)"
    )
    rs = {"metadata": meta("web-5d4f8", ago(minutes=3)),
          "spec": {"replicas": 3, "template": template,
                   "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d4f8"}}},
          "status": {"replicas": 3, "readyReplicas": 2}}
    assert kubectl_get(build_table(rt("apps", "ReplicaSet"), [rs], NOW)) == (
        "NAME        DESIRED   CURRENT   READY   AGE\n"
        "web-5d4f8   3         3         2       3m"
    )


# --------------------------------------------------------------------------- cluster things


def test_namespaces_nodes() -> None:
    ns = {"metadata": {"name": "default", "creationTimestamp": ago(days=3)},
          "status": {"phase": "Active"}}
    assert kubectl_get(build_table(rt("", "Namespace"), [ns], NOW)) == (
        "NAME      STATUS   AGE\ndefault   Active   3d"
    )
    node = {"metadata": {"name": "node1", "creationTimestamp": ago(hours=1),
                         "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                       "nodeInfo": {"kubeletVersion": "v1.32.0-podnet",
                                    "osImage": "Debian GNU/Linux 12 (bookworm)",
                                    "kernelVersion": "6.1.0", "containerRuntimeVersion": ""}}}
    cordoned = {"metadata": {"name": "node2", "creationTimestamp": ago(hours=1)},
                "spec": {"unschedulable": True}}
    assert kubectl_get(build_table(rt("", "Node"), [node, cordoned], NOW), wide=True) == "\n".join([
        "NAME    STATUS                       ROLES           AGE   VERSION          "
        "INTERNAL-IP   EXTERNAL-IP   OS-IMAGE                         KERNEL-VERSION   "
        "CONTAINER-RUNTIME",
        "node1   Ready                        control-plane   60m   v1.32.0-podnet   "
        "10.0.0.1      <none>        Debian GNU/Linux 12 (bookworm)   6.1.0            "
        "<unknown>",
        "node2   Unknown,SchedulingDisabled   <none>          60m                    "
        "<none>        <none>        <unknown>                        <unknown>        "
        "<unknown>",
    ])


def test_serviceaccounts_secrets_configmaps() -> None:
    sa = {"metadata": meta("default", ago(days=1))}
    assert kubectl_get(build_table(rt("", "ServiceAccount"), [sa], NOW)) == (
        "NAME      SECRETS   AGE\ndefault   0         24h"
    )
    secret = {"metadata": meta("tls", ago(seconds=90)), "type": "kubernetes.io/tls",
              "data": {"tls.crt": "", "tls.key": ""}}
    assert kubectl_get(build_table(rt("", "Secret"), [secret], NOW)) == (
        "NAME   TYPE                DATA   AGE\ntls    kubernetes.io/tls   2      90s"
    )
    cm = {"metadata": meta("kube-root-ca.crt", ago(days=1)), "data": {"ca.crt": "x"}}
    assert kubectl_get(build_table(rt("", "ConfigMap"), [cm], NOW)) == (
        "NAME               DATA   AGE\nkube-root-ca.crt   1      24h"
    )


def test_events() -> None:
    ev = {"metadata": meta("web.17a", ago(minutes=5)),
          "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
          "reason": "Started", "type": "Normal", "message": "Started container app\n",
          "source": {"component": "kubelet", "host": "node1"},
          "firstTimestamp": ago(minutes=5), "lastTimestamp": ago(seconds=30), "count": 3}
    new_style = {"metadata": meta("web.17b", ago(seconds=8)),
                 "involvedObject": {"kind": "Service", "name": "web"},
                 "reason": "Allocated", "type": "Normal", "message": "ok",
                 "eventTime": "2025-01-10T11:59:52.000000Z", "reportingComponent": "podnet"}
    table = build_table(rt("", "Event"), [ev, new_style], NOW)
    assert kubectl_get(table) == "\n".join([
        "LAST SEEN   TYPE     REASON      OBJECT        MESSAGE",
        "30s         Normal   Started     pod/web       Started container app",
        "8s          Normal   Allocated   service/web   ok",
    ])
    assert table["rows"][0]["cells"][4:6] == ["spec.containers{app}", "kubelet, node1"]
    assert table["rows"][0]["cells"][7:] == ["5m", 3, "web.17a"]
    assert table["rows"][1]["cells"][8] == 1


def test_networking() -> None:
    ing = {"metadata": meta("web", ago(minutes=1)),
           "spec": {"ingressClassName": "podnet", "tls": [{"hosts": ["a.example.com"]}],
                    "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}]},
           "status": {"loadBalancer": {"ingress": [{"ip": "172.18.255.2"}]}}}
    catchall = {"metadata": meta("default", ago(minutes=1)), "spec": {"rules": [{}]}}
    assert kubectl_get(build_table(rt("networking.k8s.io", "Ingress"), [ing, catchall], NOW)) == (
        "NAME      CLASS    HOSTS                         ADDRESS        PORTS     AGE\n"
        "web       podnet   a.example.com,b.example.com   172.18.255.2   80, 443   60s\n"
        "default   <none>   *                                            80        60s"
    )
    ic = {"metadata": {"name": "podnet", "creationTimestamp": ago(minutes=1)},
          "spec": {"controller": "podnet.dev/l7",
                   "parameters": {"apiGroup": "k8s.example.com", "kind": "Params", "name": "p"}}}
    assert kubectl_get(build_table(rt("networking.k8s.io", "IngressClass"), [ic], NOW)) == (
        "NAME     CONTROLLER      PARAMETERS                 AGE\n"
        "podnet   podnet.dev/l7   Params.k8s.example.com/p   60s"
    )
    deny = {"metadata": meta("deny-all", ago(seconds=4)), "spec": {"podSelector": {}}}
    web = {"metadata": meta("allow-web", ago(seconds=4)),
           "spec": {"podSelector": {"matchLabels": {"app": "web"}}}}
    assert kubectl_get(build_table(rt("networking.k8s.io", "NetworkPolicy"), [deny, web], NOW)) == (
        "NAME        POD-SELECTOR   AGE\n"
        "deny-all    <none>         4s\n"
        "allow-web   app=web        4s"
    )


def test_rbac_and_crds() -> None:
    role = {"metadata": meta("reader", "2025-01-01T08:00:00Z")}
    assert kubectl_get(build_table(rt("rbac.authorization.k8s.io", "Role"), [role], NOW)) == (
        "NAME     CREATED AT\nreader   2025-01-01T08:00:00Z"
    )
    rb = {"metadata": meta("read", ago(hours=2)),
          "roleRef": {"kind": "ClusterRole", "name": "view"},
          "subjects": [{"kind": "User", "name": "jane"}, {"kind": "Group", "name": "devs"},
                       {"kind": "ServiceAccount", "name": "bot", "namespace": "ci"},
                       {"kind": "User", "name": "joe"}]}
    table = build_table(rt("rbac.authorization.k8s.io", "ClusterRoleBinding"), [rb], NOW)
    assert kubectl_get(table, wide=True) == (
        "NAME   ROLE               AGE    USERS       GROUPS   SERVICEACCOUNTS\n"
        "read   ClusterRole/view   120m   jane, joe   devs     ci:bot"
    )
    crd = {"metadata": {"name": "widgets.example.com", "creationTimestamp": ago(minutes=1)}}
    table = build_table(rt("apiextensions.k8s.io", "CustomResourceDefinition"), [crd], NOW)
    assert kubectl_get(table) == (
        "NAME                  CREATED AT\nwidgets.example.com   2025-01-10T11:59:00Z"
    )
    assert table["columnDefinitions"][1]["type"] == "date"


# --------------------------------------------------------------------------- CRD-style kinds


def test_gateway_api_and_istio_columns() -> None:
    gw = {"metadata": meta("eg", ago(seconds=20)),
          "spec": {"gatewayClassName": "podnet"},
          "status": {"addresses": [{"type": "IPAddress", "value": "172.18.255.3"},
                                   {"type": "IPAddress", "value": "172.18.255.4"}],
                     "conditions": [{"type": "Accepted", "status": "True"},
                                    {"type": "Programmed", "status": "True"}]}}
    fresh = {"metadata": meta("new", ago(seconds=1)), "spec": {"gatewayClassName": "podnet"}}
    gateway = REG.get("gateway.networking.k8s.io", "v1", "gateways")
    assert gateway is not None
    assert kubectl_get(build_table(gateway, [gw, fresh], NOW)) == (
        "NAME   CLASS    ADDRESS        PROGRAMMED   AGE\n"
        "eg     podnet   172.18.255.3   True         20s\n"
        "new    podnet   <none>         <none>       1s"
    )
    route = {"metadata": meta("web", ago(seconds=20)),
             "spec": {"hostnames": ["www.example.com"]}}
    httproute = REG.get("gateway.networking.k8s.io", "v1", "httproutes")
    assert httproute is not None
    assert kubectl_get(build_table(httproute, [route], NOW)) == (
        'NAME   HOSTNAMES             AGE\nweb    ["www.example.com"]   20s'
    )
    gc = {"metadata": {"name": "podnet", "creationTimestamp": ago(seconds=20)},
          "spec": {"controllerName": "podnet.dev/gateway"},
          "status": {"conditions": [{"type": "Accepted", "status": "True"}]}}
    gatewayclass = REG.get("gateway.networking.k8s.io", "v1", "gatewayclasses")
    assert gatewayclass is not None
    assert kubectl_get(build_table(gatewayclass, [gc], NOW)) == (
        "NAME     CONTROLLER           ACCEPTED   AGE\npodnet   podnet.dev/gateway   True       20s"
    )
    vs = {"metadata": meta("reviews", ago(seconds=20)),
          "spec": {"hosts": ["reviews"], "gateways": ["mesh"]}}
    virtualservice = REG.get("networking.istio.io", "v1beta1", "virtualservices")
    assert virtualservice is not None
    assert kubectl_get(build_table(virtualservice, [vs], NOW)) == (
        'NAME      GATEWAYS   HOSTS         AGE\nreviews   ["mesh"]   ["reviews"]   20s'
    )
    dr = {"metadata": meta("reviews", ago(seconds=20)), "spec": {"host": "reviews"}}
    destinationrule = REG.get("networking.istio.io", "v1", "destinationrules")
    assert destinationrule is not None
    assert kubectl_get(build_table(destinationrule, [dr], NOW)) == (
        "NAME      HOST      AGE\nreviews   reviews   20s"
    )
    istio_gw = REG.get("networking.istio.io", "v1", "gateways")
    assert istio_gw is not None
    assert kubectl_get(build_table(istio_gw, [dr], NOW)) == "NAME      AGE\nreviews   20s"


def test_custom_resource_columns_from_crd() -> None:
    widget = ResourceType("example.com", "v1", "Widget", "widgets", True, structured=False)
    obj = {"metadata": meta("w1", ago(minutes=2, seconds=30)),
           "spec": {"size": 3, "color": "red", "ratio": 0.5, "on": True},
           "status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    columns: list[dict[str, Any]] = [
        {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
        {"name": "Color", "type": "string", "jsonPath": ".spec.color", "priority": 1},
        {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[0].status"},
        {"name": "Missing", "type": "string", "jsonPath": ".spec.nothing"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    table = build_table(widget, [obj], NOW, custom_columns=columns)
    assert kubectl_get(table, wide=True) == (
        "NAME   SIZE   COLOR   READY   MISSING   AGE\n"
        "w1     3      red     False   <none>    2m30s"
    )
    assert table["columnDefinitions"][2]["priority"] == 1
    assert table["columnDefinitions"][1]["description"] == (
        "Custom resource definition column (in JSONPath format): .spec.size"
    )
    # Without printer columns a custom resource gets NAME AGE.
    assert kubectl_get(build_table(widget, [obj], NOW)) == "NAME   AGE\nw1     2m30s"


def test_json_path() -> None:
    obj = {"metadata": {"labels": {"app.kubernetes.io/name": "web"}},
           "status": {"conditions": [{"type": "A", "status": "x"},
                                     {"type": "B", "status": "y"}]}}
    assert json_path(obj, ".status.conditions[1].type") == ["B"]
    assert json_path(obj, ".status.conditions[*].status") == ["x", "y"]
    assert json_path(obj, '.status.conditions[?(@.type=="B")].status') == ["y"]
    assert json_path(obj, r".metadata.labels.app\.kubernetes\.io/name") == ["web"]
    assert json_path(obj, "{.metadata.labels['app.kubernetes.io/name']}") == ["web"]
    assert json_path(obj, ".status.nope[0]") == []


# --------------------------------------------------------------------------- row objects


def test_row_object_modes_and_watch_events() -> None:
    p = pod("web", ago(seconds=10), {"phase": "Running", "containerStatuses": [running("app")]})
    p["metadata"]["labels"] = {"app": "web"}
    p["metadata"]["resourceVersion"] = "42"
    pods = rt("", "Pod")
    row = build_table(pods, [p], NOW)["rows"][0]
    assert row["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": p["metadata"]}
    assert "object" not in build_table(pods, [p], NOW, include_object="None")["rows"][0]
    assert build_table(pods, [p], NOW, include_object="Object")["rows"][0]["object"] == p
    with pytest.raises(StatusError) as bad:
        build_table(pods, [p], NOW, include_object="Everything")
    assert bad.value.code == 400

    empty = build_table(pods, [], NOW)
    assert empty["kind"] == "Table" and empty["rows"] == [] and empty["metadata"] == {}

    first = table_event("ADDED", pods, p, NOW, first=True)
    later = table_event("MODIFIED", pods, p, NOW, first=False)
    assert first["type"] == "ADDED" and len(first["object"]["columnDefinitions"]) == 9
    assert "columnDefinitions" not in later["object"]
    assert later["object"]["rows"][0]["cells"][0] == "web"
    assert later["object"]["metadata"] == {"resourceVersion": "42"}
