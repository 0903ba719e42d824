"""Every Service type from the seed carries real traffic: ClusterIP from pods and the host,
NodePort on the node IP and the host's 127.0.0.1, LoadBalancer IPs from the host,
ExternalName as no rules; refusal without endpoints; the API server from a pod."""

from __future__ import annotations

import json
import socket
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator

import pytest

from tests.conftest import assert_not_via_default_route
from tests.e2e.conftest import ROOT, Cluster, apply, wait_for

NS = "svc"

BACKENDS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: backends, namespace: svc}
spec:
  replicas: 3
  selector: {matchLabels: {app: MyApp}}
  template:
    metadata: {labels: {app: MyApp}}
    spec:
      containers:
      - name: serve-hostname
        image: registry.k8s.io/e2e-test-images/agnhost:2.39
        args: [serve-hostname]
        ports: [{containerPort: 9376, name: web}]
        readinessProbe: {tcpSocket: {port: 9376}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: svc}
spec:
  containers:
  - name: py
    image: python:3.11
    command: [python3, -c, "import time; time.sleep(100000)"]
"""






def from_pod(cluster: Cluster, code: str) -> str:
    return cluster.kubectl("exec", "-n", NS, "client", "--", "python3", "-c",
                           textwrap.dedent(code)).stdout.strip()


def http_get_from_pod(cluster: Cluster, host: str, port: int, n: int = 1) -> list[str]:
    out = from_pod(cluster, f"""
        import socket
        for _ in range({n}):
            try:
                with socket.create_connection(({host!r}, {port}), timeout=3) as s:
                    s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
                    print(s.recv(4096).decode().strip().splitlines()[-1])
            except OSError as e:
                print("ERR", type(e).__name__)
        """)
    return out.splitlines()


def http_get_from_host(ip: str, port: int) -> str:
    assert_not_via_default_route(ip) if not ip.startswith("127.") else None
    with socket.create_connection((ip, port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        return s.recv(4096).decode().strip().splitlines()[-1]


@pytest.fixture(scope="module")
def svc_ns(cluster: Cluster) -> Iterator[Cluster]:
    cluster.kubectl("create", "namespace", NS)
    apply(cluster, BACKENDS)
    cluster.kubectl("wait", "-n", NS, "--for=condition=Available", "deployment/backends",
                    "--timeout=60s", timeout=90)
    cluster.kubectl("wait", "-n", NS, "--for=condition=Ready", "pod/client", "--timeout=60s",
                    timeout=90)
    yield cluster
    cluster.kubectl("delete", "namespace", NS, "--wait=true", timeout=120)


def backend_names(cluster: Cluster) -> set[str]:
    items = cluster.kubectl_json("get", "pods", "-n", NS, "-l", "app=MyApp")["items"]
    return {p["metadata"]["name"] for p in items}


def test_clusterip_spreads_over_all_endpoints(svc_ns: Cluster) -> None:
    svc_ns.kubectl("apply", "-n", NS, "-f", str(ROOT / "examples" / "01-service-clusterip"))
    ip = svc_ns.kubectl("get", "svc", "-n", NS, "my-service", "-o",
                        "jsonpath={.spec.clusterIP}").stdout
    wait_for(lambda: len(svc_ns.kubectl_json("get", "endpointslices", "-n", NS, "-l",
                                             "kubernetes.io/service-name=my-service")
                         ["items"][0].get("endpoints") or []) == 3, what="3 endpoints")
    seen = set(http_get_from_pod(svc_ns, ip, 80, n=30))
    assert seen == backend_names(svc_ns), seen
    # The host reaches the ClusterIP too (routed to the node, never the default route).
    assert http_get_from_host(ip, 80) in backend_names(svc_ns)


def test_nodeport_on_node_ip_and_host_loopback(svc_ns: Cluster) -> None:
    svc_ns.kubectl("apply", "-n", NS, "-f", str(ROOT / "examples" / "02-service-nodeport"))
    node_ip = svc_ns.kubectl("get", "node", "node-0", "-o",
                             "jsonpath={.status.addresses[0].address}").stdout
    assert wait_for(lambda: http_get_from_host(node_ip, 30007), what="NodePort on node IP") \
        in backend_names(svc_ns)
    assert http_get_from_host("127.0.0.1", 30007) in backend_names(svc_ns)


def test_loadbalancer_ip_answers_from_the_host(svc_ns: Cluster) -> None:
    svc_ns.kubectl("apply", "-n", NS, "-f", str(ROOT / "examples" / "03-service-loadbalancer"))
    ip = wait_for(lambda: svc_ns.kubectl("get", "svc", "-n", NS, "my-service", "-o",
                                         "jsonpath={.status.loadBalancer.ingress[0].ip}").stdout,
                  what="LB IP")
    assert wait_for(lambda: http_get_from_host(ip, 80), what="LB answers") in \
        backend_names(svc_ns)


def test_scale_to_zero_refuses_at_once_then_answers_again(svc_ns: Cluster) -> None:
    svc_ns.kubectl("apply", "-n", NS, "-f", str(ROOT / "examples" / "01-service-clusterip"))
    ip = svc_ns.kubectl("get", "svc", "-n", NS, "my-service", "-o",
                        "jsonpath={.spec.clusterIP}").stdout
    svc_ns.kubectl("scale", "-n", NS, "deployment/backends", "--replicas=0")
    wait_for(lambda: http_get_from_pod(svc_ns, ip, 80) == ["ERR ConnectionRefusedError"],
             what="refused")
    t0 = time.monotonic()
    assert http_get_from_pod(svc_ns, ip, 80) == ["ERR ConnectionRefusedError"]
    assert time.monotonic() - t0 < 3  # refused, not a time-out (includes kubectl exec)
    svc_ns.kubectl("scale", "-n", NS, "deployment/backends", "--replicas=3")
    svc_ns.kubectl("wait", "-n", NS, "--for=condition=Available", "deployment/backends",
                   "--timeout=60s", timeout=90)
    wait_for(lambda: http_get_from_pod(svc_ns, ip, 80)[0] in backend_names(svc_ns),
             what="answers again")


def test_externalname_makes_no_rules(svc_ns: Cluster) -> None:
    svc_ns.kubectl("apply", "-n", NS, "-f", str(ROOT / "examples" / "04-service-externalname"))
    svc = svc_ns.kubectl_json("get", "svc", "-n", NS, "my-service")
    assert svc["spec"]["type"] == "ExternalName" and "clusterIP" not in svc["spec"]
    rules = subprocess.run(["ip", "netns", "exec", f"podnet-{svc_ns.name}-node-0", "nft",
                            "list", "table", "ip", "podnet-proxy"], capture_output=True,
                           text=True).stdout
    assert "svc/my-service" not in rules


def test_session_affinity_keeps_one_backend(svc_ns: Cluster) -> None:
    apply(svc_ns, """
    apiVersion: v1
    kind: Service
    metadata: {name: sticky, namespace: svc}
    spec:
      selector: {app: MyApp}
      sessionAffinity: ClientIP
      ports: [{port: 80, targetPort: web}]
    """)
    ip = svc_ns.kubectl("get", "svc", "-n", NS, "sticky", "-o",
                        "jsonpath={.spec.clusterIP}").stdout
    wait_for(lambda: http_get_from_pod(svc_ns, ip, 80)[0] in backend_names(svc_ns),
             what="sticky answers (named targetPort)")
    assert len(set(http_get_from_pod(svc_ns, ip, 80, n=15))) == 1


def test_hairpin_a_pod_reaches_itself_through_its_service(svc_ns: Cluster) -> None:
    apply(svc_ns, """
    apiVersion: v1
    kind: Service
    metadata: {name: self, namespace: svc}
    spec:
      selector: {app: hair}
      ports: [{port: 80, targetPort: 8080}]
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: hair, namespace: svc, labels: {app: hair}}
    spec:
      containers:
      - name: netexec
        image: registry.k8s.io/e2e-test-images/agnhost:2.39
        args: [netexec, --http-port=8080]
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
    """)
    svc_ns.kubectl("wait", "-n", NS, "--for=condition=Ready", "pod/hair", "--timeout=60s",
                   timeout=90)
    ip = svc_ns.kubectl("get", "svc", "-n", NS, "self", "-o", "jsonpath={.spec.clusterIP}").stdout
    out = wait_for(lambda: svc_ns.kubectl(
        "exec", "-n", NS, "hair", "--", "/agnhost", "connect", f"{ip}:80", "--timeout=3s",
        check=False).returncode == 0, what="hairpin connect")
    assert out


def test_pod_uses_the_in_cluster_client_under_rbac(svc_ns: Cluster) -> None:
    code = """
        from kubernetes import client, config
        config.load_incluster_config()
        try:
            pods = client.CoreV1Api().list_namespaced_pod("svc")
            print("allowed", len(pods.items))
        except client.ApiException as e:
            import json
            print("status", e.status, json.loads(e.body)["message"])
        """
    denied = from_pod(svc_ns, code)
    assert denied == ('status 403 pods is forbidden: User "system:serviceaccount:svc:default" '
                      'cannot list resource "pods" in API group "" in the namespace "svc"')
    svc_ns.kubectl("create", "rolebinding", "-n", NS, "view", "--clusterrole=view",
                   "--serviceaccount=svc:default")
    allowed = from_pod(svc_ns, code)
    assert allowed.startswith("allowed ")
    _ = json


NETEXEC = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: netexec, namespace: svc}
spec:
  replicas: 2
  selector: {matchLabels: {app: netexec}}
  template:
    metadata: {labels: {app: netexec}}
    spec:
      containers:
      - name: netexec
        image: registry.k8s.io/e2e-test-images/agnhost:2.39
        args: [netexec, --http-port=8080, --udp-port=8081]
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: local, namespace: svc}
spec:
  type: NodePort
  externalTrafficPolicy: Local
  selector: {app: netexec}
  ports: [{name: http, port: 8080, nodePort: 30808}]
---
apiVersion: v1
kind: Service
metadata: {name: udp, namespace: svc}
spec:
  selector: {app: netexec}
  ports: [{name: udp, port: 8081, protocol: UDP}]
"""


