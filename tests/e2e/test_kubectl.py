"""The installed kubectl against podnet, command by command, as a user would type them."""

from __future__ import annotations

import json
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, Cluster, wait_for

EXAMPLES = sorted((ROOT / "examples").glob("0*"))


def test_version_reports_server_1_32(cluster: Cluster) -> None:
    out = cluster.kubectl("version").stdout
    assert "Server Version: v1.32" in out


def test_api_resources_lists_every_kind_with_short_names(cluster: Cluster) -> None:
    out = cluster.kubectl("api-resources").stdout
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "po" in rows["pods"] and "v1" in rows["pods"]
    assert "svc" in rows["services"]
    assert "deploy" in rows["deployments"] and "apps/v1" in rows["deployments"]
    assert "netpol" in rows["networkpolicies"]
    for kind in ("httproutes", "gateways", "virtualservices", "destinationrules",
                 "kongingresses", "kongplugins", "endpointslices", "customresourcedefinitions"):
        assert kind in rows, kind


def test_seed_examples_apply_unchanged_without_warnings(cluster: Cluster) -> None:
    for folder in EXAMPLES:
        r = cluster.kubectl("apply", "-f", str(folder))
        assert r.stderr.strip() == "", r.stderr
        assert r.stdout.strip().endswith(("created", "configured", "unchanged")), r.stdout
    # Every kind is stored and served back as written.
    assert cluster.kubectl_json("get", "ingress", "example-ingress")["spec"]["rules"][0][
        "host"] == "example.com"
    vs = cluster.kubectl_json("get", "virtualservice", "my-service")
    assert vs["apiVersion"] == "networking.istio.io/v1alpha3" or vs["spec"]["http"]
    assert [d["weight"] for d in vs["spec"]["http"][0]["route"]] == [80, 20]
    kong = cluster.kubectl_json("get", "kongingress", "example-kong-ingress")
    assert kong["proxy"] == {"path": "/example", "service": "my-service"}
    np = cluster.kubectl_json("get", "networkpolicy", "allow-frontend-to-backend")
    assert np["spec"]["policyTypes"] == ["Ingress"]
    # The four Services share one name: the last applied (ExternalName) wins, and the
    # type changes on the way dropped the ClusterIP as Kubernetes does.
    svc = cluster.kubectl_json("get", "svc", "my-service")
    assert svc["spec"]["type"] == "ExternalName"
    assert "clusterIP" not in svc["spec"]
    # A second apply changes nothing (01-03 would turn my-service back, by design).
    for folder in EXAMPLES[3:]:
        r = cluster.kubectl("apply", "-f", str(folder))
        assert r.stdout.strip().endswith("unchanged"), r.stdout
    for folder in EXAMPLES:
        cluster.kubectl("delete", "-f", str(folder), "--ignore-not-found")


def manifest(tmp: Path, text: str) -> str:
    p = tmp / "m.yaml"
    p.write_text(textwrap.dedent(text))
    return str(p)


SVC = """
apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {app: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
"""