def test_external_traffic_policy_local_keeps_the_client_address(svc_ns: Cluster) -> None:
    apply(svc_ns, NETEXEC)
    svc_ns.kubectl("wait", "-n", NS, "--for=condition=Available", "deployment/netexec",
                   "--timeout=60s", timeout=90)
    node_ip = svc_ns.kubectl("get", "node", "node-0", "-o",
                             "jsonpath={.status.addresses[0].address}").stdout

    def clientip() -> str:
        with socket.create_connection((node_ip, 30808), timeout=3) as s:
            s.sendall(b"GET /clientip HTTP/1.0\r\n\r\n")
            return s.recv(4096).decode().strip().splitlines()[-1]

    seen = wait_for(clientip, what="NodePort with policy Local")
    # The host's address on the node link arrives unchanged (no masquerade to the node IP).
    assert seen.split(":")[0] == "10.250.0.1", seen


def test_udp_service_follows_a_backend_change(svc_ns: Cluster) -> None:
    apply(svc_ns, NETEXEC)
    svc_ns.kubectl("wait", "-n", NS, "--for=condition=Available", "deployment/netexec",
                   "--timeout=60s", timeout=90)
    ip = svc_ns.kubectl("get", "svc", "-n", NS, "udp", "-o", "jsonpath={.spec.clusterIP}").stdout
    # One client socket (one conntrack entry) asks "hostname" before and after its backend
    # goes away; it must get an answer from a live backend, not silence.
    script = f"""
        import socket, subprocess, sys, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(2)
        def ask():
            for _ in range(10):
                try:
                    s.sendto(b"hostname", ({ip!r}, 8081))
                    return s.recvfrom(1024)[0].decode()
                except OSError:
                    time.sleep(0.3)
            return "NO ANSWER"
        first = ask()
        print(first, flush=True)
        sys.stdin.readline()
        print(ask(), flush=True)
        """
    with tempfile.TemporaryDirectory() as cache:
        proc = subprocess.Popen(
            ["kubectl", "--kubeconfig", str(svc_ns.kubeconfig), "--cache-dir", cache, "exec",
             "-i", "-n", NS, "client", "--", "python3", "-c", textwrap.dedent(script)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdin is not None
        first = proc.stdout.readline().strip()
        assert first.startswith("netexec-"), first
        svc_ns.kubectl("delete", "pod", "-n", NS, first, "--grace-period=0", "--wait=true",
                       timeout=60)
        time.sleep(1.0)
        proc.stdin.write("\n")
        proc.stdin.flush()
        second = proc.stdout.readline().strip()
        proc.wait(timeout=30)
    assert second.startswith("netexec-") and second != first, (first, second)


def test_health_check_node_port_answers_for_local_endpoints(svc_ns: Cluster) -> None:
    apply(svc_ns, NETEXEC)
    svc = svc_ns.kubectl_json("get", "svc", "-n", NS, "local")
    hc = svc["spec"].get("healthCheckNodePort")
    if hc is None:
        # healthCheckNodePort belongs to LoadBalancer Services with policy Local.
        svc_ns.kubectl("patch", "svc", "-n", NS, "local", "-p",
                       '{"spec":{"type":"LoadBalancer"}}')
        hc = wait_for(lambda: svc_ns.kubectl_json("get", "svc", "-n", NS, "local")["spec"]
                      .get("healthCheckNodePort"), what="healthCheckNodePort")
    node_ip = svc_ns.kubectl("get", "node", "node-0", "-o",
                             "jsonpath={.status.addresses[0].address}").stdout

    def health() -> str:
        try:
            with socket.create_connection((node_ip, int(hc)), timeout=3) as s:
                s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
                return s.recv(4096).decode()
        except OSError:
            return ""

    answer = wait_for(lambda: "200 OK" in health() and health(), what="health 200")
    assert '"localEndpoints": 2' in answer