def test_service_table_columns_and_output_formats(cluster: Cluster, tmp_path: Path) -> None:
    cluster.kubectl("apply", "-f", manifest(tmp_path, SVC))
    try:
        out = cluster.kubectl("get", "svc", "web").stdout.splitlines()
        assert out[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
        cells = out[1].split()
        assert cells[:2] == ["web", "ClusterIP"] and cells[2].startswith("10.")
        assert cells[3:5] == ["<none>", "80/TCP"]
        wide = cluster.kubectl("get", "svc", "web", "-o", "wide").stdout.splitlines()
        assert wide[0].split()[-1] == "SELECTOR" and wide[1].split()[-1] == "app=web"
        ip = cluster.kubectl("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}").stdout
        assert ip == cells[2]
        assert "targetPort: 8080" in cluster.kubectl("get", "svc", "web", "-o", "yaml").stdout
        all_ns = cluster.kubectl("get", "svc", "-A").stdout.splitlines()
        assert all_ns[0].split()[0] == "NAMESPACE"
        assert any(line.split()[:2] == ["default", "kubernetes"] for line in all_ns[1:])
        labels = cluster.kubectl("get", "svc", "web", "--show-labels").stdout
        assert "app=web" in labels
        # Re-apply: unchanged; change: configured (strategic merge patch of ports).
        r = cluster.kubectl("apply", "-f", manifest(tmp_path, SVC))
        assert r.stdout.strip() == "service/web unchanged"
        changed = SVC.replace("{name: http, port: 80, targetPort: 8080}",
                              "{name: http, port: 81, targetPort: 8080}\n  - {name: https, "
                              "port: 443}")
        r = cluster.kubectl("apply", "-f", manifest(tmp_path, changed))
        assert r.stdout.strip() == "service/web configured"
        ports = cluster.kubectl_json("get", "svc", "web")["spec"]["ports"]
        assert [(p["name"], p["port"], p["targetPort"], p["protocol"]) for p in ports] == [
            ("http", 81, 8080, "TCP"), ("https", 443, 443, "TCP")]
        assert cluster.kubectl_json("get", "svc", "web")["spec"]["clusterIP"] == cells[2]
    finally:
        cluster.kubectl("delete", "svc", "web", "--ignore-not-found")


def test_server_side_apply_creates_then_conflicts(cluster: Cluster, tmp_path: Path) -> None:
    cm = """
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: ssa}
    data: {a: "1"}
    """
    r = cluster.kubectl("apply", "--server-side", "-f", manifest(tmp_path, cm))
    assert r.stdout.strip() == "configmap/ssa serverside-applied"
    got = cluster.kubectl_json("get", "cm", "ssa", "--show-managed-fields")
    assert got["metadata"]["managedFields"][0]["manager"] == "kubectl"
    assert got["metadata"]["managedFields"][0]["operation"] == "Apply"
    r = cluster.kubectl("apply", "--server-side", "--field-manager", "other", "-f",
                        manifest(tmp_path, cm.replace('"1"', '"2"')), check=False)
    assert r.returncode != 0 and "conflict" in r.stderr.lower(), r.stderr
    r = cluster.kubectl("apply", "--server-side", "--field-manager", "other",
                        "--force-conflicts", "-f", manifest(tmp_path, cm.replace('"1"', '"2"')))
    assert cluster.kubectl_json("get", "cm", "ssa")["data"] == {"a": "2"}
    cluster.kubectl("delete", "cm", "ssa")


def test_create_describe_label_annotate_delete(cluster: Cluster) -> None:
    cluster.kubectl("create", "configmap", "demo", "--from-literal=k=v")
    r = cluster.kubectl("create", "configmap", "demo", "--from-literal=k=v", check=False)
    assert r.returncode == 1
    assert 'configmaps "demo" already exists' in r.stderr
    cluster.kubectl("label", "configmap", "demo", "tier=fe")
    cluster.kubectl("annotate", "configmap", "demo", "note=hello")
    got = cluster.kubectl_json("get", "cm", "demo")
    assert got["metadata"]["labels"] == {"tier": "fe"}
    assert got["metadata"]["annotations"]["note"] == "hello"
    out = cluster.kubectl("describe", "configmap", "demo").stdout
    assert "Name:" in out and "demo" in out and "tier=fe" in out
    r = cluster.kubectl("delete", "configmap", "demo", "--wait=true", timeout=30)
    assert 'configmap "demo" deleted' in r.stdout
    r = cluster.kubectl("get", "configmap", "demo", check=False)
    assert 'configmaps "demo" not found' in r.stderr


DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: hello}
spec:
  replicas: 2
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {app: hello}}
    spec:
      containers:
      - name: hello
        image: registry.k8s.io/e2e-test-images/agnhost:2.39
        args: [serve-hostname]
        ports: [{containerPort: 9376}]
"""




def test_deployment_scale_makes_replicasets_pods_and_events(cluster: Cluster,
                                                            tmp_path: Path) -> None:
    cluster.kubectl("apply", "-f", manifest(tmp_path, DEPLOY))
    try:
        def pods() -> list[str]:
            items = cluster.kubectl_json("get", "pods", "-l", "app=hello")["items"]
            return [p["metadata"]["name"] for p in items]

        wait_for(lambda: len(pods()) == 2, what="2 pods")
        rs = cluster.kubectl_json("get", "rs", "-l", "app=hello")["items"]
        assert len(rs) == 1 and rs[0]["metadata"]["name"].startswith("hello-")
        assert rs[0]["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
        r = cluster.kubectl("scale", "deployment", "hello", "--replicas=4")
        assert r.stdout.strip() == "deployment.apps/hello scaled"
        wait_for(lambda: len(pods()) == 4, what="4 pods")
        events = cluster.kubectl("get", "events").stdout
        assert "ScalingReplicaSet" in events and "SuccessfulCreate" in events
        cluster.kubectl("wait", "--for=condition=Available", "deployment/hello",
                        "--timeout=60s", timeout=90)
        table = wait_for(lambda: (t := cluster.kubectl("get", "deploy", "hello").stdout
                                  .splitlines()) and t[1].split()[1] == "4/4" and t,
                         what="4/4 ready")
        assert table[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    finally:
        cluster.kubectl("delete", "deployment", "hello", "--wait=true", timeout=60)
    wait_for(lambda: not cluster.kubectl_json("get", "pods", "-l", "app=hello")["items"],
             what="pods garbage-collected")
    assert not cluster.kubectl_json("get", "rs", "-l", "app=hello")["items"]


def test_get_watch_streams_changes(cluster: Cluster) -> None:
    with tempfile.TemporaryDirectory() as cache:
        proc = subprocess.Popen(
            ["kubectl", "--kubeconfig", str(cluster.kubeconfig), "--cache-dir", cache, "get",
             "configmaps", "-w", "--request-timeout=0"], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(1.5)
            cluster.kubectl("create", "configmap", "watched")
            time.sleep(1.0)
        finally:
            proc.terminate()
            out, _ = proc.communicate(timeout=10)
    cluster.kubectl("delete", "configmap", "watched")
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "DATA", "AGE"]
    assert any(line.split()[0] == "watched" for line in lines[1:]), out


def test_auth_can_i_yes_and_no(cluster: Cluster) -> None:
    r = cluster.kubectl("auth", "can-i", "create", "pods")
    assert r.stdout.strip() == "yes"
    r = cluster.kubectl("auth", "can-i", "list", "pods",
                        "--as=system:serviceaccount:default:default", check=False)
    assert r.returncode == 1 and r.stdout.strip().startswith("no")


def test_rbac_with_a_service_account_token(cluster: Cluster, tmp_path: Path) -> None:
    cluster.kubectl("create", "serviceaccount", "reader")
    token = cluster.kubectl("create", "token", "reader").stdout.strip()
    assert token.count(".") == 2
    server = f"https://127.0.0.1:{cluster.port}"
    ca = cluster.state_dir / "pki" / "ca.crt"
    as_reader = ["--server", server, "--certificate-authority", str(ca), "--token", token]

    def reader(*args: str) -> subprocess.CompletedProcess[str]:
        with tempfile.TemporaryDirectory() as cache:
            return subprocess.run(["kubectl", "--kubeconfig", "/dev/null", "--cache-dir", cache,
                                   *as_reader, *args], capture_output=True, text=True,
                                  timeout=60)

    r = reader("get", "pods", "-n", "default")
    assert r.returncode == 1
    assert ('pods is forbidden: User "system:serviceaccount:default:reader" cannot list '
            'resource "pods" in API group "" in the namespace "default"') in r.stderr
    cluster.kubectl("create", "rolebinding", "reader-view", "--clusterrole=view",
                    "--serviceaccount=default:reader")
    try:
        r = reader("get", "pods", "-n", "default")
        assert r.returncode == 0, r.stderr
        r = reader("get", "secrets", "-n", "default")
        assert r.returncode == 1 and "forbidden" in r.stderr
    finally:
        cluster.kubectl("delete", "rolebinding", "reader-view")
        cluster.kubectl("delete", "serviceaccount", "reader")
    r = reader("get", "pods", "-n", "default")
    assert (r.returncode == 1 and "Unauthorized" in r.stderr) or "logged in" in r.stderr


def test_bad_input_gets_a_status_and_stores_nothing(cluster: Cluster, tmp_path: Path) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n")
    r = cluster.kubectl("apply", "-f", str(bad_yaml), check=False)
    assert r.returncode != 0 and "error" in r.stderr.lower()
    unknown = manifest(tmp_path, """
    apiVersion: v1
    kind: Service
    metadata: {name: strict}
    spec:
      ports: [{port: 80, bogus: 1}]
    """)
    r = cluster.kubectl("apply", "-f", unknown, check=False)
    assert r.returncode != 0
    assert 'unknown field "spec.ports[0].bogus"' in r.stderr, r.stderr
    invalid = manifest(tmp_path, """
    apiVersion: v1
    kind: Service
    metadata: {name: bad-port}
    spec:
      type: NodePort
      ports: [{port: 80, nodePort: 80}]
    """)
    r = cluster.kubectl("apply", "-f", invalid, check=False)
    assert r.returncode != 0
    assert ('The Service "bad-port" is invalid: spec.ports[0].nodePort: Invalid value: 80: '
            'provided port is not in the valid range. The range of valid ports is '
            '30000-32767') in r.stderr, r.stderr
    for name in ("x", "strict", "bad-port"):
        assert cluster.kubectl("get", "svc,cm", name, check=False).returncode != 0


def test_python_client_typed_dynamic_and_watch(cluster: Cluster) -> None:
    from kubernetes import client, config, dynamic, watch

    api = config.new_client_from_config(str(cluster.kubeconfig))
    core = client.CoreV1Api(api)
    names = [n.metadata.name for n in core.list_namespace().items]
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= set(names)
    svc = core.read_namespaced_service("kubernetes", "default")
    assert svc.spec.cluster_ip == "10.96.0.1"
    core.create_namespaced_config_map("default", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="py"), data={"a": "b"}))
    w = watch.Watch()
    seen = []
    for ev in w.stream(core.list_namespaced_config_map, "default", timeout_seconds=2,
                       field_selector="metadata.name=py"):
        seen.append((ev["type"], ev["object"].metadata.name))
        w.stop()
    assert seen == [("ADDED", "py")]
    core.delete_namespaced_config_map("py", "default")
    apps = client.AppsV1Api(api)
    assert apps.list_namespaced_deployment("default").items is not None
    net = client.NetworkingV1Api(api)
    assert net.list_namespaced_ingress("default").items is not None
    custom = client.CustomObjectsApi(api)
    vs = custom.create_namespaced_custom_object(
        "networking.istio.io", "v1", "default", "virtualservices",
        {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
         "metadata": {"name": "reviews"}, "spec": {"hosts": ["reviews"]}})
    assert vs["metadata"]["uid"]
    dyn = dynamic.DynamicClient(api)
    res = dyn.resources.get(api_version="networking.istio.io/v1", kind="VirtualService")
    got = res.get(name="reviews", namespace="default")
    assert got.spec.hosts == ["reviews"]
    res.delete(name="reviews", namespace="default")


def test_restart_after_kill_9_loses_nothing(cluster: Cluster, tmp_path: Path) -> None:
    cluster.kubectl("create", "configmap", "durable", "--from-literal=k=v")
    before = cluster.kubectl_json("get", "cm", "durable")
    pid = int((cluster.state_dir / "podnet.pid").read_text())
    subprocess.run(["kill", "-9", str(pid)], check=True)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    r = cluster.podnet("up", "--port", str(cluster.port), "--no-kubeconfig-merge")
    assert r.returncode == 0, r.stderr
    after = cluster.kubectl_json("get", "cm", "durable")
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["data"] == {"k": "v"}
    cluster.kubectl("label", "cm", "durable", "x=y")
    relabelled = cluster.kubectl_json("get", "cm", "durable")
    assert int(relabelled["metadata"]["resourceVersion"]) > int(
        before["metadata"]["resourceVersion"])
    cluster.kubectl("delete", "cm", "durable")


@pytest.mark.parametrize("kind", ["namespace"])
def test_namespace_deletion_cascades(cluster: Cluster, kind: str) -> None:
    cluster.kubectl("create", "namespace", "doomed")
    cluster.kubectl("create", "configmap", "inside", "-n", "doomed")
    r = cluster.kubectl("delete", "namespace", "doomed", "--wait=true", timeout=60)
    assert 'namespace "doomed" deleted' in r.stdout
    assert cluster.kubectl("get", "ns", "doomed", check=False).returncode == 1
    _ = json


def test_load_balancer_gets_an_ip_within_seconds(cluster: Cluster) -> None:
    cluster.kubectl("create", "namespace", "lb")
    try:
        cluster.kubectl("apply", "-n", "lb", "-f",
                        str(ROOT / "examples" / "03-service-loadbalancer"))
        ip = wait_for(lambda: cluster.kubectl(
            "get", "svc", "my-service", "-n", "lb", "-o",
            "jsonpath={.status.loadBalancer.ingress[0].ip}").stdout, timeout=10,
            what="a LoadBalancer IP")
        assert ip.startswith("10.251.0.")
        row = cluster.kubectl("get", "svc", "my-service", "-n", "lb").stdout.splitlines()[1]
        assert row.split()[3] == ip and "80:3" in row.split()[4]
    finally:
        cluster.kubectl("delete", "namespace", "lb", "--wait=true", timeout=60)
